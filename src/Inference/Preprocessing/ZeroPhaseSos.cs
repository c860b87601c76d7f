using System.Buffers;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace HubertEcg.Inference.Preprocessing;

/// <summary>
/// Second-order sections run forward and backward with the semantics of <c>scipy.signal.sosfiltfilt(sos, x)</c>:
/// odd extension of <c>3 * (2 * sections + 1 - trailing zero coefficients)</c> samples at each end, both passes
/// started from <c>sosfilt_zi</c> scaled by the first sample they filter, transposed direct form II per section.
/// </summary>
public sealed class ZeroPhaseSos
{
    private readonly double[] _sos;
    private readonly double[] _zi;
    private readonly int _sections;

    public ZeroPhaseSos(double[] sos)
    {
        ArgumentNullException.ThrowIfNull(sos);
        if (sos.Length == 0 || sos.Length % 6 != 0)
        {
            throw new ArgumentException("sos must hold whole sections of 6 coefficients", nameof(sos));
        }

        _sections = sos.Length / 6;
        _sos = new double[sos.Length];
        for (var s = 0; s < _sections; s++)
        {
            var a0 = sos[(s * 6) + 3];
            if (a0 != 1.0)
            {
                throw new ArgumentException($"section {s} has a0 = {a0}; sections must be normalised to a0 = 1", nameof(sos));
            }
        }

        sos.CopyTo(_sos, 0);
        _zi = ChebyshevDesign.SosStepInitialState(_sos);
        var zeroB2 = 0;
        var zeroA2 = 0;
        for (var s = 0; s < _sections; s++)
        {
            zeroB2 += _sos[(s * 6) + 2] == 0 ? 1 : 0;
            zeroA2 += _sos[(s * 6) + 5] == 0 ? 1 : 0;
        }

        PadLength = 3 * ((2 * _sections) + 1 - Math.Min(zeroB2, zeroA2));
    }

    public int PadLength { get; }

    /// <summary>
    /// Filters <paramref name="input"/> and writes every <paramref name="step"/>-th output sample (0, step, ...)
    /// into <paramref name="output"/>, which must hold <c>ceil(n / step)</c> values.
    /// </summary>
    public void Apply(ReadOnlySpan<double> input, Span<double> output, int step = 1)
    {
        var n = input.Length;
        ArgumentOutOfRangeException.ThrowIfLessThan(step, 1);
        if (output.Length != (n + step - 1) / step)
        {
            throw new ArgumentException($"output must hold {(n + step - 1) / step} values", nameof(output));
        }

        var edge = PadLength;
        if (n <= edge)
        {
            throw new ArgumentException($"the signal ({n} samples) must be longer than the filter's pad length ({edge})", nameof(input));
        }

        var length = n + (2 * edge);
        var buffer = ArrayPool<double>.Shared.Rent(length);
        Span<double> state = stackalloc double[_zi.Length];
        try
        {
            var ext = buffer.AsSpan(0, length);
            var first = input[0];
            var last = input[n - 1];
            for (var j = 0; j < edge; j++)
            {
                ext[j] = (2 * first) - input[edge - j];
            }

            input.CopyTo(ext.Slice(edge, n));
            for (var j = 1; j <= edge; j++)
            {
                ext[edge + n - 1 + j] = (2 * last) - input[n - 1 - j];
            }

            // Forward pass, in place.
            ScaledState(state, ext[0]);
            FilterForward(ext, state);

            // Backward pass from the end; keep the samples that land on the grid.
            ScaledState(state, ext[length - 1]);
            FilterBackwardDecimated(ext, state, edge, n, step, output);
        }
        finally
        {
            ArrayPool<double>.Shared.Return(buffer);
        }
    }

