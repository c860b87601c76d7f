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

    // Four sections whose numerators are b0 (1, 2, 1): the decimator's Chebyshev low-pass, run by Pair4.
    private readonly bool _biquadLowPass4;

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
        _biquadLowPass4 = _sections == 4;
        for (var s = 0; s < _sections; s++)
        {
            var row = _sos.AsSpan(s * 6, 6);
            _biquadLowPass4 &= row[0] != 0 && row[1] == 2 * row[0] && row[2] == row[0];
        }
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

        if (_biquadLowPass4 && Vector128.IsHardwareAccelerated)
        {
            // The decimator's case: the vector kernel with the signal in both lanes, so Apply and ApplyPair agree.
            Pair4(input, input, output, output, step);
            return;
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
        if (second.Length != n || !_biquadLowPass4 || !Vector128.IsHardwareAccelerated)
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

        Pair4(first, second, firstOutput, secondOutput, step);
    }

    /// <summary>
    /// The decimator's 4-section filter on two signals in the two lanes of a vector (<see cref="Apply"/> runs one signal
    /// in both). Every section has the numerator <c>b0 (1 + z^-1)^2</c> (a Chebyshev low-pass), so each runs as its
    /// all-pole part in direct form II, <c>w[n] = x[n] - a1 w[n-1] - a2 w[n-2]</c>, followed by
    /// <c>w[n] + 2 w[n-1] + w[n-2]</c>, and the product of the b0 scales the end: the same filter with two
    /// multiply-adds and three additions per section and sample instead of five multiplies, and one multiply-add
    /// between a state and the next. Both passes start from the steady state of the first value they filter, as
    /// <c>sosfilt_zi</c> does (each section's states equal its constant input over <c>1 + a1 + a2</c>); only the
    /// rounding differs from scipy's order, far below the model input's float32 resolution.
    /// </summary>
    private void Pair4(ReadOnlySpan<double> first, ReadOnlySpan<double> second, Span<double> firstOutput, Span<double> secondOutput, int step)
    {
        var n = first.Length;
        var edge = PadLength;
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
            var gain = Vector128.Create(c[0] * c[6] * c[12] * c[18]);
            var p0 = Vector128.Create(-c[4]);
            var q0 = Vector128.Create(-c[5]);
            var d0 = Vector128.Create(1 + c[4] + c[5]);
            var p1 = Vector128.Create(-c[10]);
            var q1 = Vector128.Create(-c[11]);
            var d1 = Vector128.Create(1 + c[10] + c[11]);
            var p2 = Vector128.Create(-c[16]);
            var q2 = Vector128.Create(-c[17]);
            var d2 = Vector128.Create(1 + c[16] + c[17]);
            var p3 = Vector128.Create(-c[22]);
            var q3 = Vector128.Create(-c[23]);
            var d3 = Vector128.Create(1 + c[22] + c[23]);

            for (var pass = 0; pass < 2; pass++)
            {
                // Forward pass from the first sample, in place; backward pass from the last, keeping the grid samples.
                var forward = pass == 0;
                var x = Vector128.LoadUnsafe(ref data, forward ? 0 : (nuint)(2 * (length - 1)));
                var w0 = x / d0;
                var v0 = w0;
                x = w0 * Vector128.Create(4.0);
                var in1 = x;
                var w1 = x / d1;
                var v1 = w1;
                x = w1 * Vector128.Create(4.0);
                var in2 = x;
                var w2 = x / d2;
                var v2 = w2;
                x = w2 * Vector128.Create(4.0);
                var in3 = x;
                var w3 = x / d3;
                var v3 = w3;
                var next = ((n - 1) / step) * step;
                var count = forward ? length : length - edge;
                var input = Vector128.LoadUnsafe(ref data, forward ? 0 : (nuint)(2 * (length - 1)));

                // Skewed by one sample per section: iteration m feeds sample m to section 0 and the previous
                // iteration's outputs of sections 0, 1, 2 to sections 1, 2, 3, so the four recurrences of an iteration
                // are independent and overlap. Sections 1 to 3 first see their steady-state input, which leaves their
                // steady state where it is; section 0's inputs after the last sample reach no kept output.
                for (var m = 0; m < count + 3; m++)
                {
                    if (m < count)
                    {
                        input = Vector128.LoadUnsafe(ref data, (nuint)(2 * (forward ? m : length - 1 - m)));
                    }

                    var u0 = Vector128.FusedMultiplyAdd(p0, w0, Vector128.FusedMultiplyAdd(q0, v0, input));
                    var out0 = (u0 + v0) + (w0 + w0);
                    v0 = w0;
                    w0 = u0;
                    var u1 = Vector128.FusedMultiplyAdd(p1, w1, Vector128.FusedMultiplyAdd(q1, v1, in1));
                    var out1 = (u1 + v1) + (w1 + w1);
                    v1 = w1;
                    w1 = u1;
                    var u2 = Vector128.FusedMultiplyAdd(p2, w2, Vector128.FusedMultiplyAdd(q2, v2, in2));
                    var out2 = (u2 + v2) + (w2 + w2);
                    v2 = w2;
                    w2 = u2;
                    var u3 = Vector128.FusedMultiplyAdd(p3, w3, Vector128.FusedMultiplyAdd(q3, v3, in3));
                    var out3 = (u3 + v3) + (w3 + w3);
                    v3 = w3;
                    w3 = u3;
                    in1 = out0;
                    in2 = out1;
                    in3 = out2;
                    if (m < 3)
                    {
                        continue;
                    }

                    var y = gain * out3;
                    var i = forward ? m - 3 : length - 1 - (m - 3);
                    if (forward)
                    {
                        y.StoreUnsafe(ref data, (nuint)(2 * i));
                    }
                    else if (i - edge == next)
                    {
                        firstOutput[next / step] = y.GetElement(0);
                        secondOutput[next / step] = y.GetElement(1);
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

    private void FilterBackwardDecimated(ReadOnlySpan<double> data, Span<double> state, int edge, int n, int step, Span<double> output)
    {
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
}
