namespace HubertEcg.Inference.Evaluation;

/// <summary>How an evaluation runs.</summary>
/// <param name="Bootstrap">Resamples for the 95% intervals of AUROC and AUPRC; 0 for none.</param>
/// <param name="Seed">Seed of the resamples: the same seed, cohort and bootstrap give the same intervals.</param>
/// <param name="AllowUnscored">Count labelled records without a score instead of refusing them.</param>
/// <param name="MaxParallelism">Threads (labels are computed in parallel); 0 for one per core.</param>
public sealed record EvaluationOptions(int Bootstrap = 0, ulong Seed = EvaluationOptions.DefaultSeed, bool AllowUnscored = false, int MaxParallelism = 0)
{
    public const ulong DefaultSeed = 20240917;
}

/// <summary>
/// An evaluation's outcome: per-label metrics in the scores' label order, and how the two files matched.
/// <see cref="Matched"/> records (present on both sides) are the cohort; <see cref="ScoresOnly"/> scored records have
/// no diagnoses and <see cref="LabelsOnly"/> labelled records no score; neither is part of the metrics.
/// </summary>
public sealed record EvaluationResult(
    IReadOnlyList<LabelMetrics> Labels,
    int Matched,
    int ScoresOnly,
    int LabelsOnly,
    IReadOnlyList<string> LabelsOnlyExamples,
    int Bootstrap,
    ulong Seed);

/// <summary>Matches scores with diagnoses by record id and computes every evaluated label's metrics.</summary>
public static class Evaluator
{
    /// <summary>Percentiles of the bootstrap interval.</summary>
    public const double IntervalLow = 0.025;
    public const double IntervalHigh = 0.975;

    public static EvaluationResult Evaluate(ScoreTable scores, LabelSet labels, EvaluationOptions options)
    {
        var cohort = Match(scores, labels, options.AllowUnscored);
        var results = new LabelMetrics[labels.Evaluated.Count];
        var parallel = new ParallelOptions { MaxDegreeOfParallelism = options.MaxParallelism > 0 ? options.MaxParallelism : Environment.ProcessorCount };
        Parallel.For(
            0,
            results.Length,
            parallel,
            () => (new ulong[cohort.Size], new ulong[cohort.Size]),
            (i, _, buffers) =>
            {
                var label = labels.Evaluated[i];
                var keys = FillSortedKeys(scores, labels, cohort, label, buffers.Item1, buffers.Item2);
                var metrics = BinaryMetrics.Compute(scores.Codes[label], keys) with { Curve = BinaryMetrics.Curve(keys) };
                if (options.Bootstrap > 0)
                {
                    var (auroc, auprc) = Bootstrap(keys, cohort.Size, options.Bootstrap, options.Seed);
                    metrics = metrics with { AurocInterval = auroc, AuprcInterval = auprc };
                }

                results[i] = metrics;
                return buffers;
            },
            _ => { });

        // Keep the scores' label order whatever the order the file's columns were in.
        var ordered = results.OrderBy(m => scores.LabelIndex(m.Code)).ToList();
        return new EvaluationResult(ordered, cohort.Size, cohort.ScoresOnly, cohort.LabelsOnly, cohort.LabelsOnlyExamples, options.Bootstrap, options.Seed);
    }

    /// <summary>
    /// The threshold a rule picks for each evaluated label (null where it cannot be met), in the scores' label order;
    /// among the thresholds of <see cref="ThresholdGrid"/> with <paramref name="onGrid"/>, else among the probability values.
    /// </summary>
    public static IReadOnlyList<(string Code, float? Threshold)> FitThresholds(
        ScoreTable scores, LabelSet labels, ThresholdRule rule, EvaluationOptions options, bool onGrid = false)
    {
        var cohort = Match(scores, labels, options.AllowUnscored);
        var results = new (string, float?)[labels.Evaluated.Count];
        var parallel = new ParallelOptions { MaxDegreeOfParallelism = options.MaxParallelism > 0 ? options.MaxParallelism : Environment.ProcessorCount };
        Parallel.For(
            0,
            results.Length,
            parallel,
            () => (new ulong[cohort.Size], new ulong[cohort.Size]),
            (i, _, buffers) =>
            {
                var label = labels.Evaluated[i];
                var keys = FillSortedKeys(scores, labels, cohort, label, buffers.Item1, buffers.Item2);
                results[i] = (scores.Codes[label], rule.Choose(keys, onGrid));
                return buffers;
            },
            _ => { });
        return results.OrderBy(r => scores.LabelIndex(r.Item1)).ToList();
    }

    private sealed record Cohort(int Size, int[] ScoreRows, int[] LabelRows, int ScoresOnly, int LabelsOnly, IReadOnlyList<string> LabelsOnlyExamples);

