namespace HubertEcg.Grains;

/// <summary>
/// The one set of bounds a run's options and its model must meet, used by every path that creates or runs a run:
/// <c>run submit</c> and <c>schedule add</c> (before anything is stored), the stores that insert runs and schedules,
/// the coordinator (a run stored without these checks fails before anything is planned) and the worker (a run whose
/// options or model cannot work fails the run once instead of looping). Why bounds at all: a worker allocates
/// batch x 6000 window floats and batch x hidden-size outputs per model call, and a record's windows up to
/// max-windows x 6000 floats; values past these bounds overflow 32-bit sizes or exhaust memory, which no retry fixes.
/// Each problem names the option (as <c>run submit</c> spells it), its value and the allowed range.
/// </summary>
public static class RunSettingsRules
{
    /// <summary>Most windows per model call (<c>--batch</c>): 1,024 windows are 24 MiB of input per batch.</summary>
    public const int MaxBatchSize = 1024;

    /// <summary>Most 5 s windows scored per record (<c>--max-windows</c>): 720 windows are one hour, 17 MiB of input per record.</summary>
    public const int MaxMaxWindows = 720;

    /// <summary>Most single-record blobs per shard (<c>--shard-size</c>); a shard's blob names travel in one lease message.</summary>
    public const int MaxShardSize = 10_000;

    /// <summary>Longest shard lease (<c>--lease-seconds</c>), one day: a dead worker's shard waits this long before another takes it.</summary>
    public const int MaxLeaseSeconds = 86_400;

    /// <summary>Most attempts per shard (<c>--max-attempts</c>).</summary>
    public const int MaxAttempts = 100;

    /// <summary>Largest model hidden size (embedding width) accepted; HuBERT-ECG large has 1,024.</summary>
    public const int MaxHiddenSize = 16_384;

    /// <summary>Most labels a model's head may have; the Cardio-Learning head has 164.</summary>
    public const int MaxLabelCount = 100_000;

    /// <summary>Samples per model window (as <c>IEcgScorer.WindowLength</c>, which this assembly does not reference).</summary>
    private const int WindowLength = 6000;

    /// <summary>The problems of a run's options, each naming the option, its value and the allowed range; empty when they are sane.</summary>
    public static IReadOnlyList<string> CheckOptions(int batchSize, int maxWindows, int shardSize, int leaseSeconds, int maxAttempts)
    {
        var problems = new List<string>();
        Range(problems, "--batch", "windows per model call", batchSize, 1, MaxBatchSize);
        Range(problems, "--max-windows", "windows per record", maxWindows, 1, MaxMaxWindows);
        Range(problems, "--shard-size", "blobs per shard", shardSize, 1, MaxShardSize);
        Range(problems, "--lease-seconds", "seconds per lease", leaseSeconds, 1, MaxLeaseSeconds);
        Range(problems, "--max-attempts", "attempts per shard", maxAttempts, 1, MaxAttempts);
        return problems;
    }

    /// <summary>
    /// The problems of a model's sizes: <paramref name="hiddenSize"/> (its embedding width) and
    /// <paramref name="labelCount"/> (its head's outputs; 0 for a model without a head).
    /// </summary>
    public static IReadOnlyList<string> CheckModel(int hiddenSize, int labelCount)
    {
        var problems = new List<string>();
        Range(problems, "model hidden size", "embedding width", hiddenSize, 1, MaxHiddenSize);
        Range(problems, "model label count", "head outputs", labelCount, 0, MaxLabelCount);
        return problems;
    }

    /// <summary>
    /// The problems of what a worker is asked to do: the scoring options a lease carries with the sizes of the model
    /// the worker opened. Within the bounds, every buffer size below fits a 32-bit length; checked here all the same,
    /// so that no later change of a bound can make one overflow.
    /// </summary>
    public static IReadOnlyList<string> CheckScoring(RunScoringSettings settings, int hiddenSize, int labelCount)
    {
        ArgumentNullException.ThrowIfNull(settings);
        var problems = new List<string>();
        Range(problems, "--batch", "windows per model call", settings.BatchSize, 1, MaxBatchSize);
        Range(problems, "--max-windows", "windows per record", settings.MaxWindows, 1, MaxMaxWindows);
        problems.AddRange(CheckModel(hiddenSize, labelCount));
        if (problems.Count == 0)
        {
            foreach (var (what, size) in new (string, long)[]
            {
                ("batch x window samples", (long)settings.BatchSize * WindowLength),
                ("max-windows x window samples", (long)settings.MaxWindows * WindowLength),
                ("batch x hidden size", (long)settings.BatchSize * hiddenSize),
                ("batch x label count", (long)settings.BatchSize * labelCount),
            })
            {
                if (size > Array.MaxLength)
                {
                    problems.Add($"{what} is {size} floats, more than one buffer can hold ({Array.MaxLength})");
                }
            }
        }

        return problems;
    }

    /// <summary>One line for an error or a run's reason: <paramref name="what"/> refused, then every problem.</summary>
    public static string Describe(string what, IReadOnlyList<string> problems) => $"{what} refused: {string.Join("; ", problems)}";

    private static void Range(List<string> problems, string name, string meaning, long value, long min, long max)
    {
        if (value < min || value > max)
        {
            problems.Add($"{name} {value} is outside {min}..{max} ({meaning})");
        }
    }
}
