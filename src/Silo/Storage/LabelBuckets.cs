using HubertEcg.Worker;

namespace HubertEcg.Storage;

/// <summary>
/// The probability grid of the per-run label bucket counts (infra/sql/0025_threshold_buckets.sql): thresholds
/// g_k = k/1000 (the float nearest, as Postgres stores the literal) and, per label, 2003 buckets: below 0, each g_k
/// itself, each open interval between g_k and g_(k+1), and above 1 (or NaN). A threshold change to grid thresholds
/// recounts the dashboard's positives from these counts instead of the score rows.
/// </summary>
public static class LabelGrid
{
    /// <summary>Grid steps: thresholds k / Steps for k = 0..Steps.</summary>
    public const int Steps = HubertEcg.Inference.Evaluation.ThresholdGrid.Steps;

    /// <summary>Buckets per label.</summary>
    public const int Buckets = 2 * Steps + 3;

    /// <summary>The grid threshold g_k: the float nearest k/1000.</summary>
    public static float Threshold(int k) => HubertEcg.Inference.Evaluation.ThresholdGrid.Threshold(k);

    /// <summary>The bucket of <paramref name="p"/>, as <c>label_grid_bucket</c> computes it in Postgres.</summary>
    public static int Bucket(float p)
    {
        if (float.IsNaN(p) || p > 1f)
        {
            return Buckets - 1;
        }

        if (p < 0f)
        {
            return 0;
        }

        var f = Math.Floor(p * (double)Steps);
        var k = (int)f;
        if (p == (float)((f + 1) / Steps))
        {
            return 2 * k + 3;
        }

        return p == (float)(f / Steps) ? 2 * k + 1 : 2 * k + 2;
    }

    /// <summary>The grid index k when <paramref name="threshold"/> is g_k, else null (off the grid: slow to change).</summary>
    public static int? Index(float threshold)
    {
        if (!(threshold >= 0f && threshold <= 1f))
        {
            return null;
        }

        var k = (int)Math.Round(threshold * (double)Steps);
        return threshold == Threshold(k) ? k : null;
    }
}

/// <summary>A writer's bucket counts of a batch for one run: the nonzero cells and their counts, a delta row of <c>run_label_buckets</c>.</summary>
internal sealed record LabelBucketClaim(Guid RunId, long Rows, int[] Cells, long[] Counts);

/// <summary>Counts a batch's rows per run, label and bucket (cell = position * <see cref="LabelGrid.Buckets"/> + bucket).</summary>
internal static class LabelBuckets
{
    // Per thread, the dense counts of one run (labels x buckets) and the cells touched so far: a batch touches a few
    // thousand of the 328,492 cells of 164 labels, so only those are read back and cleared (a new dense array per batch
    // was a 1.3 MB allocation on the large object heap, cleared and scanned whole).
    [ThreadStatic]
    private static int[]? t_dense;

    [ThreadStatic]
    private static int[]? t_touched;

    public static IReadOnlyList<LabelBucketClaim> Claims(IReadOnlyList<ScoreRow> rows)
    {
        var claims = new List<LabelBucketClaim>(1);
        foreach (var run in rows.GroupBy(r => r.RunId))
        {
            var runId = run.Key;
            var labels = run.Max(r => r.Probabilities.Length);
            var count = run.Count();
            var cellCount = (long)labels * LabelGrid.Buckets;
            if (cellCount > Array.MaxLength)
            {
                throw new ArgumentException($"a score row of run {runId} has {labels} probabilities: too many to count in buckets", nameof(rows));
            }

            var dense = t_dense is { } d && d.Length >= cellCount ? d : t_dense = new int[cellCount];
            var touchedLength = Math.Min(cellCount, (long)labels * count);
            var touched = t_touched is { } t && t.Length >= touchedLength ? t : t_touched = new int[touchedLength];
            var nonzero = 0;
            foreach (var row in run)
            {
                var probabilities = row.Probabilities;
                for (var i = 0; i < probabilities.Length; i++)
                {
                    var cell = i * LabelGrid.Buckets + LabelGrid.Bucket(probabilities[i]);
                    if (dense[cell]++ == 0)
                    {
                        touched[nonzero++] = cell;
                    }
                }
            }

            var cells = new int[nonzero];
            var counts = new long[nonzero];
            for (var j = 0; j < nonzero; j++)
            {
                var cell = touched[j];
                cells[j] = cell;
                counts[j] = dense[cell];
                dense[cell] = 0;
            }

            claims.Add(new LabelBucketClaim(runId, count, cells, counts));
        }

        return claims;
    }
}
