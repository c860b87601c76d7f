namespace HubertEcg.Grains.Workers;

/// <summary>The scoring workers of one silo. Section <c>Workers</c>.</summary>
public sealed class WorkerOptions
{
    public const string SectionName = "Workers";

    /// <summary>
    /// One worker per entry: <c>cpu</c> for a CPU worker, or a GPU index (<c>0</c>, <c>1</c>, ...). Empty means one
    /// CPU worker (configuration binding appends to a list, so the default cannot live in the list itself).
    /// </summary>
    public List<string> Devices { get; set; } = [];

    /// <summary>The devices to start workers for: <see cref="Devices"/>, or <c>cpu</c> when none are configured.</summary>
    public IReadOnlyList<string> EffectiveDevices =>
        Devices.Count == 0 ? ["cpu"] : Devices.Distinct(StringComparer.OrdinalIgnoreCase).ToList();

    /// <summary>Threads per worker that read and preprocess records while the model scores.</summary>
    public int PreprocessThreads { get; set; } = Math.Max(1, Environment.ProcessorCount - 1);

    /// <summary>Score rows per Postgres write.</summary>
    public int WriteBatchRows { get; set; } = 512;

    /// <summary>How long an idle worker waits before asking for work again.</summary>
    public TimeSpan IdlePollInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Largest shard (sum of its blobs) a worker downloads.</summary>
    public long MaxShardBytes { get; set; } = 8L << 30;

    /// <summary>Folder for downloaded shards; the system temp folder when empty.</summary>
    public string TempDirectory { get; set; } = "";

    /// <summary>Concurrent blob downloads per shard.</summary>
    public int DownloadConcurrency { get; set; } = 8;

    /// <summary>
    /// Shards leased and downloaded ahead of the one being scored, so that the model never waits for a download and
    /// its batches run on from one shard into the next.
    /// </summary>
    public int PrefetchShards { get; set; } = 1;

    /// <summary>ONNX Runtime intra-op threads per model session; 0 leaves the choice to ONNX Runtime (one per core).</summary>
    public int IntraOpThreads { get; set; }

    /// <summary>
    /// Batches a worker runs through the model at the same time, each on its own thread, sharing one session. 0
    /// (the default) chooses: one per core for a CPU worker whose sessions run single-threaded
    /// (<see cref="IntraOpThreads"/> 1), which keeps the cores busy without ONNX Runtime's thread synchronisation;
    /// otherwise one.
    /// </summary>
    public int ConcurrentBatches { get; set; }

    /// <summary>The model callers a worker on <paramref name="device"/> runs (see <see cref="ConcurrentBatches"/>).</summary>
    public int EffectiveConcurrentBatches(string device) =>
        ConcurrentBatches > 0 ? ConcurrentBatches
        : string.Equals(device, "cpu", StringComparison.OrdinalIgnoreCase) && IntraOpThreads == 1 ? Environment.ProcessorCount
        : 1;
}
