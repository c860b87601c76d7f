using System.Buffers;
using System.Collections.Concurrent;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace HubertEcg.Inference.Preprocessing;

/// <summary>
/// Complex discrete Fourier transform of any length: mixed-radix (factors 4, 2, 3, 5, 7) decimation in time,
/// Bluestein's chirp-z algorithm for lengths with a larger prime factor. Plans (twiddles, chirps) are cached
/// per length; transforms rent their scratch from the shared array pool, so a transform allocates nothing.
/// Thread-safe.
/// </summary>
public sealed class Fft
{
    private const int MaxCachedPlans = 256;

    // Cached plans hold twiddles and chirps; bound their total size (complex values) so records of many distinct
    // lengths cannot grow the cache without limit. Plans past the bound are built per call.
    private const long MaxCachedValues = 4L << 20;
    private static long _cachedValues;
    private static readonly double Sin60 = Math.Sqrt(3) / 2;
    private static readonly double Cos72 = Math.Cos(2 * Math.PI / 5);
    private static readonly double Cos144 = Math.Cos(4 * Math.PI / 5);
    private static readonly double Sin72 = Math.Sin(2 * Math.PI / 5);
    private static readonly double Sin144 = Math.Sin(4 * Math.PI / 5);
    private static readonly ConcurrentDictionary<int, Fft> Plans = new();

    private readonly int[] _factors;
    private readonly Complex[] _twiddles;
    private readonly Bluestein? _bluestein;

    private Fft(int length)
    {
        Length = length;
        _factors = Factor(length, out var smooth);
        if (smooth)
        {
            _twiddles = new Complex[length];
            for (var k = 0; k < length; k++)
            {
                var angle = -2.0 * Math.PI * k / length;
                _twiddles[k] = new Complex(Math.Cos(angle), Math.Sin(angle));
            }
        }
        else
        {
            _twiddles = [];
            _bluestein = new Bluestein(length);
        }
    }

    public int Length { get; }

    /// <summary>The plan for <paramref name="length"/> (cached).</summary>
    public static Fft ForLength(int length)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(length, 1);
        if (Plans.TryGetValue(length, out var plan))
        {
            return plan;
        }

        plan = new Fft(length);
        if (Plans.Count < MaxCachedPlans)
        {
            if (Interlocked.Add(ref _cachedValues, plan.StoredValues) <= MaxCachedValues)
            {
                var cached = Plans.GetOrAdd(length, plan);
                if (!ReferenceEquals(cached, plan))
                {
                    Interlocked.Add(ref _cachedValues, -plan.StoredValues);
                }

                return cached;
            }

            Interlocked.Add(ref _cachedValues, -plan.StoredValues);
        }

