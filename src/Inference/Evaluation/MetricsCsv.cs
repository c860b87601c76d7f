using System.Globalization;
using System.Text;

namespace HubertEcg.Inference.Evaluation;

/// <summary>
/// The per-label metrics file: one row per label, exactly <see cref="Columns"/> (and <see cref="IntervalColumns"/>
/// after them with a bootstrap). Undefined values are empty cells; numbers are written to round-trip (a threshold as
/// the single-precision value it is).
/// </summary>
public static class MetricsCsv
{
    public static readonly IReadOnlyList<string> Columns =
    [
        "label_code", "positives", "negatives", "auroc", "auprc", "sensitivity_at_0.5", "specificity_at_0.5", "ppv_at_0.5",
        "npv_at_0.5", "f1_at_0.5", "youden_threshold", "youden_sensitivity", "youden_specificity",
    ];

    public static readonly IReadOnlyList<string> IntervalColumns = ["auroc_lo", "auroc_hi", "auprc_lo", "auprc_hi"];

    public static void Write(string path, IReadOnlyList<LabelMetrics> labels, bool withIntervals)
    {
        var directory = Path.GetDirectoryName(Path.GetFullPath(path));
        if (!string.IsNullOrEmpty(directory))
        {
            Directory.CreateDirectory(directory);
        }

        using var writer = new StreamWriter(path, append: false, new UTF8Encoding(encoderShouldEmitUTF8Identifier: false));
        writer.NewLine = "\n";
        writer.WriteLine(string.Join(',', withIntervals ? Columns.Concat(IntervalColumns) : Columns));
        var line = new StringBuilder();
        foreach (var m in labels)
        {
            line.Clear();
            line.Append(Quote(m.Code)).Append(',')
                .Append(m.Positives.ToString(CultureInfo.InvariantCulture)).Append(',')
                .Append(m.Negatives.ToString(CultureInfo.InvariantCulture));
            foreach (var v in new[] { m.Auroc, m.Auprc, m.SensitivityAtHalf, m.SpecificityAtHalf, m.PpvAtHalf, m.NpvAtHalf, m.F1AtHalf })
            {
                line.Append(',').Append(Number(v));
            }

            line.Append(',').Append(m.YoudenThreshold is { } t ? t.ToString("R", CultureInfo.InvariantCulture) : "");
            line.Append(',').Append(Number(m.YoudenSensitivity)).Append(',').Append(Number(m.YoudenSpecificity));
            if (withIntervals)
            {
                line.Append(',').Append(Number(m.AurocInterval?.Lo)).Append(',').Append(Number(m.AurocInterval?.Hi))
                    .Append(',').Append(Number(m.AuprcInterval?.Lo)).Append(',').Append(Number(m.AuprcInterval?.Hi));
            }

            writer.WriteLine(line);
        }
    }

    public static string Number(double? value) => value is { } v ? v.ToString("R", CultureInfo.InvariantCulture) : "";

    private static string Quote(string value) =>
        value.AsSpan().IndexOfAny(",\"\r\n") >= 0 ? "\"" + value.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"" : value;
}