    private static Cohort Match(ScoreTable scores, LabelSet labels, bool allowUnscored)
    {
        var scoreRows = new List<int>(Math.Min(scores.Count, labels.Count));
        var labelRows = new List<int>(Math.Min(scores.Count, labels.Count));
        var ids = scores.RecordIds;
        for (var row = 0; row < ids.Count; row++)
        {
            if (labels.TryGetRow(ids[row], out var labelRow))
            {
                scoreRows.Add(row);
                labelRows.Add(labelRow);
            }
        }

        var labelsOnly = labels.Count - labelRows.Count;
        var examples = new List<string>();
        if (labelsOnly > 0)
        {
            var lines = new List<long>();
            for (var row = 0; row < labels.Count && examples.Count < 5; row++)
            {
                if (!scores.TryGetRow(labels.RecordIds[row], out _))
                {
                    examples.Add(labels.RecordIds[row]);
                    lines.Add(labels.LineOf(row));
                }
            }

            if (!allowUnscored)
            {
                throw EvaluationInputException.At(
                    labels.Source,
                    lines[0],
                    $"record {examples[0]} has no score in {scores.Source}" +
                    (labelsOnly > 1 ? $" ({labelsOnly} labelled records have none; the first at lines {string.Join(", ", lines)})" : "") +
                    "; --allow-unscored evaluates the records that have one and reports the others");
            }
        }

        if (scoreRows.Count == 0)
        {
            throw EvaluationInputException.In(labels.Source, $"no record id in common with {scores.Source}");
        }

        return new Cohort(scoreRows.Count, [.. scoreRows], [.. labelRows], scores.Count - scoreRows.Count, labelsOnly, examples);
    }

    /// <summary>One label's sort keys (probability, cohort row, class) sorted by probability; returns the buffer holding them.</summary>
    private static ulong[] FillSortedKeys(ScoreTable scores, LabelSet labels, Cohort cohort, int label, ulong[] keys, ulong[] scratch)
    {
        for (var m = 0; m < cohort.Size; m++)
        {
            keys[m] = BinaryMetrics.Key(scores.Get(label, cohort.ScoreRows[m]), m, labels.IsPositive(label, cohort.LabelRows[m]));
        }

        return BinaryMetrics.SortByValue(keys, scratch, cohort.Size);
    }

    /// <summary>
    /// Percentile bootstrap: <paramref name="replicates"/> resamples of the cohort's records with replacement (the
    /// same resamples for every label: resample b draws its records from a generator seeded by the seed and b), the
    /// metric computed on each, and the 2.5th and 97.5th percentiles of the values (linear interpolation between
    /// order statistics). Resamples without both classes are left out; no interval when none has both.
    /// </summary>
    private static (Interval Auroc, Interval Auprc) Bootstrap(ulong[] sortedKeys, int size, int replicates, ulong seed)
    {
        var aurocs = new List<double>(replicates);
        var auprcs = new List<double>(replicates);
        var weights = new int[size];
        for (var b = 0; b < replicates; b++)
        {
            DrawResample(weights, seed, b);
            var (auroc, auprc) = BinaryMetrics.ComputeWeighted(sortedKeys, weights);
            if (auroc is { } a)
            {
                aurocs.Add(a);
            }

            if (auprc is { } p)
            {
                auprcs.Add(p);
            }
        }

        return (Percentiles(aurocs), Percentiles(auprcs));
    }

    /// <summary>How many times each record is drawn in resample <paramref name="replicate"/> (n draws of n records).</summary>
    public static void DrawResample(Span<int> weights, ulong seed, int replicate)
    {
        weights.Clear();
        var state = SplitMix(seed ^ SplitMix((ulong)replicate + 0x9E3779B97F4A7C15UL));
        var n = (ulong)weights.Length;
        for (var i = 0; i < weights.Length; i++)
        {
            state += 0x9E3779B97F4A7C15UL;
            var r = SplitMix(state);
            weights[(int)Math.BigMul(r, n, out _)]++;
        }
    }

    private static ulong SplitMix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    private static Interval Percentiles(List<double> values)
    {
        if (values.Count == 0)
        {
            return new Interval(null, null);
        }

        values.Sort();
        return new Interval(Percentile(values, IntervalLow), Percentile(values, IntervalHigh));
    }

    /// <summary>The q-quantile with linear interpolation between order statistics (NumPy's default).</summary>
    public static double Percentile(IReadOnlyList<double> sorted, double q)
    {
        var position = q * (sorted.Count - 1);
        var lower = (int)Math.Floor(position);
        var upper = Math.Min(lower + 1, sorted.Count - 1);
        return sorted[lower] + ((position - lower) * (sorted[upper] - sorted[lower]));
    }
}
