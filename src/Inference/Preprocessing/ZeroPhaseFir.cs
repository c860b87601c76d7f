using System.Buffers;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace HubertEcg.Inference.Preprocessing;

/// <summary>
/// An FIR filter run forward and backward with the semantics of <c>scipy.signal.filtfilt(b, [1], x)</c>:
/// odd extension of <c>3 * taps</c> samples at each end, each pass started from the step-response steady
/// state (<c>lfilter_zi</c> scaled by the first sample of what it filters), extension cut off at the end.
/// </summary>
/// <remarks>
/// For an FIR filter the kept outputs never reach the constant pre-history that the initial state stands for
/// (the pad, 3 x taps, is longer than the filter's memory), so only <c>taps - 1</c> odd-extension samples at each
/// end matter, and forward-then-backward is one correlation with the taps' autocorrelation (2 taps - 1 long,
/// symmetric), run as a register-blocked vectorised dot product.
/// </remarks>
public sealed class ZeroPhaseFir
{
    private readonly double[] _taps;
    private readonly double[] _composite;

    public ZeroPhaseFir(double[] taps)
    {
        ArgumentNullException.ThrowIfNull(taps);
        if (taps.Length == 0)
        {
            throw new ArgumentException("an FIR filter needs at least one tap", nameof(taps));
        }

        _taps = (double[])taps.Clone();

        // Forward then backward equals one pass with the autocorrelation of the taps, g[d] = sum_k h[k] h[k - d],
        // symmetric in d, so each output needs T multiplications instead of 2 T.
        var t = taps.Length;
        _composite = new double[t];
        for (var d = 0; d < t; d++)
        {
            var sum = 0.0;
            for (var k = d; k < t; k++)
            {
                sum += taps[k] * taps[k - d];
            }

            _composite[d] = sum;
        }
    }

    public IReadOnlyList<double> Taps => _taps;

    /// <summary>scipy's default pad length, <c>3 * taps</c>; the signal must be longer than this.</summary>
    public int PadLength => 3 * _taps.Length;

    /// <summary>
    /// Filters <paramref name="input"/> into <paramref name="output"/> (same length, may not overlap).
    /// The input must be longer than <see cref="PadLength"/>.
    /// </summary>
    public void Apply(ReadOnlySpan<double> input, Span<double> output)
    {
        var n = input.Length;
        if (output.Length != n)
        {
            throw new ArgumentException($"output holds {output.Length} values, input {n}", nameof(output));
        }

        if (n <= PadLength)
        {
            throw new ArgumentException($"the signal ({n} samples) must be longer than the filter's pad length ({PadLength})", nameof(input));
        }

        var t = _taps.Length;
        var extended = n + (2 * (t - 1));
        var buffer = ArrayPool<double>.Shared.Rent(extended);
        try
        {
            var ext = buffer.AsSpan(0, extended);
            Extend(input, ext, t);

            // w[o] = sum_d g[|d|] x~[o + d], d = -(t-1) .. t-1.
            if (!CorrelateBlocked(ext, _composite, output))
            {
                SymmetricCorrelate(ext, _composite, output);
            }
        }
        finally
        {
            ArrayPool<double>.Shared.Return(buffer);
        }
    }

    // ext[j] = x~[j - (t - 1)], x~ the odd extension: 2 x[0] - x[-i] on the left, 2 x[n-1] - x[2(n-1) - i] on the right.
    private static void Extend(ReadOnlySpan<double> input, Span<double> ext, int t)
    {
        var n = input.Length;
        var first = input[0];
        var last = input[n - 1];
        for (var j = 0; j < t - 1; j++)
        {
            ext[j] = (2 * first) - input[t - 1 - j];
        }

        input.CopyTo(ext.Slice(t - 1, n));
        for (var j = 1; j < t; j++)
        {
            ext[t - 2 + n + j] = (2 * last) - input[n - 1 - j];
        }
    }

