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
/// (the pad, 3 x taps, is longer than the filter's memory), so the forward pass is a plain convolution over the
/// signal with <c>taps - 1</c> odd-extension samples at each end, and the backward pass a plain correlation.
/// Both run as vectorised dot products.
/// </remarks>
public sealed class ZeroPhaseFir
{
    private readonly double[] _taps;
    private readonly double[] _reversed;

    public ZeroPhaseFir(double[] taps)
    {
        ArgumentNullException.ThrowIfNull(taps);
        if (taps.Length == 0)
        {
            throw new ArgumentException("an FIR filter needs at least one tap", nameof(taps));
        }

        _taps = (double[])taps.Clone();
        _reversed = (double[])taps.Clone();
        Array.Reverse(_reversed);
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
        var forwardLength = n + t - 1;
        var buffer = ArrayPool<double>.Shared.Rent(extended + forwardLength);
        try
        {
            // ext[j] = x~[j - (t - 1)], x~ the odd extension: 2 x[0] - x[-i] on the left, 2 x[n-1] - x[2(n-1) - i] on the right.
            var ext = buffer.AsSpan(0, extended);
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

            // Forward: y[o] = sum_k h[k] x~[o - k], o = 0 .. n + t - 2.
            var forward = buffer.AsSpan(extended, forwardLength);
            Correlate(ext, _reversed, forward);

            // Backward: w[o] = sum_k h[k] y[o + k], o = 0 .. n - 1.
            Correlate(forward, _taps, output);
        }
        finally
        {
            ArrayPool<double>.Shared.Return(buffer);
        }
    }

    /// <summary><c>output[o] = sum_j coefficients[j] * input[o + j]</c>; input must hold output + coefficients - 1 values.</summary>
    internal static void Correlate(ReadOnlySpan<double> input, ReadOnlySpan<double> coefficients, Span<double> output)
    {
        var t = coefficients.Length;
        var count = output.Length;
        if (input.Length < count + t - 1)
        {
            throw new ArgumentException("input too short for the correlation", nameof(input));
        }

        ref var src = ref MemoryMarshal.GetReference(input);
        ref var coef = ref MemoryMarshal.GetReference(coefficients);
        ref var dst = ref MemoryMarshal.GetReference(output);
        var o = 0;
        if (Vector.IsHardwareAccelerated)
        {
            var v = Vector<double>.Count;
            for (; o + (4 * v) <= count; o += 4 * v)
            {
                var a0 = Vector<double>.Zero;
                var a1 = Vector<double>.Zero;
                var a2 = Vector<double>.Zero;
                var a3 = Vector<double>.Zero;
                ref var s = ref Unsafe.Add(ref src, o);
                for (var j = 0; j < t; j++)
                {
                    var c = new Vector<double>(Unsafe.Add(ref coef, j));
                    ref var sj = ref Unsafe.Add(ref s, j);
                    a0 = Vector.MultiplyAddEstimate(c, Vector.LoadUnsafe(ref sj), a0);
                    a1 = Vector.MultiplyAddEstimate(c, Vector.LoadUnsafe(ref sj, (nuint)v), a1);
                    a2 = Vector.MultiplyAddEstimate(c, Vector.LoadUnsafe(ref sj, (nuint)(2 * v)), a2);
                    a3 = Vector.MultiplyAddEstimate(c, Vector.LoadUnsafe(ref sj, (nuint)(3 * v)), a3);
                }

                a0.StoreUnsafe(ref dst, (nuint)o);
                a1.StoreUnsafe(ref dst, (nuint)(o + v));
                a2.StoreUnsafe(ref dst, (nuint)(o + (2 * v)));
                a3.StoreUnsafe(ref dst, (nuint)(o + (3 * v)));
            }

            for (; o + v <= count; o += v)
            {
                var a = Vector<double>.Zero;
                ref var s = ref Unsafe.Add(ref src, o);
                for (var j = 0; j < t; j++)
                {
                    a = Vector.MultiplyAddEstimate(new Vector<double>(Unsafe.Add(ref coef, j)), Vector.LoadUnsafe(ref Unsafe.Add(ref s, j)), a);
                }

                a.StoreUnsafe(ref dst, (nuint)o);
            }
        }

        for (; o < count; o++)
        {
            var sum = 0.0;
            for (var j = 0; j < t; j++)
            {
                sum += coefficients[j] * input[o + j];
            }

            output[o] = sum;
        }
    }
}
