using System.Globalization;
using HubertEcg.Inference.Formats;
using HubertEcg.Inference.Formats.Archive;
using HubertEcg.Inference.Formats.Hdf5;
using HubertEcg.Inference.Model;

namespace HubertEcg.Worker;

/// <summary>A device a worker scores on: the CPU, or a GPU by its CUDA index. Written <c>cpu</c> or <c>0</c>, <c>1</c>, ...</summary>
public readonly record struct WorkerDevice(int? GpuIndex)
{
    public static WorkerDevice Cpu => new(null);

    public bool IsCpu => GpuIndex is null;

    /// <summary>Reads <c>cpu</c> (any case) or a GPU index; throws <see cref="FormatException"/> naming the value otherwise.</summary>
    public static WorkerDevice Parse(string text)
    {
        var trimmed = text?.Trim() ?? "";
        if (trimmed.Equals("cpu", StringComparison.OrdinalIgnoreCase))
        {
            return Cpu;
        }

        return int.TryParse(trimmed, NumberStyles.None, CultureInfo.InvariantCulture, out var index)
            ? new WorkerDevice(index)
            : throw new FormatException($"Workers:Devices entry '{text}' is neither 'cpu' nor a GPU index");
    }

    public override string ToString() => GpuIndex is { } index ? index.ToString(CultureInfo.InvariantCulture) : "cpu";
}

/// <summary>The scoring workers of one silo. Section <c>Workers</c>, bound once and checked at start-up (<see cref="Problems"/>).</summary>
public sealed class WorkerOptions
{
    public const string SectionName = "Workers";

    /// <summary>
    /// One worker per entry: <c>cpu</c> for a CPU worker, or a GPU index (<c>0</c>, <c>1</c>, ...). Empty means one
    /// CPU worker (configuration binding appends to a list, so the default cannot live in the list itself).
    /// </summary>
    public List<string> Devices { get; set; } = [];

    /// <summary>The devices to start workers for: <see cref="Devices"/> (each once), or the CPU when none are configured.</summary>
    public IReadOnlyList<WorkerDevice> EffectiveDevices =>
        Devices.Count == 0 ? [WorkerDevice.Cpu] : Devices.Select(WorkerDevice.Parse).Distinct().ToList();

    /// <summary>Threads per worker that read and preprocess records while the model scores.</summary>
    public int PreprocessThreads { get; set; } = Math.Max(1, Environment.ProcessorCount - 1);

    /// <summary>Score rows per Postgres write.</summary>
    public int WriteBatchRows { get; set; } = 512;

    /// <summary>
    /// Score-row writes a worker has in flight at once (each a write of up to <see cref="WriteBatchRows"/> rows on its
    /// own connection). A shard's end is reported only after all its rows are written, whichever writer wrote them.
    /// </summary>
    public int Writers { get; set; } = 1;

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

    /// <summary>Whether ONNX Runtime's idle threads spin (false leaves the CPU to reading, preprocessing and writes).</summary>
    public bool AllowSpinning { get; set; } = true;

    /// <summary>
    /// Batches a worker runs through the model at the same time, each on its own thread, sharing one session. 0
    /// (the default) chooses: <see cref="ModelThreadsPerGpu"/> for a GPU worker; one per core for a CPU worker whose
    /// sessions run single-threaded (<see cref="IntraOpThreads"/> 1), which keeps the cores busy without ONNX
    /// Runtime's thread synchronisation; otherwise one.
    /// </summary>
    public int ConcurrentBatches { get; set; }

    /// <summary>
    /// Model threads of a GPU worker when <see cref="ConcurrentBatches"/> is 0 (default 2): while one thread's batch
    /// runs on the device, the other copies its next batch in and its last outputs out.
    /// </summary>
    public int ModelThreadsPerGpu { get; set; } = 2;

    /// <summary>
    /// Whether scorers run through ONNX Runtime I/O binding over fixed-shape (padded) batches: unset (the default)
    /// binds on GPU workers and not on CPU workers; true or false sets it for both.
    /// </summary>
    public bool? IoBinding { get; set; }

    /// <summary>
    /// Where bound tensors live (<see cref="BoundMemory"/>): unset (the default) is Device on GPU workers (device
    /// tensors bound once, batches copied in and outputs out by ONNX Runtime; CUDA graphs need it) and Host on CPU
    /// workers; Host on a GPU worker binds page-locked host buffers that ONNX Runtime copies inside each run.
    /// </summary>
    public BoundMemory? IoBindingMemory { get; set; }

    /// <summary>CUDA execution provider settings of the GPU workers. Section <c>Workers:Cuda</c> (see <see cref="CudaWorkerOptions"/>).</summary>
    public CudaWorkerOptions Cuda { get; set; } = new();