    /// <summary>
    /// <see cref="SymmetricCorrelate"/> with register blocking: a block of outputs (8 vectors of 8 with AVX-512, 4 of 4
    /// with AVX2) is accumulated in registers while the taps are walked one residue class at a time (taps
    /// <c>r, r + L, r + 2L, ...</c> for lane count L). Within a class the input vectors a block needs slide by one
    /// vector per tap, so each tap costs two loads (one above the centre, one below) for a whole block instead of two per
    /// output vector, and the loop runs at the FMA units' rate rather than the load ports'. Every output is summed in
    /// the same order wherever it sits, so the last block may overlap the one before it. Returns false (nothing written)
    /// when the hardware has neither vector width or the output is shorter than one block.
    /// </summary>
    internal static unsafe bool CorrelateBlocked(ReadOnlySpan<double> input, ReadOnlySpan<double> g, Span<double> output)
    {
        var t = g.Length;
        var count = output.Length;
        if (input.Length < count + (2 * (t - 1)))
        {
            throw new ArgumentException("input too short for the correlation", nameof(input));
        }

        fixed (double* x = input)
        fixed (double* coefficients = g)
        fixed (double* destination = output)
        {
            if (Vector512.IsHardwareAccelerated && count >= 64)
            {
                Blocked512(x + (t - 1), coefficients, t, destination, count);
                return true;
            }

            if (Vector256.IsHardwareAccelerated && Fma.IsSupported && count >= 16)
            {
                Blocked256(x + (t - 1), coefficients, t, destination, count);
                return true;
            }
        }

        return false;
    }

