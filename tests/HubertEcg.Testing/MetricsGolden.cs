using System.Globalization;
using HubertEcg.Inference.Evaluation;
using Xunit;

namespace HubertEcg.Testing;

/// <summary>The shared evaluation cohort <c>../shared/golden/metrics</c> and its scikit-learn values (<c>expected.csv</c>).</summary>
public static class MetricsGolden
{
    public const double Tolerance = 1e-6;

    public static string File(string name) => RepoPaths.SharedFile("golden", "metrics", name);

    public static void AssertMatchesExpected(IReadOnlyList<LabelMetrics> labels)
    {
        var expected = ReadCsv(File("expected.csv"));
        Assert.Equal(expected.Count - 1, labels.Count);
        for (var r = 1; r < expected.Count; r++)
        {
            var e = expected[r];
            var m = labels[r - 1];
            Assert.Equal(e[0], m.Code);
            Assert.Equal(long.Parse(e[1], CultureInfo.InvariantCulture), m.Positives);
            Assert.Equal(long.Parse(e[2], CultureInfo.InvariantCulture), m.Negatives);
            double?[] ours =
            [
                m.Auroc, m.Auprc, m.SensitivityAtHalf, m.SpecificityAtHalf, m.PpvAtHalf, m.NpvAtHalf, m.F1AtHalf,
                m.YoudenThreshold, m.YoudenSensitivity, m.YoudenSpecificity,
            ];
            for (var c = 0; c < ours.Length; c++)
            {
                AssertCell(e[c + 3], MetricsCsv.Number(ours[c]), $"{m.Code} {expected[0][c + 3]}");
            }
        }
    }

    public static void AssertCell(string expected, string actual, string what)
    {
        if (expected.Length == 0)
        {
            Assert.True(actual.Length == 0, $"{what}: expected an empty cell, got {actual}");
            return;
        }

        Assert.True(actual.Length > 0, $"{what}: expected {expected}, got an empty cell");
        var e = double.Parse(expected, CultureInfo.InvariantCulture);
        var a = double.Parse(actual, CultureInfo.InvariantCulture);
        Assert.True(Math.Abs(e - a) <= Tolerance, $"{what}: expected {expected}, got {actual}");
    }

    public static List<string[]> ReadCsv(string path)
    {
        var rows = new List<string[]>();
        foreach (var line in System.IO.File.ReadAllLines(path))
        {
            rows.Add([.. CsvLines.Split(line, path, rows.Count + 1)]);
        }

        return rows;
    }
}
