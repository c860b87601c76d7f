namespace HubertEcg.Inference.Evaluation;

/// <summary>A percentile interval; both ends are null when no resample had both classes.</summary>
public readonly record struct Interval(double? Lo, double? Hi);

/// <summary>
/// One label's metrics. A null value is undefined (no positive, no negative, or an empty denominator) and is written as
/// an empty cell. Thresholds are probability values (as stored, single precision).
/// </summary>
public sealed record LabelMetrics(
    string Code,
    long Positives,
    long Negatives,
    double? Auroc,
    double? Auprc,
    double? SensitivityAtHalf,
    double? SpecificityAtHalf,
    double? PpvAtHalf,
    double? NpvAtHalf,
    double? F1AtHalf,
    float? YoudenThreshold,
    double? YoudenSensitivity,
    double? YoudenSpecificity)
{
    /// <summary>Bootstrap 95% percentile intervals (null without <c>--bootstrap</c>).</summary>
    public Interval? AurocInterval { get; init; }

    public Interval? AuprcInterval { get; init; }

    /// <summary>The ROC and precision-recall curve, at most <see cref="BinaryMetrics.CurvePoints"/> points (null when undefined).</summary>
    public LabelCurve? Curve { get; init; }
}

/// <summary>
/// Points of a label's ROC and precision-recall curves, one per kept distinct probability value from the highest down:
/// at <c>Thresholds[i]</c> a record is positive when its probability is at or above it, giving <c>Tpr[i]</c> (the
/// recall), <c>Fpr[i]</c> and <c>Precision[i]</c>. The first point is the highest value and the last the lowest
/// (every record positive: TPR and FPR 1).
/// </summary>
public sealed record LabelCurve(float[] Thresholds, float[] Tpr, float[] Fpr, float[] Precision)
{
    /// <summary>Equal when every point is: curves compare by value, as the metrics they travel with do.</summary>
    public bool Equals(LabelCurve? other) =>
        other is not null
        && Thresholds.AsSpan().SequenceEqual(other.Thresholds)
        && Tpr.AsSpan().SequenceEqual(other.Tpr)
        && Fpr.AsSpan().SequenceEqual(other.Fpr)
        && Precision.AsSpan().SequenceEqual(other.Precision);

    public override int GetHashCode() => HashCode.Combine(Thresholds.Length, Thresholds.Length > 0 ? Thresholds[0] : 0f);
}

/// <summary>
/// Per-label metrics from one sorted pass. A record is packed into one <see cref="ulong"/> sort key: the bits of its
/// probability (a non-negative float's bits order like its value), its row and its class in the lowest bit, so one
/// sort of a label's keys (<see cref="SortByValue"/>) orders the records by probability and every metric is a sweep
/// over the distinct probability values from the highest down. Memory is one key per record and label being
/// computed; nothing is records x thresholds.
/// </summary>
public static class BinaryMetrics
{
    private const int RowShift = 1;
    private const int ValueShift = 33;

    /// <summary>The sort key of a record: probability in [0, 1] (checked by the readers), row, class.</summary>
    public static ulong Key(float probability, int row, bool positive) =>
        ((ulong)BitConverter.SingleToUInt32Bits(probability == 0 ? 0f : probability) << ValueShift)
        | ((ulong)(uint)row << RowShift)
        | (positive ? 1UL : 0UL);

    public static float ValueOf(ulong key) => BitConverter.UInt32BitsToSingle((uint)(key >> ValueShift));

    public static int RowOf(ulong key) => (int)(uint)(key >> RowShift);

    public static bool IsPositive(ulong key) => (key & 1) != 0;

    /// <summary>
    /// Sorts keys by their probability value (the order within one value is left as it comes: every sweep groups a
    /// value's records together). A least-significant-digit radix sort over the value's 30 significant bits in three
    /// 10-bit passes, a pass skipped when all keys share its digit; <paramref name="scratch"/> is as long as the keys.
    /// Returns the buffer holding the sorted keys (one of the two).
    /// </summary>
    public static ulong[] SortByValue(ulong[] keys, ulong[] scratch, int count)
    {
        const int bits = 10;
        const int buckets = 1 << bits;
        Span<int> offsets = stackalloc int[buckets];
        var source = keys;
        var target = scratch;
        for (var shift = ValueShift; shift < ValueShift + 30; shift += bits)
        {
            offsets.Clear();
            for (var i = 0; i < count; i++)
            {
                offsets[(int)((source[i] >> shift) & (buckets - 1))]++;
            }

            if (offsets[(int)((source[0] >> shift) & (buckets - 1))] == count)
            {
                continue;
            }

            var sum = 0;
            for (var b = 0; b < buckets; b++)
            {
                var c = offsets[b];
                offsets[b] = sum;
                sum += c;
            }

            for (var i = 0; i < count; i++)
            {
                var k = source[i];
                target[offsets[(int)((k >> shift) & (buckets - 1))]++] = k;
            }

            (source, target) = (target, source);
        }

        return source;
    }