    // 64 outputs per block: 8 accumulators of 8 lanes; windows u (above the centre) and d (below) of 8 vectors each.
    private static unsafe void Blocked512(double* centre, double* g, int t, double* output, int count)
    {
        const int lanes = 8;
        const int block = 64;
        for (var o = 0; o < count; o += block)
        {
            if (o > count - block)
            {
                o = count - block;
            }

            var p = centre + o;
            var k = Vector512.Create(g[0]);
            var a0 = k * Vector512.Load(p);
            var a1 = k * Vector512.Load(p + 8);
            var a2 = k * Vector512.Load(p + 16);
            var a3 = k * Vector512.Load(p + 24);
            var a4 = k * Vector512.Load(p + 32);
            var a5 = k * Vector512.Load(p + 40);
            var a6 = k * Vector512.Load(p + 48);
            var a7 = k * Vector512.Load(p + 56);
            Vector512<double> u0;
            Vector512<double> u1;
            Vector512<double> u2;
            Vector512<double> u3;
            Vector512<double> u4;
            Vector512<double> u5;
            Vector512<double> u6;
            Vector512<double> u7;
            Vector512<double> d0;
            Vector512<double> d1;
            Vector512<double> d2;
            Vector512<double> d3;
            Vector512<double> d4;
            Vector512<double> d5;
            Vector512<double> d6;
            Vector512<double> d7;

            // Residue class r: taps r, r + lanes, ...; tap r + lanes q needs window vectors above the centre at
            // p + r + lanes (i + q) and below it at p - r + lanes (i - q) for accumulator i.
            for (var r = 0; r < lanes && r < t; r++)
            {
                var pu = p + r;
                var pd = p - r;
                u0 = Vector512.Load(pu);
                u1 = Vector512.Load(pu + 8);
                u2 = Vector512.Load(pu + 16);
                u3 = Vector512.Load(pu + 24);
                u4 = Vector512.Load(pu + 32);
                u5 = Vector512.Load(pu + 40);
                u6 = Vector512.Load(pu + 48);
                u7 = Vector512.Load(pu + 56);
                d0 = Vector512.Load(pd);
                d1 = Vector512.Load(pd + 8);
                d2 = Vector512.Load(pd + 16);
                d3 = Vector512.Load(pd + 24);
                d4 = Vector512.Load(pd + 32);
                d5 = Vector512.Load(pd + 40);
                d6 = Vector512.Load(pd + 48);
                d7 = Vector512.Load(pd + 56);
                if (r > 0)
                {
                    k = Vector512.Create(g[r]);
                    a0 = Vector512.FusedMultiplyAdd(k, u0 + d0, a0);
                    a1 = Vector512.FusedMultiplyAdd(k, u1 + d1, a1);
                    a2 = Vector512.FusedMultiplyAdd(k, u2 + d2, a2);
                    a3 = Vector512.FusedMultiplyAdd(k, u3 + d3, a3);
                    a4 = Vector512.FusedMultiplyAdd(k, u4 + d4, a4);
                    a5 = Vector512.FusedMultiplyAdd(k, u5 + d5, a5);
                    a6 = Vector512.FusedMultiplyAdd(k, u6 + d6, a6);
                    a7 = Vector512.FusedMultiplyAdd(k, u7 + d7, a7);
                }

                // Whole rounds of 8 taps: slot s of a window holds the vector whose index is s modulo 8, so
                // each tap loads one new vector per window into the slot that fell out of use and nothing moves.
                var q = 1;
                for (; r + (lanes * (q + 7)) < t; q += 8)
                {
                    u0 = Vector512.Load(pu + (lanes * (q + 7)));
                    d7 = Vector512.Load(pd - (lanes * q));
                    k = Vector512.Create(g[r + (lanes * q)]);
                    a0 = Vector512.FusedMultiplyAdd(k, u1 + d7, a0);
                    a1 = Vector512.FusedMultiplyAdd(k, u2 + d0, a1);
                    a2 = Vector512.FusedMultiplyAdd(k, u3 + d1, a2);
                    a3 = Vector512.FusedMultiplyAdd(k, u4 + d2, a3);
                    a4 = Vector512.FusedMultiplyAdd(k, u5 + d3, a4);
                    a5 = Vector512.FusedMultiplyAdd(k, u6 + d4, a5);
                    a6 = Vector512.FusedMultiplyAdd(k, u7 + d5, a6);
                    a7 = Vector512.FusedMultiplyAdd(k, u0 + d6, a7);
                    u1 = Vector512.Load(pu + (lanes * (q + 1 + 7)));
                    d6 = Vector512.Load(pd - (lanes * (q + 1)));
                    k = Vector512.Create(g[r + (lanes * (q + 1))]);
                    a0 = Vector512.FusedMultiplyAdd(k, u2 + d6, a0);
                    a1 = Vector512.FusedMultiplyAdd(k, u3 + d7, a1);
                    a2 = Vector512.FusedMultiplyAdd(k, u4 + d0, a2);
                    a3 = Vector512.FusedMultiplyAdd(k, u5 + d1, a3);
                    a4 = Vector512.FusedMultiplyAdd(k, u6 + d2, a4);
                    a5 = Vector512.FusedMultiplyAdd(k, u7 + d3, a5);
                    a6 = Vector512.FusedMultiplyAdd(k, u0 + d4, a6);
                    a7 = Vector512.FusedMultiplyAdd(k, u1 + d5, a7);
                    u2 = Vector512.Load(pu + (lanes * (q + 2 + 7)));
                    d5 = Vector512.Load(pd - (lanes * (q + 2)));
                    k = Vector512.Create(g[r + (lanes * (q + 2))]);
                    a0 = Vector512.FusedMultiplyAdd(k, u3 + d5, a0);
                    a1 = Vector512.FusedMultiplyAdd(k, u4 + d6, a1);
                    a2 = Vector512.FusedMultiplyAdd(k, u5 + d7, a2);
                    a3 = Vector512.FusedMultiplyAdd(k, u6 + d0, a3);
                    a4 = Vector512.FusedMultiplyAdd(k, u7 + d1, a4);
                    a5 = Vector512.FusedMultiplyAdd(k, u0 + d2, a5);
                    a6 = Vector512.FusedMultiplyAdd(k, u1 + d3, a6);
                    a7 = Vector512.FusedMultiplyAdd(k, u2 + d4, a7);
                    u3 = Vector512.Load(pu + (lanes * (q + 3 + 7)));
                    d4 = Vector512.Load(pd - (lanes * (q + 3)));
                    k = Vector512.Create(g[r + (lanes * (q + 3))]);
                    a0 = Vector512.FusedMultiplyAdd(k, u4 + d4, a0);
                    a1 = Vector512.FusedMultiplyAdd(k, u5 + d5, a1);
                    a2 = Vector512.FusedMultiplyAdd(k, u6 + d6, a2);
                    a3 = Vector512.FusedMultiplyAdd(k, u7 + d7, a3);
                    a4 = Vector512.FusedMultiplyAdd(k, u0 + d0, a4);
                    a5 = Vector512.FusedMultiplyAdd(k, u1 + d1, a5);
                    a6 = Vector512.FusedMultiplyAdd(k, u2 + d2, a6);
                    a7 = Vector512.FusedMultiplyAdd(k, u3 + d3, a7);
                    u4 = Vector512.Load(pu + (lanes * (q + 4 + 7)));
                    d3 = Vector512.Load(pd - (lanes * (q + 4)));
                    k = Vector512.Create(g[r + (lanes * (q + 4))]);
                    a0 = Vector512.FusedMultiplyAdd(k, u5 + d3, a0);
                    a1 = Vector512.FusedMultiplyAdd(k, u6 + d4, a1);
                    a2 = Vector512.FusedMultiplyAdd(k, u7 + d5, a2);
                    a3 = Vector512.FusedMultiplyAdd(k, u0 + d6, a3);
                    a4 = Vector512.FusedMultiplyAdd(k, u1 + d7, a4);
                    a5 = Vector512.FusedMultiplyAdd(k, u2 + d0, a5);
                    a6 = Vector512.FusedMultiplyAdd(k, u3 + d1, a6);
                    a7 = Vector512.FusedMultiplyAdd(k, u4 + d2, a7);
                    u5 = Vector512.Load(pu + (lanes * (q + 5 + 7)));
                    d2 = Vector512.Load(pd - (lanes * (q + 5)));
                    k = Vector512.Create(g[r + (lanes * (q + 5))]);
                    a0 = Vector512.FusedMultiplyAdd(k, u6 + d2, a0);
                    a1 = Vector512.FusedMultiplyAdd(k, u7 + d3, a1);
                    a2 = Vector512.FusedMultiplyAdd(k, u0 + d4, a2);
                    a3 = Vector512.FusedMultiplyAdd(k, u1 + d5, a3);
                    a4 = Vector512.FusedMultiplyAdd(k, u2 + d6, a4);
                    a5 = Vector512.FusedMultiplyAdd(k, u3 + d7, a5);
                    a6 = Vector512.FusedMultiplyAdd(k, u4 + d0, a6);
                    a7 = Vector512.FusedMultiplyAdd(k, u5 + d1, a7);
                    u6 = Vector512.Load(pu + (lanes * (q + 6 + 7)));
                    d1 = Vector512.Load(pd - (lanes * (q + 6)));
                    k = Vector512.Create(g[r + (lanes * (q + 6))]);
                    a0 = Vector512.FusedMultiplyAdd(k, u7 + d1, a0);
                    a1 = Vector512.FusedMultiplyAdd(k, u0 + d2, a1);
                    a2 = Vector512.FusedMultiplyAdd(k, u1 + d3, a2);
                    a3 = Vector512.FusedMultiplyAdd(k, u2 + d4, a3);
                    a4 = Vector512.FusedMultiplyAdd(k, u3 + d5, a4);
                    a5 = Vector512.FusedMultiplyAdd(k, u4 + d6, a5);
                    a6 = Vector512.FusedMultiplyAdd(k, u5 + d7, a6);
                    a7 = Vector512.FusedMultiplyAdd(k, u6 + d0, a7);
                    u7 = Vector512.Load(pu + (lanes * (q + 7 + 7)));
                    d0 = Vector512.Load(pd - (lanes * (q + 7)));
                    k = Vector512.Create(g[r + (lanes * (q + 7))]);
                    a0 = Vector512.FusedMultiplyAdd(k, u0 + d0, a0);
                    a1 = Vector512.FusedMultiplyAdd(k, u1 + d1, a1);
                    a2 = Vector512.FusedMultiplyAdd(k, u2 + d2, a2);
                    a3 = Vector512.FusedMultiplyAdd(k, u3 + d3, a3);
                    a4 = Vector512.FusedMultiplyAdd(k, u4 + d4, a4);
                    a5 = Vector512.FusedMultiplyAdd(k, u5 + d5, a5);
                    a6 = Vector512.FusedMultiplyAdd(k, u6 + d6, a6);
                    a7 = Vector512.FusedMultiplyAdd(k, u7 + d7, a7);
                }

                // The last taps of the class (fewer than a round) load their vectors directly.
                for (; r + (lanes * q) < t; q++)
                {
                    var up = pu + (lanes * q);
                    var down = pd - (lanes * q);
                    k = Vector512.Create(g[r + (lanes * q)]);
                    a0 = Vector512.FusedMultiplyAdd(k, Vector512.Load(up) + Vector512.Load(down), a0);
                    a1 = Vector512.FusedMultiplyAdd(k, Vector512.Load(up + 8) + Vector512.Load(down + 8), a1);
                    a2 = Vector512.FusedMultiplyAdd(k, Vector512.Load(up + 16) + Vector512.Load(down + 16), a2);
                    a3 = Vector512.FusedMultiplyAdd(k, Vector512.Load(up + 24) + Vector512.Load(down + 24), a3);
                    a4 = Vector512.FusedMultiplyAdd(k, Vector512.Load(up + 32) + Vector512.Load(down + 32), a4);
                    a5 = Vector512.FusedMultiplyAdd(k, Vector512.Load(up + 40) + Vector512.Load(down + 40), a5);
                    a6 = Vector512.FusedMultiplyAdd(k, Vector512.Load(up + 48) + Vector512.Load(down + 48), a6);
                    a7 = Vector512.FusedMultiplyAdd(k, Vector512.Load(up + 56) + Vector512.Load(down + 56), a7);
                }
            }

            var y = output + o;
            a0.Store(y);
            a1.Store(y + 8);
            a2.Store(y + 16);
            a3.Store(y + 24);
            a4.Store(y + 32);
            a5.Store(y + 40);
            a6.Store(y + 48);
            a7.Store(y + 56);
        }
    }

