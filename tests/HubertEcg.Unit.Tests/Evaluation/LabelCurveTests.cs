using HubertEcg.Inference.Evaluation;
using HubertEcg.Testing;

namespace HubertEcg.Unit.Tests.Evaluation;

/// <summary>The stored ROC and precision-recall curve points: exact on small cohorts, bounded and faithful on large ones.</summary>
public sealed class LabelCurveTests
{
    private static ulong[] Keys(params (float P, bool Y)[] records)
    {
        var keys = records.Select((r, i) => BinaryMetrics.Key(r.P, i, r.Y)).ToArray();
        Array.Sort(keys);
        return keys;
    }

    [Fact]
    public void ASmallCohortKeepsEveryDistinctValueFromTheHighestDown()
    {
        // Positives 0.8, 0.5; negatives 0.5, 0.2: at 0.8 one TP; at 0.5 two TP and one FP; at 0.2 everything.
        var curve = BinaryMetrics.Curve(Keys((0.8f, true), (0.5f, true), (0.5f, false), (0.2f, false)))!;
        Assert.Equal([0.8f, 0.5f, 0.2f], curve.Thresholds);
        Assert.Equal([0.5f, 1f, 1f], curve.Tpr);
        Assert.Equal([0f, 0.5f, 1f], curve.Fpr);
        Assert.Equal([1f, 2f / 3, 0.5f], curve.Precision);
    }

    [Fact]
    public void ALabelWithoutBothClassesHasNoCurve()
    {
        Assert.Null(BinaryMetrics.Curve(Keys((0.1f, false), (0.7f, false))));
        Assert.Null(BinaryMetrics.Curve(Keys((0.1f, true), (0.7f, true))));
    }

    [Fact]
    public void ALargeCohortsCurveIsBoundedAndStaysOnTheExactCurve()
    {
        var random = new Random(5);
        var records = Enumerable.Range(0, 50_000).Select(_ =>
        {
            var positive = random.NextDouble() < 0.2;
            var p = (float)Math.Clamp((positive ? 0.65 : 0.4) + (0.15 * (random.NextDouble() + random.NextDouble() - 1)), 0, 1);
            return (p, positive);
        }).ToArray();
        var keys = Keys(records);
        var curve = BinaryMetrics.Curve(keys, 64)!;
        Assert.InRange(curve.Thresholds.Length, 3, 64);
        Assert.Equal(records.Max(r => r.p), curve.Thresholds[0]);
        Assert.Equal(records.Min(r => r.p), curve.Thresholds[^1]);
        Assert.Equal(1f, curve.Tpr[^1]);
        Assert.Equal(1f, curve.Fpr[^1]);

        // Every kept point is the exact rate at its threshold, and thresholds fall as rates rise.
        var positives = records.Count(r => r.positive);
        var negatives = records.Length - positives;
        for (var i = 0; i < curve.Thresholds.Length; i++)
        {
            var t = curve.Thresholds[i];
            var tp = records.Count(r => r.positive && r.p >= t);
            var fp = records.Count(r => !r.positive && r.p >= t);
            Assert.Equal((float)((double)tp / positives), curve.Tpr[i]);
            Assert.Equal((float)((double)fp / negatives), curve.Fpr[i]);
            Assert.Equal((float)((double)tp / (tp + fp)), curve.Precision[i]);
            if (i > 0)
            {
                Assert.True(curve.Thresholds[i] < curve.Thresholds[i - 1]);
                Assert.True(curve.Tpr[i] >= curve.Tpr[i - 1] && curve.Fpr[i] >= curve.Fpr[i - 1]);
            }
        }

        // The area under the kept ROC points (trapezoids) is close to the exact AUROC: nothing of the curve's shape lost.
        var auroc = BinaryMetrics.Compute("X", keys).Auroc!.Value;
        var area = 0.0;
        var (x0, y0) = (0.0, 0.0);
        for (var i = 0; i < curve.Tpr.Length; i++)
        {
            area += (curve.Fpr[i] - x0) * (curve.Tpr[i] + y0) / 2;
            (x0, y0) = (curve.Fpr[i], curve.Tpr[i]);
        }

        Assert.InRange(area, auroc - 0.01, auroc + 0.01);
    }

    [Fact]
    public void EvaluatingTheSharedCohortGivesEveryLabelWithBothClassesABoundedCurve()
    {
        var scores = ScoreCsvReader.Read(MetricsGolden.File("scores.csv"));
        var labels = LabelFileReader.Read(MetricsGolden.File("labels_wide.csv"), scores);
        var result = Evaluator.Evaluate(scores, labels, new EvaluationOptions());
        foreach (var m in result.Labels)
        {
            Assert.Equal(m.Auroc is not null, m.Curve is not null);
            if (m.Curve is { } curve)
            {
                Assert.InRange(curve.Thresholds.Length, 1, BinaryMetrics.CurvePoints);
            }
        }

        Assert.Contains(result.Labels, m => m.Curve is { Thresholds.Length: > 100 });
    }
}
