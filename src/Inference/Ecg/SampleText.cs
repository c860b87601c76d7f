using System.Globalization;

namespace HubertEcg.Inference.Ecg;

/// <summary>
/// Writes samples as text like WFDB's <c>rdsamp</c>: one row per sample, one tab-separated column per channel;
/// digital values as integers right-aligned in 7 characters, physical values with 8 decimals right-aligned in 15
/// (rounded half to even on exact ties, like C's printf); "NaN" for invalid samples.
/// </summary>
public static class SampleText
{
    public const int DigitalWidth = 7;
    public const int PhysicalWidth = 15;

    /// <summary>Writes digital columns; <paramref name="invalid"/> marks invalid samples.</summary>
    public static void WriteDigital(TextWriter writer, IReadOnlyList<int[]> columns, int invalid = int.MinValue)
    {
        ArgumentNullException.ThrowIfNull(writer);
        var rows = columns.Count == 0 ? 0 : columns[0].Length;
        Span<char> cell = stackalloc char[32];
        for (var r = 0; r < rows; r++)
        {
            for (var c = 0; c < columns.Count; c++)
            {
                if (c > 0)
                {
                    writer.Write('\t');
                }

                var v = columns[c][r];
                int n;
                if (v == invalid)
                {
                    "NaN".AsSpan().CopyTo(cell);
                    n = 3;
                }
                else
                {
                    v.TryFormat(cell, out n, default, CultureInfo.InvariantCulture);
                }

                Pad(writer, DigitalWidth - n);
                writer.Write(cell[..n]);
            }

            writer.Write('\n');
        }
    }

    /// <summary>Writes physical columns; NaN for invalid samples.</summary>
    public static void WritePhysical(TextWriter writer, IReadOnlyList<double[]> columns)
    {
        ArgumentNullException.ThrowIfNull(writer);
        var rows = columns.Count == 0 ? 0 : columns[0].Length;
        Span<char> cell = stackalloc char[64];
        for (var r = 0; r < rows; r++)
        {
            for (var c = 0; c < columns.Count; c++)
            {
                if (c > 0)
                {
                    writer.Write('\t');
                }

                var n = FormatPhysical(columns[c][r], cell);
                Pad(writer, PhysicalWidth - n);
                writer.Write(cell[..n]);
            }

            writer.Write('\n');
        }
    }

    /// <summary>Formats a physical value with 8 decimals (ties to even, like printf("%.8f")); "NaN" when not finite.</summary>
    public static string FormatPhysical(double value)
    {
        Span<char> cell = stackalloc char[64];
        var n = FormatPhysical(value, cell);
        return new string(cell[..n]);
    }

    private static int FormatPhysical(double value, Span<char> cell)
    {
        if (!double.IsFinite(value))
        {
            var text = double.IsNaN(value) ? "NaN" : value > 0 ? "Infinity" : "-Infinity";
            text.AsSpan().CopyTo(cell);
            return text.Length;
        }

        // An exact tie at the 9th decimal happens only when value * 512 is an odd integer; .NET rounds such ties
        // away from zero, printf to even.
        var scaled = value * 512;
        if (Math.Abs(value) < 1e7 && scaled == Math.Floor(scaled) && Math.Abs(scaled % 2) == 1)
        {
            var units = (long)Math.Round(value * 1e8, MidpointRounding.ToEven);
            var negative = value < 0 || (value == 0 && double.IsNegative(value));
            var magnitude = Math.Abs(units);
            var text = (negative ? "-" : string.Empty)
                + (magnitude / 100_000_000).ToString(CultureInfo.InvariantCulture) + "."
                + (magnitude % 100_000_000).ToString("D8", CultureInfo.InvariantCulture);
            text.AsSpan().CopyTo(cell);
            return text.Length;
        }

        value.TryFormat(cell, out var written, "F8", CultureInfo.InvariantCulture);
        return written;
    }

    private static void Pad(TextWriter writer, int count)
    {
        for (var i = 0; i < count; i++)
        {
            writer.Write(' ');
        }
    }
}