    // 16 outputs per block: 4 accumulators of 4 lanes (13 live vectors fit the 16 AVX2 registers).
    private static unsafe void Blocked256(double* centre, double* g, int t, double* output, int count)
    {
        const int lanes = 4;
        const int block = 16;
        for (var o = 0; o < count; o += block)
        {
            if (o > count - block)
            {
                o = count - block;
            }

            var p = centre + o;
            var k = Vector256.Create(g[0]);
            var a0 = k * Vector256.Load(p);
            var a1 = k * Vector256.Load(p + 4);
            var a2 = k * Vector256.Load(p + 8);
            var a3 = k * Vector256.Load(p + 12);
            Vector256<double> u0;
            Vector256<double> u1;
            Vector256<double> u2;
            Vector256<double> u3;
            Vector256<double> d0;
            Vector256<double> d1;
            Vector256<double> d2;
            Vector256<double> d3;

            // Residue class r: taps r, r + lanes, ...; tap r + lanes q needs window vectors above the centre at
            // p + r + lanes (i + q) and below it at p - r + lanes (i - q) for accumulator i.
            for (var r = 0; r < lanes && r < t; r++)
            {
                var pu = p + r;
                var pd = p - r;
                u0 = Vector256.Load(pu);
                u1 = Vector256.Load(pu + 4);
                u2 = Vector256.Load(pu + 8);
                u3 = Vector256.Load(pu + 12);
                d0 = Vector256.Load(pd);
                d1 = Vector256.Load(pd + 4);
                d2 = Vector256.Load(pd + 8);
                d3 = Vector256.Load(pd + 12);
                if (r > 0)
                {
                    k = Vector256.Create(g[r]);
                    a0 = Fma.MultiplyAdd(k, u0 + d0, a0);
                    a1 = Fma.MultiplyAdd(k, u1 + d1, a1);
                    a2 = Fma.MultiplyAdd(k, u2 + d2, a2);
                    a3 = Fma.MultiplyAdd(k, u3 + d3, a3);
                }

                // Whole rounds of 4 taps: slot s of a window holds the vector whose index is s modulo 4, so
                // each tap loads one new vector per window into the slot that fell out of use and nothing moves.
                var q = 1;
                for (; r + (lanes * (q + 3)) < t; q += 4)
                {
                    u0 = Vector256.Load(pu + (lanes * (q + 3)));
                    d3 = Vector256.Load(pd - (lanes * q));
                    k = Vector256.Create(g[r + (lanes * q)]);
                    a0 = Fma.MultiplyAdd(k, u1 + d3, a0);
                    a1 = Fma.MultiplyAdd(k, u2 + d0, a1);
                    a2 = Fma.MultiplyAdd(k, u3 + d1, a2);
                    a3 = Fma.MultiplyAdd(k, u0 + d2, a3);
                    u1 = Vector256.Load(pu + (lanes * (q + 1 + 3)));
                    d2 = Vector256.Load(pd - (lanes * (q + 1)));
                    k = Vector256.Create(g[r + (lanes * (q + 1))]);
                    a0 = Fma.MultiplyAdd(k, u2 + d2, a0);
                    a1 = Fma.MultiplyAdd(k, u3 + d3, a1);
                    a2 = Fma.MultiplyAdd(k, u0 + d0, a2);
                    a3 = Fma.MultiplyAdd(k, u1 + d1, a3);
                    u2 = Vector256.Load(pu + (lanes * (q + 2 + 3)));
                    d1 = Vector256.Load(pd - (lanes * (q + 2)));
                    k = Vector256.Create(g[r + (lanes * (q + 2))]);
                    a0 = Fma.MultiplyAdd(k, u3 + d1, a0);
                    a1 = Fma.MultiplyAdd(k, u0 + d2, a1);
                    a2 = Fma.MultiplyAdd(k, u1 + d3, a2);
                    a3 = Fma.MultiplyAdd(k, u2 + d0, a3);
                    u3 = Vector256.Load(pu + (lanes * (q + 3 + 3)));
                    d0 = Vector256.Load(pd - (lanes * (q + 3)));
                    k = Vector256.Create(g[r + (lanes * (q + 3))]);
                    a0 = Fma.MultiplyAdd(k, u0 + d0, a0);
                    a1 = Fma.MultiplyAdd(k, u1 + d1, a1);
                    a2 = Fma.MultiplyAdd(k, u2 + d2, a2);
                    a3 = Fma.MultiplyAdd(k, u3 + d3, a3);
                }

                // The last taps of the class (fewer than a round) load their vectors directly.
                for (; r + (lanes * q) < t; q++)
                {
                    var up = pu + (lanes * q);
                    var down = pd - (lanes * q);
                    k = Vector256.Create(g[r + (lanes * q)]);
                    a0 = Fma.MultiplyAdd(k, Vector256.Load(up) + Vector256.Load(down), a0);
                    a1 = Fma.MultiplyAdd(k, Vector256.Load(up + 4) + Vector256.Load(down + 4), a1);
                    a2 = Fma.MultiplyAdd(k, Vector256.Load(up + 8) + Vector256.Load(down + 8), a2);
                    a3 = Fma.MultiplyAdd(k, Vector256.Load(up + 12) + Vector256.Load(down + 12), a3);
                }
            }

            var y = output + o;
            a0.Store(y);
            a1.Store(y + 4);
            a2.Store(y + 8);
            a3.Store(y + 12);
        }
    }

