using System.Numerics;

namespace HubertEcg.Inference.Preprocessing;

/// <summary>Vectorised checks for NaN and infinite samples.</summary>
internal static class SampleScan
{
    /// <summary>True when a value is NaN.</summary>
    public static bool ContainsNaN(ReadOnlySpan<double> values)
    {
        var i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            for (; i <= values.Length - Vector<double>.Count; i += Vector<double>.Count)
            {
                var v = new Vector<double>(values[i..]);

                // NaN is the one value not equal to itself.
                if (!Vector.EqualsAll(v, v))
                {
                    return true;
                }
            }
        }

        for (; i < values.Length; i++)
        {
            if (double.IsNaN(values[i]))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>True when no value is infinite or NaN.</summary>
    public static bool AllFinite(ReadOnlySpan<double> values)
    {
        var i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            var infinity = new Vector<double>(double.PositiveInfinity);
            for (; i <= values.Length - Vector<double>.Count; i += Vector<double>.Count)
            {
                // |v| < inf is false for infinities and NaN.
                if (!Vector.LessThanAll(Vector.Abs(new Vector<double>(values[i..])), infinity))
                {
                    return false;
                }
            }
        }

        for (; i < values.Length; i++)
        {
            if (!double.IsFinite(values[i]))
            {
                return false;
            }
        }

        return true;
    }
}