        return plan;
    }

    private long StoredValues => _twiddles.Length + (_bluestein?.StoredValues ?? 0);

    /// <summary>In place: <c>X[k] = sum_n x[n] exp(-2 pi i k n / N)</c>.</summary>
    public void Forward(Span<Complex> data)
    {
        if (data.Length != Length)
        {
            throw new ArgumentException($"expected {Length} values, got {data.Length}", nameof(data));
        }

        if (Length == 1)
        {
            return;
        }

        if (_bluestein is not null)
        {
            _bluestein.Forward(data);
            return;
        }

        var scratch = ArrayPool<Complex>.Shared.Rent(Length);
        try
        {
            var input = scratch.AsSpan(0, Length);
            data.CopyTo(input);
            Transform(input, 0, 1, data, 0, Length, 0);
        }
        finally
        {
            ArrayPool<Complex>.Shared.Return(scratch);
        }
    }

    /// <summary>In place, unnormalised: <c>x[n] = sum_k X[k] exp(+2 pi i k n / N)</c>.</summary>
    public void InverseUnscaled(Span<Complex> data)
    {
        for (var i = 0; i < data.Length; i++)
        {
            data[i] = Complex.Conjugate(data[i]);
        }

        Forward(data);
        for (var i = 0; i < data.Length; i++)
        {
            data[i] = Complex.Conjugate(data[i]);
        }
    }

    private static int[] Factor(int n, out bool smooth)
    {
        var factors = new List<int>();
        var rest = n;
        while (rest % 4 == 0)
        {
            factors.Add(4);
            rest /= 4;
        }

        foreach (var p in new[] { 2, 3, 5, 7 })
        {
            while (rest % p == 0)
            {
                factors.Add(p);
                rest /= p;
            }
        }

        smooth = rest == 1;
        return [.. factors];
    }

    // Decimation in time: the length-n DFT of input[offset + q*stride] (q = 0..n-1) into output[outOffset..+n).
    private void Transform(ReadOnlySpan<Complex> input, int offset, int stride, Span<Complex> output, int outOffset, int n, int factorIndex)
    {
        var p = _factors[factorIndex];
        var m = n / p;
        var twiddleStep = Length / n;
        Span<Complex> t = stackalloc Complex[7];
        if (m == 1)
        {
            for (var q = 0; q < p; q++)
            {
                t[q] = input[offset + (q * stride)];
            }

            Butterfly(t[..p], output.Slice(outOffset, p), 1);
            return;
        }

        for (var q = 0; q < p; q++)
        {
            Transform(input, offset + (q * stride), stride * p, output, outOffset + (q * m), m, factorIndex + 1);
        }

        var block = output.Slice(outOffset, n);
        switch (p)
        {
            case 2:
                Combine2(block, m, twiddleStep);
                return;
            case 4:
                Combine4(block, m, twiddleStep);
                return;
            case 5:
                Combine5(block, m, twiddleStep);
                return;
            default:
                for (var k = 0; k < m; k++)
                {
                    t[0] = block[k];
                    for (var q = 1; q < p; q++)
                    {
                        t[q] = block[(q * m) + k] * _twiddles[q * k * twiddleStep];
                    }

                    Butterfly(t[..p], block[k..], m);
                }

                return;
        }
    }

    // Radix-2 combine in place: X[k] = Y0[k] + W^k Y1[k], X[k + m] = Y0[k] - W^k Y1[k].
    private void Combine2(Span<Complex> x, int m, int step)
    {
        ref var x0 = ref MemoryMarshal.GetReference(x);
        ref var w = ref MemoryMarshal.GetArrayDataReference(_twiddles);
        for (var k = 0; k < m; k++)
        {
            ref var r0 = ref Unsafe.Add(ref x0, k);
            ref var r1 = ref Unsafe.Add(ref x0, m + k);
            var a = r0;
            var b = r1 * Unsafe.Add(ref w, k * step);
            r0 = a + b;
            r1 = a - b;
        }
    }

    private void Combine4(Span<Complex> x, int m, int step)
    {
        ref var x0 = ref MemoryMarshal.GetReference(x);
        ref var w = ref MemoryMarshal.GetArrayDataReference(_twiddles);
        for (var k = 0; k < m; k++)
        {
            ref var r0 = ref Unsafe.Add(ref x0, k);
            ref var r1 = ref Unsafe.Add(ref x0, m + k);
            ref var r2 = ref Unsafe.Add(ref x0, (2 * m) + k);
            ref var r3 = ref Unsafe.Add(ref x0, (3 * m) + k);
            var i = k * step;
            var t0 = r0;
            var t1 = r1 * Unsafe.Add(ref w, i);
            var t2 = r2 * Unsafe.Add(ref w, 2 * i);
            var t3 = r3 * Unsafe.Add(ref w, 3 * i);
            var s02 = t0 + t2;
            var d02 = t0 - t2;
            var s13 = t1 + t3;
            var d13 = t1 - t3;
            var minusJd13 = new Complex(d13.Imaginary, -d13.Real);
            r0 = s02 + s13;
            r1 = d02 + minusJd13;
            r2 = s02 - s13;
            r3 = d02 - minusJd13;
        }
    }

    private void Combine5(Span<Complex> x, int m, int step)
    {
        ref var x0 = ref MemoryMarshal.GetReference(x);
        ref var w = ref MemoryMarshal.GetArrayDataReference(_twiddles);
        for (var k = 0; k < m; k++)
        {
            ref var r0 = ref Unsafe.Add(ref x0, k);
            ref var r1 = ref Unsafe.Add(ref x0, m + k);
            ref var r2 = ref Unsafe.Add(ref x0, (2 * m) + k);
            ref var r3 = ref Unsafe.Add(ref x0, (3 * m) + k);
            ref var r4 = ref Unsafe.Add(ref x0, (4 * m) + k);
            var i = k * step;
            var u0 = r0;
            var u1 = r1 * Unsafe.Add(ref w, i);
            var u2 = r2 * Unsafe.Add(ref w, 2 * i);
            var u3 = r3 * Unsafe.Add(ref w, 3 * i);
            var u4 = r4 * Unsafe.Add(ref w, 4 * i);
            var t1 = u1 + u4;
            var t2 = u2 + u3;
            var t3 = u1 - u4;
            var t4 = u2 - u3;
            var a1 = u0 + (Cos72 * t1) + (Cos144 * t2);
            var a2 = u0 + (Cos144 * t1) + (Cos72 * t2);
            var b1 = (Sin72 * t3) + (Sin144 * t4);
            var b2 = (Sin144 * t3) - (Sin72 * t4);
            var minusJb1 = new Complex(b1.Imaginary, -b1.Real);
            var minusJb2 = new Complex(b2.Imaginary, -b2.Real);
            r0 = u0 + t1 + t2;
            r1 = a1 + minusJb1;
            r2 = a2 + minusJb2;
            r3 = a2 - minusJb2;
            r4 = a1 - minusJb1;
        }
    }

    // out[r * outStride] = sum_q t[q] * W_p^(q r), with W_p = W_n^m, i.e. twiddle index (q r mod p) * (Length / p).
    private void Butterfly(ReadOnlySpan<Complex> t, Span<Complex> output, int outStride)
    {
        var p = t.Length;
        switch (p)
        {
            case 2:
                output[0] = t[0] + t[1];
                output[outStride] = t[0] - t[1];
                return;
            case 4:
                {
                    var s02 = t[0] + t[2];
                    var d02 = t[0] - t[2];
                    var s13 = t[1] + t[3];
                    var d13 = t[1] - t[3];
                    var minusJd13 = new Complex(d13.Imaginary, -d13.Real);
                    output[0] = s02 + s13;
                    output[outStride] = d02 + minusJd13;
                    output[2 * outStride] = s02 - s13;
                    output[3 * outStride] = d02 - minusJd13;
                    return;
                }

            case 3:
                {
                    // W = exp(-2 pi i / 3): X1,2 = a - (b + c) / 2 -/+ i (sqrt(3) / 2) (b - c).
                    var sum = t[1] + t[2];
                    var mid = t[0] - (0.5 * sum);
                    var d = Sin60 * (t[1] - t[2]);
                    var minusJd = new Complex(d.Imaginary, -d.Real);
                    output[0] = t[0] + sum;
                    output[outStride] = mid + minusJd;
                    output[2 * outStride] = mid - minusJd;
                    return;
                }

            case 5:
                {
                    // W = exp(-2 pi i / 5), pairing x1 with x4 and x2 with x3.
                    var t1 = t[1] + t[4];
                    var t2 = t[2] + t[3];
                    var t3 = t[1] - t[4];
                    var t4 = t[2] - t[3];
                    var a1 = t[0] + (Cos72 * t1) + (Cos144 * t2);
                    var a2 = t[0] + (Cos144 * t1) + (Cos72 * t2);
                    var b1 = (Sin72 * t3) + (Sin144 * t4);
                    var b2 = (Sin144 * t3) - (Sin72 * t4);
                    var minusJb1 = new Complex(b1.Imaginary, -b1.Real);
                    var minusJb2 = new Complex(b2.Imaginary, -b2.Real);
                    output[0] = t[0] + t1 + t2;
                    output[outStride] = a1 + minusJb1;
                    output[2 * outStride] = a2 + minusJb2;
                    output[3 * outStride] = a2 - minusJb2;
                    output[4 * outStride] = a1 - minusJb1;
                    return;
                }

            default:
                {
                    var unit = Length / p;
                    for (var r = 0; r < p; r++)
                    {
                        var sum = t[0];
                        for (var q = 1; q < p; q++)
                        {
                            sum += t[q] * _twiddles[(q * r % p) * unit];
                        }

                        output[r * outStride] = sum;
                    }

                    return;
                }
        }
    }

    private sealed class Bluestein
    {
        private readonly int _n;
        private readonly Complex[] _chirp;
        private readonly Complex[] _kernelSpectrum;
        private readonly Fft _inner;

        public Bluestein(int n)
        {
            _n = n;
            var m = 1;
            while (m < (2 * n) - 1)
            {
                m <<= 1;
            }

            _inner = ForLength(m);
            _chirp = new Complex[n];
            long twoN = 2L * n;
            for (long k = 0; k < n; k++)
            {
                // exp(-i pi k^2 / n), with k^2 reduced mod 2n to keep the angle small and exact.
                var angle = -Math.PI * (k * k % twoN) / n;
                _chirp[k] = new Complex(Math.Cos(angle), Math.Sin(angle));
            }

            _kernelSpectrum = new Complex[m];
            _kernelSpectrum[0] = Complex.Conjugate(_chirp[0]);
            for (var k = 1; k < n; k++)
            {
                _kernelSpectrum[k] = Complex.Conjugate(_chirp[k]);
                _kernelSpectrum[m - k] = Complex.Conjugate(_chirp[k]);
            }

            _inner.Forward(_kernelSpectrum);
        }

        public long StoredValues => _chirp.Length + _kernelSpectrum.Length;

        public void Forward(Span<Complex> data)
        {
            var m = _inner.Length;
            var buffer = ArrayPool<Complex>.Shared.Rent(m);
            try
            {
                var a = buffer.AsSpan(0, m);
                for (var k = 0; k < _n; k++)
                {
                    a[k] = data[k] * _chirp[k];
                }

                a[_n..].Clear();
                _inner.Forward(a);
                for (var k = 0; k < m; k++)
                {
                    a[k] *= _kernelSpectrum[k];
                }

                _inner.InverseUnscaled(a);
                for (var k = 0; k < _n; k++)
                {
                    data[k] = _chirp[k] * a[k] / m;
                }
            }
            finally
            {
                ArrayPool<Complex>.Shared.Return(buffer);
            }
        }
    }
}
