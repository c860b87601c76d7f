using System.Buffers;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

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
/// symmetric), run as a vectorised dot product.
/// </remarks>
public sealed class ZeroPhaseFir
{
    // Extended signals up to this many samples take the aligned path (its pinned per-thread scratch holds 4 copies).
    internal const int AlignedPathLimit = 1 << 17;
    private const int AlignedLanes = 4;
    private const int AlignedBytes = AlignedLanes * sizeof(double);

    [ThreadStatic]
    private static double[]? _alignedScratch;

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
        if (extended <= AlignedPathLimit && Vector.IsHardwareAccelerated && Vector<double>.Count == AlignedLanes)
        {
            ApplyAligned(input, output, extended);
            return;
        }

        var buffer = ArrayPool<double>.Shared.Rent(extended);
        try
        {
            var ext = buffer.AsSpan(0, extended);
            Extend(input, ext, t);

            // w[o] = sum_d g[|d|] x~[o + d], d = -(t-1) .. t-1.
            SymmetricCorrelate(ext, _composite, output);
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
    /// The same correlation with every load aligned to the vector size: four copies of the extended signal, shifted
    /// by 0..3 samples, sit 32-byte aligned in a pinned per-thread buffer, and each tap reads from the copy whose
    /// shift makes its offset a multiple of 4. Unaligned loads that straddle cache lines are what bound the plain loop.
    /// </summary>
    private unsafe void ApplyAligned(ReadOnlySpan<double> input, Span<double> output, int extended)
    {
        var t = _taps.Length;
        var stride = ((extended + AlignedLanes - 1) / AlignedLanes * AlignedLanes) + AlignedLanes;
        var needed = (AlignedLanes * stride) + AlignedLanes;
        var scratch = _alignedScratch;
        if (scratch is null || scratch.Length < needed)
        {
            // Grows to the longest record this thread has filtered (bounded by AlignedPathLimit); pinned so the
            // alignment computed below stays valid.
            scratch = GC.AllocateUninitializedArray<double>(Math.Max(needed, 16_384), pinned: true);
            _alignedScratch = scratch;
        }

        fixed (double* origin = scratch)
        {
            var skip = (int)((AlignedBytes - ((nint)origin & (AlignedBytes - 1))) & (AlignedBytes - 1)) / sizeof(double);
            var copies = origin + skip;
            var shift0 = new Span<double>(copies, extended);
            Extend(input, shift0, t);
            for (var r = 1; r < AlignedLanes; r++)
            {
                shift0[r..].CopyTo(new Span<double>(copies + (r * stride), extended - r));
            }

            fixed (double* coefficients = _composite)
            fixed (double* destination = output)
            {
                CorrelateAligned(copies, stride, coefficients, t, destination, output.Length);
            }
        }
    }

    private static unsafe void CorrelateAligned(double* copies, int stride, double* g, int t, double* output, int count)
    {
        var c = t - 1;
        var g0 = new Vector<double>(g[0]);
        var o = 0;
        for (; o + (8 * AlignedLanes) <= count; o += 8 * AlignedLanes)
        {
            var pc = copies + ((c & 3) * stride) + (c & ~3) + o;
            var a0 = g0 * Vector.Load(pc);
            var a1 = g0 * Vector.Load(pc + 4);
            var a2 = g0 * Vector.Load(pc + 8);
            var a3 = g0 * Vector.Load(pc + 12);
            var a4 = g0 * Vector.Load(pc + 16);
            var a5 = g0 * Vector.Load(pc + 20);
            var a6 = g0 * Vector.Load(pc + 24);
            var a7 = g0 * Vector.Load(pc + 28);
            for (var d = 1; d < t; d++)
            {
                var up = c + d;
                var down = c - d;
                var pu = copies + ((up & 3) * stride) + (up & ~3) + o;
                var pd = copies + ((down & 3) * stride) + (down & ~3) + o;
                var k = new Vector<double>(g[d]);
                a0 = Vector.MultiplyAddEstimate(k, Vector.Load(pu) + Vector.Load(pd), a0);
                a1 = Vector.MultiplyAddEstimate(k, Vector.Load(pu + 4) + Vector.Load(pd + 4), a1);
                a2 = Vector.MultiplyAddEstimate(k, Vector.Load(pu + 8) + Vector.Load(pd + 8), a2);
                a3 = Vector.MultiplyAddEstimate(k, Vector.Load(pu + 12) + Vector.Load(pd + 12), a3);
                a4 = Vector.MultiplyAddEstimate(k, Vector.Load(pu + 16) + Vector.Load(pd + 16), a4);
                a5 = Vector.MultiplyAddEstimate(k, Vector.Load(pu + 20) + Vector.Load(pd + 20), a5);
                a6 = Vector.MultiplyAddEstimate(k, Vector.Load(pu + 24) + Vector.Load(pd + 24), a6);
                a7 = Vector.MultiplyAddEstimate(k, Vector.Load(pu + 28) + Vector.Load(pd + 28), a7);
            }

            a0.Store(output + o);
            a1.Store(output + o + 4);
            a2.Store(output + o + 8);
            a3.Store(output + o + 12);
            a4.Store(output + o + 16);
            a5.Store(output + o + 20);
            a6.Store(output + o + 24);
            a7.Store(output + o + 28);
        }

        for (; o + AlignedLanes <= count; o += AlignedLanes)
        {
            var a = g0 * Vector.Load(copies + ((c & 3) * stride) + (c & ~3) + o);
            for (var d = 1; d < t; d++)
            {
                var up = c + d;
                var down = c - d;
                var sum = Vector.Load(copies + ((up & 3) * stride) + (up & ~3) + o) + Vector.Load(copies + ((down & 3) * stride) + (down & ~3) + o);
                a = Vector.MultiplyAddEstimate(new Vector<double>(g[d]), sum, a);
            }

            a.Store(output + o);
        }

        // Scalar tail from the unshifted copy.
        for (; o < count; o++)
        {
            var centre = copies + c + o;
            var s = g[0] * centre[0];
            for (var d = 1; d < t; d++)
            {
                s += g[d] * (centre[d] + centre[-d]);
            }

            output[o] = s;
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
