using HubertEcg.Inference.Evaluation;
using HubertEcg.Testing;

namespace HubertEcg.Unit.Tests.Evaluation;

/// <summary>The metric sweep on small hand-checked cases, the bootstrap, and the threshold rules.</summary>
public sealed class BinaryMetricsTests
{
    private static ulong[] Keys(params (float P, bool Y)[] records)
    {
        var keys = records.Select((r, i) => BinaryMetrics.Key(r.P, i, r.Y)).ToArray();
        Array.Sort(keys);
        return keys;
    }

    [Fact]
    public void TiesCountHalfAndThresholdsAreInclusive()
    {
        // Positives 0.8, 0.5; negatives 0.5, 0.2. Pairs: (0.8 > 0.5), (0.8 > 0.2), (0.5 = 0.5: half), (0.5 > 0.2) -> 3.5 / 4.
        var m = BinaryMetrics.Compute("X", Keys((0.8f, true), (0.5f, true), (0.5f, false), (0.2f, false)));
        Assert.Equal(0.875, m.Auroc);
        // At 0.5 (>= 0.5): tp 2, fp 1, fn 0, tn 1.
        Assert.Equal((1.0, 0.5, 2 / 3.0, 1.0, 0.8), (m.SensitivityAtHalf, m.SpecificityAtHalf, m.PpvAtHalf, m.NpvAtHalf, m.F1AtHalf));
        // AP: at 0.8 recall 0.5 precision 1; at 0.5 recall 1 precision 2/3 -> 0.5 + 0.5 * 2/3.
        Assert.Equal(0.5 + (1 / 3.0), m.Auprc!.Value, 12);
        // J at 0.8: 0.5 - 0 = 0.5; at 0.5: 1 - 0.5 = 0.5 (tie: the higher value wins); at 0.2: 0.
        Assert.Equal(0.8f, m.YoudenThreshold);
        Assert.Equal((0.5, 1.0), (m.YoudenSensitivity, m.YoudenSpecificity));
    }

    [Fact]
    public void RadixSortOrdersByValueAndKeepsEveryKey()
    {
        var random = new Random(5);
        var keys = Enumerable.Range(0, 5000)
            .Select(i => BinaryMetrics.Key(random.Next(4) == 0 ? 0f : MathF.Round(random.NextSingle(), 3), i, random.Next(3) == 0))
            .ToArray();
        var expected = keys.Order().ToArray();
        var sorted = BinaryMetrics.SortByValue([.. keys], new ulong[keys.Length], keys.Length);
        Assert.Equal(expected.Select(BinaryMetrics.ValueOf), sorted.Select(BinaryMetrics.ValueOf));
        Assert.Equal(expected, sorted.Order());
        Assert.Equal(BinaryMetrics.Compute("X", expected), BinaryMetrics.Compute("X", sorted));

        // All keys of one value: every pass is skipped and the keys stay where they are.
        ulong[] same = [BinaryMetrics.Key(0.5f, 1, true), BinaryMetrics.Key(0.5f, 0, false)];
        Assert.Equal(same, BinaryMetrics.SortByValue([.. same], new ulong[2], 2));
    }

    [Fact]
    public void UndefinedMetricsAreNull()
    {
        var noPositive = BinaryMetrics.Compute("X", Keys((0.1f, false), (0.7f, false)));
        Assert.Null(noPositive.Auroc);
        Assert.Null(noPositive.Auprc);
        Assert.Null(noPositive.SensitivityAtHalf);
        Assert.Null(noPositive.YoudenThreshold);
        Assert.Equal(0.5, noPositive.SpecificityAtHalf);
        Assert.Equal(0.0, noPositive.PpvAtHalf);

        var nothingAboveHalf = BinaryMetrics.Compute("X", Keys((0.1f, true), (0.2f, false)));
        Assert.Null(nothingAboveHalf.PpvAtHalf);
        Assert.Equal(0.0, nothingAboveHalf.F1AtHalf);
    }

    [Fact]
    public void WeightedSweepWithEveryRecordOnceEqualsThePlainOne()
    {
        var scores = ScoreCsvReader.Read(MetricsGolden.File("scores.csv"));
        var labels = LabelFileReader.Read(MetricsGolden.File("labels_long.csv"), scores);
        var label = scores.LabelIndex("AF");
        var keys = Enumerable.Range(0, scores.Count)
            .Select(r => BinaryMetrics.Key(scores.Get(label, r), r, labels.IsPositive(label, r)))
            .Order()
            .ToArray();
        var plain = BinaryMetrics.Compute("AF", keys);
        var (auroc, auprc) = BinaryMetrics.ComputeWeighted(keys, Enumerable.Repeat(1, scores.Count).ToArray());
        Assert.Equal(plain.Auroc!.Value, auroc!.Value, 12);
        Assert.Equal(plain.Auprc!.Value, auprc!.Value, 12);
    }

