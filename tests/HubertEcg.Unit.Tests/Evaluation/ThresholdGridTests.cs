using HubertEcg.Inference.Evaluation;

namespace HubertEcg.Unit.Tests.Evaluation;

public sealed class ThresholdGridTests
{
    [Fact]
    public void TheFloorIsTheHighestGridThresholdAtOrBelow()
    {
        var random = new Random(5);
        float[] probes = [0f, 1f, 0.3f, 0.015f, 0.0009999f, 0.999f, 0.9995f, 1e-30f, .. Enumerable.Range(0, 20000).Select(_ => random.NextSingle())];
        foreach (var p in probes)
        {
            var floor = ThresholdGrid.Floor(p);
            var k = (int)Math.Round(floor * 1000.0);
            Assert.Equal(ThresholdGrid.Threshold(k), floor);
            Assert.True(floor <= p, $"{p}: floor {floor}");
            Assert.True(k == ThresholdGrid.Steps || ThresholdGrid.Threshold(k + 1) > p, $"{p}: g_{k + 1} is at or below it too");
        }

        // Every grid threshold is its own floor, and the float just below it floors to the one before.
        for (var k = 1; k <= ThresholdGrid.Steps; k++)
        {
            var g = ThresholdGrid.Threshold(k);
            Assert.Equal(g, ThresholdGrid.Floor(g));
            Assert.Equal(ThresholdGrid.Threshold(k - 1), ThresholdGrid.Floor(MathF.BitDecrement(g)));
        }
    }

    public static TheoryData<string> Rules => new() { "youden", "f1", "sensitivity=0.9", "sensitivity=0.5", "ppv=0.6", "ppv=0.95" };

    [Theory]
    [MemberData(nameof(Rules))]
    public void OnTheGridARulePicksWhatABruteForceSweepOfEveryGridThresholdPicks(string text)
    {
        var rule = ThresholdRule.Parse(text);
        for (var seed = 0; seed < 20; seed++)
        {
            var random = new Random(seed);
            var n = random.Next(5, 400);
            // Probabilities clustered near a few values, so that several fall on one grid step and some exactly on the grid.
            var records = Enumerable.Range(0, n).Select(i =>
            {
                var positive = random.NextDouble() < 0.3;
                var p = random.Next(4) == 0
                    ? ThresholdGrid.Threshold(random.Next(0, 1001))
                    : Math.Clamp((float)((positive ? 0.6 : 0.3) + (random.NextDouble() - 0.5) * 0.6), 0f, 1f);
                return (p, positive);
            }).ToArray();
            var keys = records.Select((r, i) => BinaryMetrics.Key(r.p, i, r.positive)).ToArray();
            Array.Sort(keys);
            Assert.Equal(BruteForce(rule, records), rule.Choose(keys, onGrid: true));
        }
    }

    // Every grid threshold from the top down, counting records at or above it, with the rule's tie-breaking.
    private static float? BruteForce(ThresholdRule rule, (float P, bool Positive)[] records)
    {
        long positives = records.Count(r => r.Positive), negatives = records.Length - positives;
        if (positives == 0 || (negatives == 0 && rule.Kind == ThresholdRuleKind.Youden))
        {
            return null;
        }

        float? chosen = null;
        var best = double.NegativeInfinity;
        var bestJ = long.MinValue;
        var seen = -1L;
        for (var k = ThresholdGrid.Steps; k >= 0; k--)
        {
            var g = ThresholdGrid.Threshold(k);
            long tp = records.Count(r => r.Positive && r.P >= g), fp = records.Count(r => !r.Positive && r.P >= g);
            if (tp + fp == seen || tp + fp == 0)
            {
                // The same records as the grid threshold above it (or none): not a candidate of its own.
                continue;
            }

            seen = tp + fp;
            switch (rule.Kind)
            {
                case ThresholdRuleKind.Youden when tp * negatives - fp * positives > bestJ:
                    bestJ = tp * negatives - fp * positives;
                    chosen = g;
                    break;
                case ThresholdRuleKind.F1 when 2.0 * tp / (tp + fp + positives) > best:
                    best = 2.0 * tp / (tp + fp + positives);
                    chosen = g;
                    break;
                case ThresholdRuleKind.Sensitivity when (double)tp / positives >= rule.Target:
                    return g;
                case ThresholdRuleKind.Ppv when (double)tp / (tp + fp) >= rule.Target:
                    chosen = g;
                    break;
            }
        }

        return chosen;
    }
}
