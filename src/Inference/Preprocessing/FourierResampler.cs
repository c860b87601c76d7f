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

    /// <summary>
    /// Resamples two signals of equal length at once (one complex FFT carries both: the first as the real part,
    /// the second as the imaginary part); same results as two <see cref="Resample"/> calls up to rounding.
    /// </summary>
    public static void ResamplePair(ReadOnlySpan<double> first, ReadOnlySpan<double> second, Span<double> firstOutput, Span<double> secondOutput)
    {
        var nx = first.Length;
        var num = firstOutput.Length;
        if (nx == 0 || num == 0 || second.Length != nx || secondOutput.Length != num)
        {
            throw new ArgumentException("resampling a pair needs two non-empty inputs of equal length and two outputs of equal length");
        }

        var buffer = ArrayPool<Complex>.Shared.Rent(nx + num);
        try
        {
            var x = buffer.AsSpan(0, nx);
            for (var i = 0; i < nx; i++)
            {
                x[i] = new Complex(first[i], second[i]);
            }

            Fft.ForLength(nx).Forward(x);

            var n = Math.Min(num, nx);
            var nyq = (n / 2) + 1;
            var half = (num / 2) + 1;
            var z = buffer.AsSpan(nx, num);
            var nyquistFactor = n % 2 != 0 || num == nx ? 1.0 : num < nx ? 2.0 : 0.5;
            for (var k = 0; k < half; k++)
            {
                Complex a, b;
                if (k < nyq)
                {
                    // Split the packed spectrum: A = (X[k] + conj X[-k]) / 2, B = (X[k] - conj X[-k]) / 2i.
                    var xk = x[k];
                    var xm = Complex.Conjugate(x[(nx - k) % nx]);
                    a = (xk + xm) * 0.5;
                    var d = (xk - xm) * 0.5;
                    b = new Complex(d.Imaginary, -d.Real);
                    if (k == n / 2 && n % 2 == 0)
                    {
                        a *= nyquistFactor;
                        b *= nyquistFactor;
                    }
                }
                else
                {
                    a = Complex.Zero;
                    b = Complex.Zero;
                }

                // irfft ignores the imaginary parts of the DC and (even num) Nyquist bins.
                if (k == 0 || (num % 2 == 0 && k == num / 2))
                {
                    a = new Complex(a.Real, 0);
                    b = new Complex(b.Real, 0);
                }

                // Z = YA + i YB over the full Hermitian extensions of both half spectra.
                z[k] = new Complex(a.Real - b.Imaginary, a.Imaginary + b.Real);
                if (k > 0 && num - k >= half)
                {
                    var ac = Complex.Conjugate(a);
                    var bc = Complex.Conjugate(b);
                    z[num - k] = new Complex(ac.Real - bc.Imaginary, ac.Imaginary + bc.Real);
                }
            }

            Fft.ForLength(num).InverseUnscaled(z);
            var factor = (double)num / nx;
            for (var i = 0; i < num; i++)
            {
                firstOutput[i] = z[i].Real / num * factor;
                secondOutput[i] = z[i].Imaginary / num * factor;
            }
        }
        finally
        {
            ArrayPool<Complex>.Shared.Return(buffer);
        }
    }
}