    /// <summary>Whether two keys carry the same probability value.</summary>
    private static bool SameValue(ulong a, ulong b) => (a >> ValueShift) == (b >> ValueShift);

    /// <summary>The metrics of one label from its keys sorted ascending by value (<see cref="SortByValue"/>).</summary>
    public static LabelMetrics Compute(string code, ReadOnlySpan<ulong> sorted)
    {
        long positives = 0;
        foreach (var k in sorted)
        {
            positives += (long)(k & 1);
        }

        long negatives = sorted.Length - positives;

        // Sweep distinct values from the highest: tp, fp are the records at or above the current value.
        long tp = 0, fp = 0;
        long tpAtHalf = 0, fpAtHalf = 0;
        // Twice the Mann-Whitney U (pairs ranked correctly, ties half), kept exact in integers.
        long twiceU = 0;
        double ap = 0;
        long bestJ = long.MinValue; // sensitivity + specificity - 1, scaled by positives x negatives
        float bestThreshold = 0;
        long bestTp = 0, bestFp = 0;
        var end = sorted.Length;
        while (end > 0)
        {
            var start = end - 1;
            while (start > 0 && SameValue(sorted[start - 1], sorted[end - 1]))
            {
                start--;
            }

            long groupTp = 0;
            for (var i = start; i < end; i++)
            {
                groupTp += (long)(sorted[i] & 1);
            }

            long groupFp = end - start - groupTp;
            twiceU += groupFp * (2 * tp + groupTp);
            tp += groupTp;
            fp += groupFp;
            if (groupTp > 0)
            {
                ap += (double)groupTp / positives * ((double)tp / (tp + fp));
            }

            var value = ValueOf(sorted[start]);
            if (value >= 0.5f)
            {
                tpAtHalf = tp;
                fpAtHalf = fp;
            }

            // Youden's J exactly: tp/P - fp/N scaled by P*N; the first maximum from the top is the highest value.
            var j = tp * negatives - fp * positives;
            if (j > bestJ)
            {
                bestJ = j;
                bestThreshold = value;
                bestTp = tp;
                bestFp = fp;
            }

            end = start;
        }

        var fnAtHalf = positives - tpAtHalf;
        var tnAtHalf = negatives - fpAtHalf;
        var both = positives > 0 && negatives > 0;
        return new LabelMetrics(
            code,
            positives,
            negatives,
            both ? twiceU / (2.0 * positives * negatives) : null,
            positives > 0 ? ap : null,
            Ratio(tpAtHalf, positives),
            Ratio(tnAtHalf, negatives),
            Ratio(tpAtHalf, tpAtHalf + fpAtHalf),
            Ratio(tnAtHalf, tnAtHalf + fnAtHalf),
            Ratio(2 * tpAtHalf, 2 * tpAtHalf + fpAtHalf + fnAtHalf),
            both ? bestThreshold : null,
            both ? (double)bestTp / positives : null,
            both ? (double)(negatives - bestFp) / negatives : null);
    }

    /// <summary>
    /// AUROC and AUPRC of a resample given as a count per row (how many times the row was drawn), over the same
    /// sorted keys: the sweep of <see cref="Compute"/> with weights, O(records), no sort.
    /// </summary>
    public static (double? Auroc, double? Auprc) ComputeWeighted(ReadOnlySpan<ulong> sorted, ReadOnlySpan<int> weights)
    {
        long positives = 0, total = 0;
        foreach (var k in sorted)
        {
            long w = weights[RowOf(k)];
            total += w;
            positives += w * (long)(k & 1);
        }

        var negatives = total - positives;
        long tp = 0, fp = 0;
        // Twice U can pass 2^63 for very large resamples of large cohorts: kept as a double (exact to 2^53 per term).
        double twiceU = 0;
        double ap = 0;
        var end = sorted.Length;
        while (end > 0)
        {
            var start = end - 1;
            while (start > 0 && SameValue(sorted[start - 1], sorted[end - 1]))
            {
                start--;
            }

            long groupTp = 0, groupAll = 0;
            for (var i = start; i < end; i++)
            {
                long w = weights[RowOf(sorted[i])];
                groupAll += w;
                groupTp += w * (long)(sorted[i] & 1);
            }

            var groupFp = groupAll - groupTp;
            twiceU += (double)groupFp * (2 * tp + groupTp);
            tp += groupTp;
            fp += groupFp;
            if (groupTp > 0)
            {
                ap += (double)groupTp / positives * ((double)tp / (tp + fp));
            }

            end = start;
        }

        return (positives > 0 && negatives > 0 ? twiceU / (2.0 * positives * negatives) : null, positives > 0 ? ap : null);
    }