    [Fact]
    public void BootstrapIsReproducibleAndBracketsTheEstimate()
    {
        var scores = ScoreCsvReader.Read(MetricsGolden.File("scores.csv"));
        var labels = LabelFileReader.Read(MetricsGolden.File("labels_wide.csv"), scores);
        var first = Evaluator.Evaluate(scores, labels, new EvaluationOptions(Bootstrap: 50, Seed: 7));
        var again = Evaluator.Evaluate(scores, labels, new EvaluationOptions(Bootstrap: 50, Seed: 7, MaxParallelism: 1));
        var other = Evaluator.Evaluate(scores, labels, new EvaluationOptions(Bootstrap: 50, Seed: 8));
        Assert.Equal(first.Labels.Select(m => (m.AurocInterval, m.AuprcInterval)), again.Labels.Select(m => (m.AurocInterval, m.AuprcInterval)));
        Assert.NotEqual(first.Labels.Select(m => m.AurocInterval), other.Labels.Select(m => m.AurocInterval));

        var af = first.Labels.Single(m => m.Code == "AF");
        Assert.InRange(af.Auroc!.Value, af.AurocInterval!.Value.Lo!.Value, af.AurocInterval.Value.Hi!.Value);
        Assert.True(af.AurocInterval.Value.Hi - af.AurocInterval.Value.Lo > 0.001);

        // SAB has no positive: no interval. ANMI has no negative: AUPRC 1 in every resample, no AUROC.
        var sab = first.Labels.Single(m => m.Code == "SAB");
        Assert.Equal(new Interval(null, null), sab.AurocInterval);
        Assert.Equal(new Interval(null, null), sab.AuprcInterval);
        var anmi = first.Labels.Single(m => m.Code == "ANMI");
        Assert.Equal(new Interval(null, null), anmi.AurocInterval);
        Assert.Equal(1.0, anmi.AuprcInterval!.Value.Lo!.Value, 12);
        Assert.Equal(1.0, anmi.AuprcInterval.Value.Hi!.Value, 12);
    }

    [Fact]
    public void ResampleDrawsEveryRecordCountOnce()
    {
        var weights = new int[1000];
        Evaluator.DrawResample(weights, 42, 3);
        Assert.Equal(1000, weights.Sum());
        var again = new int[1000];
        Evaluator.DrawResample(again, 42, 3);
        Assert.Equal(weights, again);
        // About 1 - 1/e of the records are drawn at least once.
        Assert.InRange(weights.Count(w => w > 0), 580, 680);
    }

    [Fact]
    public void PercentileInterpolatesLinearly()
    {
        double[] values = [1, 2, 3, 4, 5];
        Assert.Equal(1.1, Evaluator.Percentile(values, 0.025), 12);
        Assert.Equal(4.9, Evaluator.Percentile(values, 0.975), 12);
        Assert.Equal(3.0, Evaluator.Percentile(values, 0.5), 12);
    }

    [Theory]
    [InlineData("youden", 0.7f)]
    [InlineData("f1", 0.4f)]
    [InlineData("sensitivity=0.75", 0.4f)]
    [InlineData("sensitivity=0.5", 0.7f)]
    [InlineData("sensitivity=1", 0.1f)]
    [InlineData("ppv=0.6", 0.3f)]
    [InlineData("ppv=1", 0.7f)]
    public void RulesPickTheDocumentedThreshold(string rule, float expected)
    {
        // Positives 0.9, 0.7, 0.4, 0.1; negatives 0.6, 0.3, 0.2, 0.05.
        var keys = Keys((0.9f, true), (0.7f, true), (0.4f, true), (0.1f, true), (0.6f, false), (0.3f, false), (0.2f, false), (0.05f, false));
        // t=0.9: tp1 fp0; 0.7: tp2 fp0 (J .5, F1 .667); 0.6: tp2 fp1; 0.4: tp3 fp1 (J .5, F1 .75, PPV .75); 0.3: tp3 fp2 (PPV .6);
        // 0.2: tp3 fp3 (PPV .5); 0.1: tp4 fp3 (PPV .571); 0.05: tp4 fp4.
        Assert.Equal(expected, ThresholdRule.Parse(rule).Choose(keys));
    }

    [Fact]
    public void RuleThatCannotBeMetGivesNoThreshold()
    {
        var keys = Keys((0.9f, false), (0.7f, true), (0.1f, false));
        Assert.Null(ThresholdRule.Parse("ppv=1").Choose(Keys((0.9f, false), (0.1f, true))));
        Assert.Null(ThresholdRule.Parse("youden").Choose(Keys((0.9f, false), (0.1f, false))));
        Assert.Equal(0.7f, ThresholdRule.Parse("ppv=0.5").Choose(keys));
    }

    [Theory]
    [InlineData("sensitivity=0")]
    [InlineData("sensitivity=1.5")]
    [InlineData("ppv")]
    [InlineData("auc")]
    public void BadRulesAreRefused(string rule) =>
        Assert.Contains("expected youden, f1, sensitivity=X or ppv=X", Assert.Throws<ArgumentException>(() => ThresholdRule.Parse(rule)).Message, StringComparison.Ordinal);
}