    /// <summary>
    /// <see cref="Apply"/> on two signals of equal length at once (two SIMD lanes), with results identical to two
    /// separate calls.
    /// </summary>
    public void ApplyPair(ReadOnlySpan<double> first, ReadOnlySpan<double> second, Span<double> firstOutput, Span<double> secondOutput, int step = 1)
    {
        var n = first.Length;
        if (second.Length != n || _sections != 4 || !Vector128.IsHardwareAccelerated)
        {
            Apply(first, firstOutput, step);
            Apply(second, secondOutput, step);
            return;
        }

        ArgumentOutOfRangeException.ThrowIfLessThan(step, 1);
        var outputs = (n + step - 1) / step;
        if (firstOutput.Length != outputs || secondOutput.Length != outputs)
        {
            throw new ArgumentException($"outputs must hold {outputs} values each", nameof(firstOutput));
        }

        var edge = PadLength;
        if (n <= edge)
        {
            throw new ArgumentException($"the signals ({n} samples) must be longer than the filter's pad length ({edge})", nameof(first));
        }

        var length = n + (2 * edge);
        var buffer = ArrayPool<double>.Shared.Rent(2 * length);
        try
        {
            // Interleaved odd extensions: ext[2 j] from the first signal, ext[2 j + 1] from the second.
            var ext = buffer.AsSpan(0, 2 * length);
            Interleave(first, ext, 0, edge);
            Interleave(second, ext, 1, edge);
            ref var data = ref MemoryMarshal.GetReference(ext);
            var c = _sos.AsSpan(0, 24);
            var b00 = Vector128.Create(c[0]);
            var b01 = Vector128.Create(c[1]);
            var b02 = Vector128.Create(c[2]);
            var a01 = Vector128.Create(-c[4]);
            var a02 = Vector128.Create(-c[5]);
            var b10 = Vector128.Create(c[6]);
            var b11 = Vector128.Create(c[7]);
            var b12 = Vector128.Create(c[8]);
            var a11 = Vector128.Create(-c[10]);
            var a12 = Vector128.Create(-c[11]);
            var b20 = Vector128.Create(c[12]);
            var b21 = Vector128.Create(c[13]);
            var b22 = Vector128.Create(c[14]);
            var a21 = Vector128.Create(-c[16]);
            var a22 = Vector128.Create(-c[17]);
            var b30 = Vector128.Create(c[18]);
            var b31 = Vector128.Create(c[19]);
            var b32 = Vector128.Create(c[20]);
            var a31 = Vector128.Create(-c[22]);
            var a32 = Vector128.Create(-c[23]);

            for (var pass = 0; pass < 2; pass++)
            {
                // Forward pass from the first sample, in place; backward pass from the last, keeping the grid samples.
                var forward = pass == 0;
                var x0 = Vector128.LoadUnsafe(ref data, forward ? 0 : (nuint)(2 * (length - 1)));
                var z00 = Vector128.Create(_zi[0]) * x0;
                var z01 = Vector128.Create(_zi[1]) * x0;
                var z10 = Vector128.Create(_zi[2]) * x0;
                var z11 = Vector128.Create(_zi[3]) * x0;
                var z20 = Vector128.Create(_zi[4]) * x0;
                var z21 = Vector128.Create(_zi[5]) * x0;
                var z30 = Vector128.Create(_zi[6]) * x0;
                var z31 = Vector128.Create(_zi[7]) * x0;
                var next = ((n - 1) / step) * step;
                var count = forward ? length : length - edge;
                for (var m = 0; m < count; m++)
                {
                    var i = forward ? m : length - 1 - m;
                    ref var slot = ref Unsafe.Add(ref data, 2 * i);
                    var x = Vector128.LoadUnsafe(ref slot);
                    var y0 = Vector128.FusedMultiplyAdd(b00, x, z00);
                    z00 = Vector128.FusedMultiplyAdd(a01, y0, Vector128.FusedMultiplyAdd(b01, x, z01));
                    z01 = Vector128.FusedMultiplyAdd(a02, y0, b02 * x);
                    var y1 = Vector128.FusedMultiplyAdd(b10, y0, z10);
                    z10 = Vector128.FusedMultiplyAdd(a11, y1, Vector128.FusedMultiplyAdd(b11, y0, z11));
                    z11 = Vector128.FusedMultiplyAdd(a12, y1, b12 * y0);
                    var y2 = Vector128.FusedMultiplyAdd(b20, y1, z20);
                    z20 = Vector128.FusedMultiplyAdd(a21, y2, Vector128.FusedMultiplyAdd(b21, y1, z21));
                    z21 = Vector128.FusedMultiplyAdd(a22, y2, b22 * y1);
                    var y3 = Vector128.FusedMultiplyAdd(b30, y2, z30);
                    z30 = Vector128.FusedMultiplyAdd(a31, y3, Vector128.FusedMultiplyAdd(b31, y2, z31));
                    z31 = Vector128.FusedMultiplyAdd(a32, y3, b32 * y2);
                    if (forward)
                    {
                        y3.StoreUnsafe(ref slot);
                    }
                    else if (i - edge == next)
                    {
                        firstOutput[next / step] = y3.GetElement(0);
                        secondOutput[next / step] = y3.GetElement(1);
                        next -= step;
                    }
                }
            }
        }
        finally
        {
            ArrayPool<double>.Shared.Return(buffer);
        }
    }

