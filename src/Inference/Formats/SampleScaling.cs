using System.Numerics;

namespace HubertEcg.Inference.Formats;

/// <summary>Stored 16-bit samples to physical values, as the readers of the clinical formats scale them.</summary>
internal static class SampleScaling
{
    /// <summary>
    /// values[t] = samples[t] x gain x times / over, each step rounded as written (a product by 1.0 or a quotient by
    /// 1.0 is exact, so it is left out), several samples a step where the hardware allows.
    /// </summary>
    public static void Int16ToDouble(ReadOnlySpan<short> samples, Span<double> values, double gain, double times = 1.0, double over = 1.0)
    {
        var t = 0;
        if (Vector.IsHardwareAccelerated && values.Length >= Vector<short>.Count)
        {
            var g = new Vector<double>(gain);
            var m = new Vector<double>(times);
            var d = new Vector<double>(over);
            var step = Vector<double>.Count;
            for (; t + Vector<short>.Count <= values.Length; t += Vector<short>.Count)
            {
                Vector.Widen(new Vector<short>(samples[t..]), out var low, out var high);
                Vector.Widen(low, out var a, out var b);
                Vector.Widen(high, out var c, out var e);
                Store(Vector.ConvertToDouble(a), values[t..]);
                Store(Vector.ConvertToDouble(b), values[(t + step)..]);
                Store(Vector.ConvertToDouble(c), values[(t + (2 * step))..]);
                Store(Vector.ConvertToDouble(e), values[(t + (3 * step))..]);
            }

            void Store(Vector<double> x, Span<double> to)
            {
                x *= g;
                if (times != 1.0)
                {
                    x *= m;
                }

                if (over != 1.0)
                {
                    x /= d;
                }

                x.CopyTo(to);
            }
        }

        for (; t < values.Length; t++)
        {
            var x = samples[t] * gain;
            if (times != 1.0)
            {
                x *= times;
            }

            values[t] = over != 1.0 ? x / over : x;
        }
    }
}
