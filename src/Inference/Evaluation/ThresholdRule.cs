using System.Globalization;

namespace HubertEcg.Inference.Evaluation;

/// <summary>How <c>thresholds fit</c> picks a label's threshold among its distinct probability values.</summary>
public enum ThresholdRuleKind
{
    /// <summary>Youden's J (sensitivity + specificity - 1) at its maximum, the highest value on ties.</summary>
    Youden,

    /// <summary>The highest threshold whose sensitivity reaches the target (the most specific one that does).</summary>
    Sensitivity,

    /// <summary>The lowest threshold whose PPV reaches the target (the most sensitive one that does).</summary>
    Ppv,

    /// <summary>F1 at its maximum, the highest value on ties.</summary>
    F1,
}

/// <summary>
/// A threshold rule, <c>youden</c>, <c>sensitivity=0.95</c>, <c>ppv=0.5</c> or <c>f1</c>. A record is positive when its
/// probability is at or above the threshold. A label whose rule cannot be met (no positive, no negative, no threshold
/// reaching the target) gets no threshold.
/// </summary>
public sealed record ThresholdRule(ThresholdRuleKind Kind, double Target)
{
    public static ThresholdRule Parse(string text)
    {
        var t = text.Trim();
        if (t.Equals("youden", StringComparison.OrdinalIgnoreCase))
        {
            return new ThresholdRule(ThresholdRuleKind.Youden, 0);
        }

        if (t.Equals("f1", StringComparison.OrdinalIgnoreCase))
        {
            return new ThresholdRule(ThresholdRuleKind.F1, 0);
        }

        var eq = t.IndexOf('=', StringComparison.Ordinal);
        if (eq > 0)
        {
            var name = t[..eq].Trim().ToLowerInvariant();
            var kind = name switch
            {
                "sensitivity" => ThresholdRuleKind.Sensitivity,
                "ppv" => ThresholdRuleKind.Ppv,
                _ => (ThresholdRuleKind?)null,
            };
            if (kind is { } k && double.TryParse(t[(eq + 1)..].Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out var target)
                && target > 0 && target <= 1)
            {
                return new ThresholdRule(k, target);
            }
        }

        throw new ArgumentException($"--rule '{text}': expected youden, f1, sensitivity=X or ppv=X with X in (0, 1]");
    }

    public override string ToString() => Kind switch
    {
        ThresholdRuleKind.Youden => "youden",
        ThresholdRuleKind.F1 => "f1",
        ThresholdRuleKind.Sensitivity => "sensitivity=" + Target.ToString("R", CultureInfo.InvariantCulture),
        _ => "ppv=" + Target.ToString("R", CultureInfo.InvariantCulture),
    };

    /// <summary>
    /// The threshold this rule picks from a label's keys sorted ascending; null when it cannot be met. The candidates are
    /// the distinct probability values, or with <paramref name="onGrid"/> the thresholds of <see cref="ThresholdGrid"/>
    /// (a record is positive at g_k when its probability is at or above it, so the records of one candidate are those
    /// whose highest grid threshold at or below their probability is g_k).
    /// </summary>
    public float? Choose(ReadOnlySpan<ulong> sorted, bool onGrid = false)
    {
        long positives = 0;
        foreach (var k in sorted)
        {
            positives += (long)(k & 1);
        }

        long negatives = sorted.Length - positives;
        if (positives == 0 || (negatives == 0 && Kind is ThresholdRuleKind.Youden))
        {
            return null;
        }

        long tp = 0, fp = 0;
        float? chosen = null;
        double best = double.NegativeInfinity;
        long bestJ = long.MinValue;
        var end = sorted.Length;
        while (end > 0)
        {
            var start = end - 1;
            var value = Candidate(sorted[end - 1], onGrid);
            while (start > 0 && Candidate(sorted[start - 1], onGrid) == value)
            {
                start--;
            }

            for (var i = start; i < end; i++)
            {
                if ((sorted[i] & 1) != 0)
                {
                    tp++;
                }
                else
                {
                    fp++;
                }
            }

            switch (Kind)
            {
                case ThresholdRuleKind.Youden:
                    var j = tp * negatives - fp * positives;
                    if (j > bestJ)
                    {
                        bestJ = j;
                        chosen = value;
                    }

                    break;
                case ThresholdRuleKind.F1:
                    // F1 = 2tp / (tp + fp + P); compared exactly as fractions would be overkill: doubles of integers.
                    var f1 = 2.0 * tp / (tp + fp + positives);
                    if (f1 > best)
                    {
                        best = f1;
                        chosen = value;
                    }

                    break;
                case ThresholdRuleKind.Sensitivity:
                    // Sensitivity only grows as the threshold falls: the first value reaching the target is the highest.
                    if ((double)tp / positives >= Target)
                    {
                        return value;
                    }

                    break;
                case ThresholdRuleKind.Ppv:
                    if ((double)tp / (tp + fp) >= Target)
                    {
                        chosen = value;
                    }

                    break;
            }

            end = start;
        }

        return chosen;
    }

    // The threshold a record's key stands for: its probability (keys hold -0 as 0, and no NaN), or its grid floor.
    private static float Candidate(ulong key, bool onGrid) =>
        onGrid ? ThresholdGrid.Floor(BinaryMetrics.ValueOf(key)) : BinaryMetrics.ValueOf(key);
}
