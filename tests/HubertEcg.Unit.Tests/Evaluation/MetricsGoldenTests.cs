using System.Globalization;
using HubertEcg.Inference.Evaluation;
using HubertEcg.Testing;

namespace HubertEcg.Unit.Tests.Evaluation;

/// <summary>
/// The shared evaluation cohort (<c>../shared/golden/metrics</c>): 3,000 records x 164 labels whose metrics
/// scikit-learn 1.2 computed (<c>expected.csv</c>); ours must match within 1e-6 from both label layouts.
/// </summary>
public sealed class MetricsGoldenTests
{
    [Theory]
    [InlineData("labels_long.csv", LabelLayout.Long)]
    [InlineData("labels_wide.csv", LabelLayout.Wide)]
    public void MatchesScikitLearnFromEitherLayout(string labelFile, LabelLayout layout)
    {
        var scores = ScoreCsvReader.Read(MetricsGolden.File("scores.csv"));
        var labels = LabelFileReader.Read(MetricsGolden.File(labelFile), scores);
        Assert.Equal(layout, labels.Layout);
        var result = Evaluator.Evaluate(scores, labels, new EvaluationOptions());
        Assert.Equal(3000, result.Matched);
        Assert.Equal(0, result.ScoresOnly);
        Assert.Equal(0, result.LabelsOnly);
        MetricsGolden.AssertMatchesExpected(result.Labels);
    }

    [Fact]
    public void WrittenFileMatchesScikitLearnAndHasExactlyTheColumns()
    {
        var scores = ScoreCsvReader.Read(MetricsGolden.File("scores.csv"));
        var result = Evaluator.Evaluate(scores, LabelFileReader.Read(MetricsGolden.File("labels_long.csv"), scores), new EvaluationOptions());
        var path = Path.Combine(Path.GetTempPath(), $"metrics-{Guid.NewGuid():N}.csv");
        try
        {
            MetricsCsv.Write(path, result.Labels, withIntervals: false);
            var written = MetricsGolden.ReadCsv(path);
            var expected = MetricsGolden.ReadCsv(MetricsGolden.File("expected.csv"));
            Assert.Equal(expected[0], written[0]);
            Assert.Equal(
                "label_code,positives,negatives,auroc,auprc,sensitivity_at_0.5,specificity_at_0.5,ppv_at_0.5,npv_at_0.5,f1_at_0.5,youden_threshold,youden_sensitivity,youden_specificity",
                string.Join(',', written[0]));
            Assert.Equal(expected.Count, written.Count);
            for (var r = 1; r < expected.Count; r++)
            {
                Assert.Equal(expected[r][0], written[r][0]);
                for (var c = 1; c < expected[r].Length; c++)
                {
                    MetricsGolden.AssertCell(expected[r][c], written[r][c], $"{expected[r][0]} {expected[0][c]}");
                }
            }
        }
        finally
        {
            File.Delete(path);
        }
    }
}
