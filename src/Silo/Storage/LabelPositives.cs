using HubertEcg.Worker;

namespace HubertEcg.Storage;

/// <summary>A model's label thresholds in force (<c>dashboard_model_label_thresholds</c>), in position order.</summary>
internal sealed record ModelThresholds(int[] Positions, float[] Thresholds, bool[] Inclusive);

/// <summary>
/// The bookkeeping the scores insert trigger (0010_dashboard.sql, 0018, 0025) does for rows it is given, done by the
/// result writer for a batch it copies itself (0032_writer_bookkeeping.sql): the rows per run and minute, and the
/// label positives per run and label. Counting 164 labels over a batch in SQL costs the server more than the rest of
/// the insert; here it is a few microseconds per row.
/// </summary>
internal static class LabelPositives
{
    /// <summary>
    /// Per run and label position, how many of <paramref name="rows"/> are positive against their model's thresholds
    /// in <paramref name="thresholds"/>: <c>probabilities[position] &gt; threshold</c>, or equal where the threshold is
    /// inclusive, compared as Postgres compares reals (NaN above every number and equal to itself). A probability the
    /// row lacks is not positive, and rows of a model with no thresholds count for nothing. Only nonzero counts.
    /// </summary>
    public static (Guid[] Runs, int[] Positions, long[] Counts) Count(
        IReadOnlyList<ScoreRow> rows, IReadOnlyDictionary<string, ModelThresholds> thresholds)
    {
        var counts = new Dictionary<(Guid Run, string Model), long[]>();
        foreach (var row in rows)
        {
            if (!thresholds.TryGetValue(row.ModelId, out var model))
            {
                continue;
            }

            if (!counts.TryGetValue((row.RunId, row.ModelId), out var positives))
            {
                counts[(row.RunId, row.ModelId)] = positives = new long[model.Positions.Length];
            }

            var probabilities = row.Probabilities;
            for (var i = 0; i < model.Positions.Length; i++)
            {
                var position = model.Positions[i];
                if ((uint)position < (uint)probabilities.Length && Positive(probabilities[position], model.Thresholds[i], model.Inclusive[i]))
                {
                    positives[i]++;
                }
            }
        }

        // A run has one model; summed per (run, position) all the same, as the trigger's upsert does.
        var sums = new SortedDictionary<(Guid Run, int Position), long>();
        foreach (var ((run, modelId), positives) in counts)
        {
            var positions = thresholds[modelId].Positions;
            for (var i = 0; i < positions.Length; i++)
            {
                if (positives[i] != 0)
                {
                    sums[(run, positions[i])] = sums.GetValueOrDefault((run, positions[i])) + positives[i];
                }
            }
        }

        return (sums.Keys.Select(k => k.Run).ToArray(), sums.Keys.Select(k => k.Position).ToArray(), sums.Values.ToArray());
    }

    /// <summary>Whether <paramref name="p"/> is positive at <paramref name="threshold"/>, as Postgres compares two reals.</summary>
    public static bool Positive(float p, float threshold, bool inclusive)
    {
        if (float.IsNaN(p) || float.IsNaN(threshold))
        {
            // NaN sorts above every number: above any numeric threshold, equal to a NaN one.
            return float.IsNaN(threshold) ? inclusive && float.IsNaN(p) : true;
        }

        return p > threshold || (inclusive && p == threshold);
    }

    /// <summary>Rows per run and minute of their scoring time (UTC, truncated to the minute), in (run, minute) order.</summary>
    public static (Guid[] Runs, DateTime[] Minutes, long[] Counts) Minutes(IReadOnlyList<ScoreRow> rows)
    {
        var counts = new SortedDictionary<(Guid Run, long Minute), long>();
        foreach (var row in rows)
        {
            var ticks = DateTime.SpecifyKind(row.ScoredAt, DateTimeKind.Utc).Ticks;
            var key = (row.RunId, ticks - ticks % TimeSpan.TicksPerMinute);
            counts[key] = counts.GetValueOrDefault(key) + 1;
        }

        return (
            counts.Keys.Select(k => k.Run).ToArray(),
            counts.Keys.Select(k => new DateTime(k.Minute, DateTimeKind.Utc)).ToArray(),
            counts.Values.ToArray());
    }
}
