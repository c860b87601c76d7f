using System.Buffers;
using System.Numerics;

namespace HubertEcg.Inference.Preprocessing;

/// <summary>
/// Fourier-method resampling with the semantics of <c>scipy.signal.resample(x, num)</c> for real input:
/// real FFT of the input, the spectrum truncated (down-sampling) or zero-padded (up-sampling) to
/// <c>num // 2 + 1</c> bins with the Nyquist bin of an even-length spectrum doubled (down) or halved (up),
/// inverse real FFT of length <c>num</c>, scaled by <c>num / N</c>.
/// </summary>
public static class FourierResampler
{
    /// <summary>Resamples <paramref name="input"/> (N values) into <paramref name="output"/> (num values).</summary>
    public static void Resample(ReadOnlySpan<double> input, Span<double> output)
    {
        var nx = input.Length;
        var num = output.Length;
        if (nx == 0 || num == 0)
        {
            throw new ArgumentException("resampling needs a non-empty input and output");
        }

        var buffer = ArrayPool<Complex>.Shared.Rent(Math.Max(nx, num));
        try
        {
            // X = rfft(x): the first nx/2 + 1 bins of the complex FFT of the real input.
            var x = buffer.AsSpan(0, nx);
            for (var i = 0; i < nx; i++)
            {
                x[i] = new Complex(input[i], 0);
            }

            Fft.ForLength(nx).Forward(x);

            // Y: num/2 + 1 bins; copy bins 0 .. N/2 where N = min(num, nx).
            var n = Math.Min(num, nx);
            var nyq = (n / 2) + 1;
            var half = (num / 2) + 1;
            var y = buffer.AsSpan(0, num);

            // Bins [0, nyq) already sit in place; zero the rest of the half spectrum.
            if (half > nyq)
            {
                y[nyq..half].Clear();
            }

            if (n % 2 == 0)
            {
                if (num < nx)
                {
                    y[n / 2] *= 2.0;
                }
                else if (nx < num)
                {
                    y[n / 2] *= 0.5;
                }
            }

            // irfft(Y, num): Hermitian extension (imaginary parts of the DC and, for even num, Nyquist bins ignored).
            y[0] = new Complex(y[0].Real, 0);
            if (num % 2 == 0)
            {
                y[num / 2] = new Complex(y[num / 2].Real, 0);
            }

            for (var k = 1; k < (num + 1) / 2; k++)
            {
                y[num - k] = Complex.Conjugate(y[k]);
            }

            Fft.ForLength(num).InverseUnscaled(y);
            var factor = (double)num / nx;
            for (var i = 0; i < num; i++)
            {
                output[i] = y[i].Real / num * factor;
            }
        }
        finally
        {
            ArrayPool<Complex>.Shared.Return(buffer);
        }
    }
}