    private static void Interleave(ReadOnlySpan<double> input, Span<double> ext, int lane, int edge)
    {
        var n = input.Length;
        var first = input[0];
        var last = input[n - 1];
        for (var j = 0; j < edge; j++)
        {
            ext[(2 * j) + lane] = (2 * first) - input[edge - j];
        }

        for (var j = 0; j < n; j++)
        {
            ext[(2 * (edge + j)) + lane] = input[j];
        }

        for (var j = 1; j <= edge; j++)
        {
            ext[(2 * (edge + n - 1 + j)) + lane] = (2 * last) - input[n - 1 - j];
        }
    }

    private void ScaledState(Span<double> state, double x0)
    {
        for (var i = 0; i < state.Length; i++)
        {
            state[i] = _zi[i] * x0;
        }
    }

    private void FilterForward(Span<double> data, Span<double> state)
    {
        if (_sections == 4)
        {
            FilterForward4(data, state);
            return;
        }

        var sos = _sos;
        for (var i = 0; i < data.Length; i++)
        {
            var x = data[i];
            for (var s = 0; s < _sections; s++)
            {
                var row = s * 6;
                var y = (sos[row] * x) + state[2 * s];
                state[2 * s] = (sos[row + 1] * x) - (sos[row + 4] * y) + state[(2 * s) + 1];
                state[(2 * s) + 1] = (sos[row + 2] * x) - (sos[row + 5] * y);
                x = y;
            }

            data[i] = x;
        }
    }

    // The same recurrence with the 4 sections' coefficients and states in locals (the decimator's case).
    private void FilterForward4(Span<double> data, Span<double> state)
    {
        var c = _sos.AsSpan(0, 24);
        double b00 = c[0], b01 = c[1], b02 = c[2], a01 = c[4], a02 = c[5];
        double b10 = c[6], b11 = c[7], b12 = c[8], a11 = c[10], a12 = c[11];
        double b20 = c[12], b21 = c[13], b22 = c[14], a21 = c[16], a22 = c[17];
        double b30 = c[18], b31 = c[19], b32 = c[20], a31 = c[22], a32 = c[23];
        double z00 = state[0], z01 = state[1], z10 = state[2], z11 = state[3];
        double z20 = state[4], z21 = state[5], z30 = state[6], z31 = state[7];
        for (var i = 0; i < data.Length; i++)
        {
            var x = data[i];
            var y0 = Math.FusedMultiplyAdd(b00, x, z00);
            z00 = Math.FusedMultiplyAdd(-a01, y0, Math.FusedMultiplyAdd(b01, x, z01));
            z01 = Math.FusedMultiplyAdd(-a02, y0, b02 * x);
            var y1 = Math.FusedMultiplyAdd(b10, y0, z10);
            z10 = Math.FusedMultiplyAdd(-a11, y1, Math.FusedMultiplyAdd(b11, y0, z11));
            z11 = Math.FusedMultiplyAdd(-a12, y1, b12 * y0);
            var y2 = Math.FusedMultiplyAdd(b20, y1, z20);
            z20 = Math.FusedMultiplyAdd(-a21, y2, Math.FusedMultiplyAdd(b21, y1, z21));
            z21 = Math.FusedMultiplyAdd(-a22, y2, b22 * y1);
            var y3 = Math.FusedMultiplyAdd(b30, y2, z30);
            z30 = Math.FusedMultiplyAdd(-a31, y3, Math.FusedMultiplyAdd(b31, y2, z31));
            z31 = Math.FusedMultiplyAdd(-a32, y3, b32 * y2);
            data[i] = y3;
        }
    }

