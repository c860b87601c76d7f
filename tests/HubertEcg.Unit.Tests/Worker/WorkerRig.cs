using HubertEcg.Grains;
using HubertEcg.Inference.Formats;
using HubertEcg.Worker;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace HubertEcg.Unit.Tests.Worker;

/// <summary>A worker wired to fakes, with shards made of text records in a local folder.</summary>
internal sealed class WorkerRig : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), $"worker-rig-{Guid.NewGuid():N}");
    private readonly TestMeterFactory _meters = new();
    private int _shards;

    public WorkerRig()
    {
        Leases = new FakeLeasePort(Changes);
        Sink = new CollectingSink(Changes);
        Metrics = new ScoringMetrics(_meters);
        Options = new WorkerOptions
        {
            PreprocessThreads = 2,
            WriteBatchRows = 512,
            IdlePollInterval = TimeSpan.FromMilliseconds(20),
            TempDirectory = Path.Combine(_root, "tmp"),
            ConcurrentBatches = 1,
        };
    }

    public Changes Changes { get; } = new();

    public FakeLeasePort Leases { get; }

    public CollectingSink Sink { get; }

    /// <summary>The model every shard is scored with; set before <see cref="Shard"/> and <see cref="Worker"/>.</summary>
    public FakeScorer Scorer { get; set; } = new();

    public ScoringMetrics Metrics { get; }

    public WorkerOptions Options { get; }

    public ILogger Logger { get; set; } = NullLogger.Instance;

    /// <summary>The folder blobs are downloaded from, laid out as container/blob name.</summary>
    public string BlobRoot => Path.Combine(_root, "blobs");

    /// <summary>The silo's model cache the worker gets (for runs whose model is in blob storage); none unless set.</summary>
    public ModelCache? Models { get; set; }

    public WorkerPorts Ports => new(
        Leases,
        new LocalBlobSource(BlobRoot),
        Sink,
        new EmptyScoreIndex(),
        new EmptyScoreIndex(),
        new TextRecordDecoder(),
        new ConstantWindowPreparer(),
        Scorer,
        Metrics,
        Models: Models);

    /// <summary>A shard of records (name and content) in container <c>c</c>, as the coordinator would lease it.</summary>
    public ShardLease Shard(int batchSize, Aggregation aggregation, params (string Name, string Content)[] records)
    {
        var shardNo = Interlocked.Increment(ref _shards);
        var folder = Path.Combine(_root, "blobs", "c");
        Directory.CreateDirectory(folder);
        var blobs = new List<string>();
        foreach (var (name, content) in records)
        {
            var blob = $"s{shardNo}/{name}.txt";
            Directory.CreateDirectory(Path.Combine(folder, $"s{shardNo}"));
            File.WriteAllText(Path.Combine(folder, blob), content);
            blobs.Add(blob);
        }

        return new ShardLease(
            Guid.NewGuid(),
            shardNo,
            1,
            ShardKind.Records,
            "c",
            blobs,
            DateTime.UtcNow.AddMinutes(1),
            TimeSpan.FromMilliseconds(300),
            new RunScoringSettings(Scorer.Model.ModelId, "model.onnx", "hubert-ecg-2024", aggregation, 8, batchSize),
            FromManifest: false);
    }

    public ScoringWorker Worker() =>
        new("test-worker", WorkerDevice.Cpu, Ports, FormatRegistry.Create(new FormatOptions()), Options, Logger);

    public void Dispose()
    {
        _meters.Dispose();
        if (Directory.Exists(_root))
        {
            Directory.Delete(_root, recursive: true);
        }
    }
}