    /// <summary>
    /// <c>output[o] = g[0] input[o + c] + sum_{d=1}^{t-1} g[d] (input[o + c + d] + input[o + c - d])</c> with
    /// <c>c = t - 1</c>; input must hold output + 2 (t - 1) values.
    /// </summary>
    internal static void SymmetricCorrelate(ReadOnlySpan<double> input, ReadOnlySpan<double> g, Span<double> output)
    {
        var t = g.Length;
        var count = output.Length;
        if (input.Length < count + (2 * (t - 1)))
        {
            throw new ArgumentException("input too short for the correlation", nameof(input));
        }

        ref var coef = ref MemoryMarshal.GetReference(g);
        ref var dst = ref MemoryMarshal.GetReference(output);
        ref var centre = ref Unsafe.Add(ref MemoryMarshal.GetReference(input), t - 1);
        var o = 0;
        if (Vector.IsHardwareAccelerated)
        {
            var v = Vector<double>.Count;
            var g0 = new Vector<double>(g[0]);
            // Eight independent accumulators hide the FMA latency.
            for (; o + (8 * v) <= count; o += 8 * v)
            {
                ref var c = ref Unsafe.Add(ref centre, o);
                var a0 = g0 * Vector.LoadUnsafe(ref c);
                var a1 = g0 * Vector.LoadUnsafe(ref c, (nuint)v);
                var a2 = g0 * Vector.LoadUnsafe(ref c, (nuint)(2 * v));
                var a3 = g0 * Vector.LoadUnsafe(ref c, (nuint)(3 * v));
                var a4 = g0 * Vector.LoadUnsafe(ref c, (nuint)(4 * v));
                var a5 = g0 * Vector.LoadUnsafe(ref c, (nuint)(5 * v));
                var a6 = g0 * Vector.LoadUnsafe(ref c, (nuint)(6 * v));
                var a7 = g0 * Vector.LoadUnsafe(ref c, (nuint)(7 * v));
                for (var d = 1; d < t; d++)
                {
                    var k = new Vector<double>(Unsafe.Add(ref coef, d));
                    ref var up = ref Unsafe.Add(ref c, d);
                    ref var down = ref Unsafe.Subtract(ref c, d);
                    a0 = Vector.MultiplyAddEstimate(k, Vector.LoadUnsafe(ref up) + Vector.LoadUnsafe(ref down), a0);
                    a1 = Vector.MultiplyAddEstimate(k, Vector.LoadUnsafe(ref up, (nuint)v) + Vector.LoadUnsafe(ref down, (nuint)v), a1);
                    a2 = Vector.MultiplyAddEstimate(k, Vector.LoadUnsafe(ref up, (nuint)(2 * v)) + Vector.LoadUnsafe(ref down, (nuint)(2 * v)), a2);
                    a3 = Vector.MultiplyAddEstimate(k, Vector.LoadUnsafe(ref up, (nuint)(3 * v)) + Vector.LoadUnsafe(ref down, (nuint)(3 * v)), a3);
                    a4 = Vector.MultiplyAddEstimate(k, Vector.LoadUnsafe(ref up, (nuint)(4 * v)) + Vector.LoadUnsafe(ref down, (nuint)(4 * v)), a4);
                    a5 = Vector.MultiplyAddEstimate(k, Vector.LoadUnsafe(ref up, (nuint)(5 * v)) + Vector.LoadUnsafe(ref down, (nuint)(5 * v)), a5);
                    a6 = Vector.MultiplyAddEstimate(k, Vector.LoadUnsafe(ref up, (nuint)(6 * v)) + Vector.LoadUnsafe(ref down, (nuint)(6 * v)), a6);
                    a7 = Vector.MultiplyAddEstimate(k, Vector.LoadUnsafe(ref up, (nuint)(7 * v)) + Vector.LoadUnsafe(ref down, (nuint)(7 * v)), a7);
                }

                a0.StoreUnsafe(ref dst, (nuint)o);
                a1.StoreUnsafe(ref dst, (nuint)(o + v));
                a2.StoreUnsafe(ref dst, (nuint)(o + (2 * v)));
                a3.StoreUnsafe(ref dst, (nuint)(o + (3 * v)));
                a4.StoreUnsafe(ref dst, (nuint)(o + (4 * v)));
                a5.StoreUnsafe(ref dst, (nuint)(o + (5 * v)));
                a6.StoreUnsafe(ref dst, (nuint)(o + (6 * v)));
                a7.StoreUnsafe(ref dst, (nuint)(o + (7 * v)));
            }

            for (; o + v <= count; o += v)
            {
                ref var c = ref Unsafe.Add(ref centre, o);
                var a = g0 * Vector.LoadUnsafe(ref c);
                for (var d = 1; d < t; d++)
                {
                    a = Vector.MultiplyAddEstimate(new Vector<double>(Unsafe.Add(ref coef, d)), Vector.LoadUnsafe(ref Unsafe.Add(ref c, d)) + Vector.LoadUnsafe(ref Unsafe.Subtract(ref c, d)), a);
                }

                a.StoreUnsafe(ref dst, (nuint)o);
            }
        }

        for (; o < count; o++)
        {
            var centreIndex = o + t - 1;
            var sum = g[0] * input[centreIndex];
            for (var d = 1; d < t; d++)
            {
                sum += g[d] * (input[centreIndex + d] + input[centreIndex - d]);
            }

            output[o] = sum;
        }
    }

}