    private void FilterBackwardDecimated(ReadOnlySpan<double> data, Span<double> state, int edge, int n, int step, Span<double> output)
    {
        if (_sections == 4)
        {
            FilterBackwardDecimated4(data, state, edge, n, step, output);
            return;
        }

        var sos = _sos;
        for (var i = data.Length - 1; i >= edge; i--)
        {
            var x = data[i];
            for (var s = 0; s < _sections; s++)
            {
                var row = s * 6;
                var y = (sos[row] * x) + state[2 * s];
                state[2 * s] = (sos[row + 1] * x) - (sos[row + 4] * y) + state[(2 * s) + 1];
                state[(2 * s) + 1] = (sos[row + 2] * x) - (sos[row + 5] * y);
                x = y;
            }

            var k = i - edge;
            if (k < n && k % step == 0)
            {
                output[k / step] = x;
            }
        }
    }

    private void FilterBackwardDecimated4(ReadOnlySpan<double> data, Span<double> state, int edge, int n, int step, Span<double> output)
    {
        var c = _sos.AsSpan(0, 24);
        double b00 = c[0], b01 = c[1], b02 = c[2], a01 = c[4], a02 = c[5];
        double b10 = c[6], b11 = c[7], b12 = c[8], a11 = c[10], a12 = c[11];
        double b20 = c[12], b21 = c[13], b22 = c[14], a21 = c[16], a22 = c[17];
        double b30 = c[18], b31 = c[19], b32 = c[20], a31 = c[22], a32 = c[23];
        double z00 = state[0], z01 = state[1], z10 = state[2], z11 = state[3];
        double z20 = state[4], z21 = state[5], z30 = state[6], z31 = state[7];
        var next = ((n - 1) / step) * step;
        for (var i = data.Length - 1; i >= edge; i--)
        {
            var x = data[i];
            var y0 = Math.FusedMultiplyAdd(b00, x, z00);
            z00 = Math.FusedMultiplyAdd(-a01, y0, Math.FusedMultiplyAdd(b01, x, z01));
            z01 = Math.FusedMultiplyAdd(-a02, y0, b02 * x);
            var y1 = Math.FusedMultiplyAdd(b10, y0, z10);
            z10 = Math.FusedMultiplyAdd(-a11, y1, Math.FusedMultiplyAdd(b11, y0, z11));
            z11 = Math.FusedMultiplyAdd(-a12, y1, b12 * y0);
            var y2 = Math.FusedMultiplyAdd(b20, y1, z20);
            z20 = Math.FusedMultiplyAdd(-a21, y2, Math.FusedMultiplyAdd(b21, y1, z21));
            z21 = Math.FusedMultiplyAdd(-a22, y2, b22 * y1);
            var y3 = Math.FusedMultiplyAdd(b30, y2, z30);
            z30 = Math.FusedMultiplyAdd(-a31, y3, Math.FusedMultiplyAdd(b31, y2, z31));
            z31 = Math.FusedMultiplyAdd(-a32, y3, b32 * y2);
            if (i - edge == next)
            {
                output[next / step] = y3;
                next -= step;
            }
        }
    }
}