    /// <summary>Sampling rate of <c>.npy</c> records, which carry none (Hz).</summary>
    public double NpySamplingRate { get; set; } = 500;

    /// <summary>Where HDF5 shards keep their tracings. Section <c>Workers:Hdf5</c>.</summary>
    public Hdf5ShardOptions Hdf5 { get; set; } = new();

    /// <summary>Limits on extracting archive shards. Section <c>Workers:Archives</c>.</summary>
    public ArchiveOptions Archives { get; set; } = new();

    /// <summary>The model callers a worker on <paramref name="device"/> runs (see <see cref="ConcurrentBatches"/>).</summary>
    public int EffectiveConcurrentBatches(WorkerDevice device) =>
        ConcurrentBatches > 0 ? ConcurrentBatches
        : !device.IsCpu ? ModelThreadsPerGpu
        : IntraOpThreads == 1 ? Environment.ProcessorCount
        : 1;

    /// <summary>The settings the format registry reads records with.</summary>
    public FormatOptions Formats => new() { NpySamplingRate = NpySamplingRate, Hdf5 = Hdf5, Archives = Archives };

    /// <summary>What is wrong with these settings, one line each naming the key; empty when they can work.</summary>
    public IReadOnlyList<string> Problems()
    {
        var problems = new List<string>();
        var devices = Devices.Count == 0 ? [WorkerDevice.Cpu] : new List<WorkerDevice>();
        foreach (var device in Devices)
        {
            try
            {
                devices.Add(WorkerDevice.Parse(device));
            }
            catch (FormatException e)
            {
                problems.Add(e.Message);
            }
        }

        void Positive(string key, double value)
        {
            if (!(value > 0))
            {
                problems.Add($"Workers:{key} must be positive, not {value.ToString(CultureInfo.InvariantCulture)}");
            }
        }

        Positive(nameof(PreprocessThreads), PreprocessThreads);
        Positive(nameof(WriteBatchRows), WriteBatchRows);
        Positive(nameof(Writers), Writers);
        Positive(nameof(IdlePollInterval), IdlePollInterval.TotalMilliseconds);
        Positive(nameof(MaxShardBytes), MaxShardBytes);
        Positive(nameof(DownloadConcurrency), DownloadConcurrency);
        Positive(nameof(ModelThreadsPerGpu), ModelThreadsPerGpu);
        Positive(nameof(NpySamplingRate), NpySamplingRate);
        Positive("Hdf5:SamplingRate", Hdf5.SamplingRate);
        Positive("Archives:MaxMemberBytes", Archives.MaxMemberBytes);
        Positive("Archives:MaxExtractedBytes", Archives.MaxExtractedBytes);
        Positive("Archives:MaxExpansion", Archives.MaxExpansion);
        Positive("Hdf5:MaxExams", Hdf5.MaxExams);
        Positive("Hdf5:MaxSamplesPerExam", Hdf5.MaxSamplesPerExam);
        Positive("Hdf5:MaxExpansion", Hdf5.MaxExpansion);
        if (!(Archives.FreeSpaceFraction > 0 && Archives.FreeSpaceFraction <= 1))
        {
            problems.Add($"Workers:Archives:FreeSpaceFraction must be more than 0 and at most 1, not {Archives.FreeSpaceFraction.ToString(CultureInfo.InvariantCulture)}");
        }
        if (PrefetchShards < 0 || IntraOpThreads < 0 || ConcurrentBatches < 0)
        {
            problems.Add("Workers:PrefetchShards, Workers:IntraOpThreads and Workers:ConcurrentBatches must not be negative");
        }

        problems.AddRange(Cuda.Problems(devices));
        if (IoBindingMemory is { } memory && !Enum.IsDefined(memory))
        {
            problems.Add($"Workers:IoBindingMemory must be Device or Host, not {memory}");
        }

        foreach (var gpu in devices.Where(d => d.GpuIndex is not null).Select(d => d.GpuIndex!.Value))
        {
            var scorer = new ScorerOptions { Provider = ExecutionProviderKind.Cuda, Cuda = Cuda.For(gpu), IoBinding = IoBinding, BindingMemory = IoBindingMemory };
            if (scorer.UsesCudaGraph && scorer.Problems().Contains(ScorerOptions.CudaGraphNeedsDeviceBinding))
            {
                problems.Add($"Workers:Cuda:EnableCudaGraph (GPU {gpu.ToString(CultureInfo.InvariantCulture)}): {ScorerOptions.CudaGraphNeedsDeviceBinding}");
            }
        }

        return problems;
    }
}