    /// <summary>
    /// The most points a stored curve has. A cohort of n records has up to n distinct values; the dashboard draws a
    /// label's curves from these points (stored with the evaluation: an evaluation of a scores file has nothing else to
    /// recompute them from), so their count is bounded whatever the cohort size.
    /// </summary>
    public const int CurvePoints = 256;

    /// <summary>
    /// The label's ROC and precision-recall curves from its keys sorted ascending by value, reduced to at most
    /// <paramref name="maxPoints"/> points: a first sweep measures the curve's length (the sum of the changes of TPR,
    /// FPR and precision from one distinct value to the next), a second keeps a point whenever the curve has moved a
    /// 1/(maxPoints - 2) share of that length since the last kept one, plus the first and last points, so the drawn
    /// curve is within that share of the exact one everywhere. Null without both classes. O(records), no allocation
    /// beyond the points.
    /// </summary>
    public static LabelCurve? Curve(ReadOnlySpan<ulong> sorted, int maxPoints = CurvePoints)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxPoints, 3);
        long positives = 0;
        foreach (var k in sorted)
        {
            positives += (long)(k & 1);
        }

        long negatives = sorted.Length - positives;
        if (positives == 0 || negatives == 0)
        {
            return null;
        }

        var distinct = 0;
        var length = 0.0;
        Sweep(sorted, positives, negatives, (_, tpr, fpr, precision, first, previous) =>
        {
            distinct++;
            if (!first)
            {
                length += Math.Abs(tpr - previous.Tpr) + Math.Abs(fpr - previous.Fpr) + Math.Abs(precision - previous.Precision);
            }
        });

        var step = distinct <= maxPoints ? 0 : length / (maxPoints - 2);
        var thresholds = new List<float>(Math.Min(distinct, maxPoints));
        var tprs = new List<float>(thresholds.Capacity);
        var fprs = new List<float>(thresholds.Capacity);
        var precisions = new List<float>(thresholds.Capacity);
        var moved = 0.0;
        var index = 0;
        Sweep(sorted, positives, negatives, (value, tpr, fpr, precision, first, previous) =>
        {
            var last = ++index == distinct;
            if (!first)
            {
                moved += Math.Abs(tpr - previous.Tpr) + Math.Abs(fpr - previous.Fpr) + Math.Abs(precision - previous.Precision);
            }

            if (first || last || moved >= step)
            {
                thresholds.Add(value);
                tprs.Add((float)tpr);
                fprs.Add((float)fpr);
                precisions.Add((float)precision);
                moved = 0;
            }
        });

        return new LabelCurve([.. thresholds], [.. tprs], [.. fprs], [.. precisions]);
    }

    private readonly record struct CurvePoint(double Tpr, double Fpr, double Precision);

    private delegate void PointVisitor(float value, double tpr, double fpr, double precision, bool first, CurvePoint previous);

    /// <summary>Visits each distinct value from the highest down with the rates of "positive at or above it".</summary>
    private static void Sweep(ReadOnlySpan<ulong> sorted, long positives, long negatives, PointVisitor visit)
    {
        long tp = 0, fp = 0;
        var previous = default(CurvePoint);
        var first = true;
        var end = sorted.Length;
        while (end > 0)
        {
            var start = end - 1;
            while (start > 0 && SameValue(sorted[start - 1], sorted[end - 1]))
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

            var point = new CurvePoint((double)tp / positives, (double)fp / negatives, (double)tp / (tp + fp));
            visit(ValueOf(sorted[start]), point.Tpr, point.Fpr, point.Precision, first, previous);
            previous = point;
            first = false;
            end = start;
        }
    }

    private static double? Ratio(long numerator, long denominator) => denominator > 0 ? (double)numerator / denominator : null;
}
