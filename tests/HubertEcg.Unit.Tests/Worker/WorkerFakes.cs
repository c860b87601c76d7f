using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using HubertEcg.Grains;
using HubertEcg.Inference.Ecg;
using HubertEcg.Inference.Formats;
using HubertEcg.Inference.Model;
using HubertEcg.Worker;

namespace HubertEcg.Unit.Tests.Worker;

/// <summary>
/// Wakes whoever waits for a fake's state to change, so that tests wait on conditions instead of sleeping: take
/// <see cref="Next"/> before checking the condition, then await it.
/// </summary>
internal sealed class Changes
{
    private TaskCompletionSource _next = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public Task Next => Volatile.Read(ref _next).Task;

    public void Pulse() => Interlocked.Exchange(ref _next, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).SetResult();

    /// <summary>Waits until <paramref name="condition"/> holds; fails the test after a generous limit.</summary>
    public async Task WaitUntilAsync(Func<bool> condition, string what, double seconds = 60)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (true)
        {
            var next = Next;
            if (condition())
            {
                return;
            }

            var left = deadline - DateTime.UtcNow;
            if (left <= TimeSpan.Zero)
            {
                Assert.Fail($"timed out waiting until {what}");
            }

            await Task.WhenAny(next, Task.Delay(left));
        }
    }
}

/// <summary>
/// Hands out the leases queued in it, renews them (or answers <see cref="LeaseStatus.Lost"/> once told to lose one),
/// and records completions and releases.
/// </summary>
internal sealed class FakeLeasePort(Changes changes) : ILeasePort
{
    private readonly ConcurrentQueue<ShardLease> _pending = new();
    private readonly ConcurrentDictionary<(Guid, int), bool> _lost = new();

    public ConcurrentQueue<ShardOutcome> Completed { get; } = new();

    public ConcurrentQueue<(ShardLease Lease, string? Error, bool Permanent)> Released { get; } = new();

    public ConcurrentQueue<ShardLease> Acquired { get; } = new();

    /// <summary>The runs failed through the port (a run-level fault), with the reason.</summary>
    public ConcurrentQueue<(ShardLease Lease, string Reason)> RunsFailed { get; } = new();

    public void Add(params ShardLease[] leases)
    {
        foreach (var lease in leases)
        {
            _pending.Enqueue(lease);
        }
    }

    /// <summary>The next renewal of <paramref name="lease"/> answers that it is lost.</summary>
    public void Lose(ShardLease lease) => _lost[(lease.RunId, lease.ShardNo)] = true;

    public bool IsCompleted(ShardLease lease) => Completed.Any(o => o.ShardNo == lease.ShardNo && o.LeaseId == lease.LeaseId);

    public Task<ShardLease?> AcquireAsync(string workerId, CancellationToken cancellationToken)
    {
        var lease = _pending.TryDequeue(out var next) ? next : null;
        if (lease is not null)
        {
            Acquired.Enqueue(lease);
            changes.Pulse();
        }

        return Task.FromResult(lease);
    }

    public Task<LeaseStatus> RenewAsync(string workerId, ShardLease lease, int recordsSinceLastReport) =>
        Task.FromResult(_lost.ContainsKey((lease.RunId, lease.ShardNo)) ? LeaseStatus.Lost : LeaseStatus.Renewed);

    public Task CompleteAsync(ShardLease lease, ShardOutcome outcome)
    {
        Completed.Enqueue(outcome);
        changes.Pulse();
        return Task.CompletedTask;
    }

    public Task ReleaseAsync(string workerId, ShardLease lease, string? error, bool permanent)
    {
        Released.Enqueue((lease, error, permanent));
        changes.Pulse();
        return Task.CompletedTask;
    }

    public Task FailRunAsync(string workerId, ShardLease lease, string reason)
    {
        RunsFailed.Enqueue((lease, reason));
        changes.Pulse();
        return Task.CompletedTask;
    }

    /// <summary>Leases given back because a service was unreachable: lease, service, error.</summary>
    public ConcurrentQueue<(ShardLease Lease, string Service, string Error)> Interrupted { get; } = new();

    public Task InterruptAsync(string workerId, ShardLease lease, string service, string error)
    {
        Interrupted.Enqueue((lease, service, error));
        changes.Pulse();
        return Task.CompletedTask;
    }
}

/// <summary>Downloads by copying files from a local folder laid out as container/blob name; the ETag is the file's length.</summary>
internal sealed class LocalBlobSource(string root) : IBlobSource
{
    public async Task<string> DownloadToFileAsync(string container, string blobName, string path, long maxBytes, CancellationToken cancellationToken = default)
    {
        var source = Path.Combine(root, container, blobName);
        if (!File.Exists(source))
        {
            throw new BlobNotFoundException(container, blobName);
        }

        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        await using (var from = File.OpenRead(source))
        await using (var to = File.Create(path))
        {
            await from.CopyToAsync(to, cancellationToken);
        }

        return $"etag-{new FileInfo(source).Length}";
    }
}

/// <summary>
/// Collects the rows written. <see cref="BeforeScores"/> runs before each score write and may throw (a sink that
/// fails) or wait (a slow one) with the write's token.
/// </summary>
internal sealed class CollectingSink(Changes changes) : IResultSink
{
    public ConcurrentQueue<ScoreRow> Scores { get; } = new();

    public ConcurrentQueue<QuarantineRow> Quarantined { get; } = new();

    public int ScoreWrites;

    public Func<IReadOnlyList<ScoreRow>, CancellationToken, Task>? BeforeScores { get; set; }

    public async Task<int> WriteScoresAsync(IReadOnlyList<ScoreRow> rows, string? writerId, CancellationToken cancellationToken = default)
    {
        Interlocked.Increment(ref ScoreWrites);
        try
        {
            if (BeforeScores is { } before)
            {
                await before(rows, cancellationToken);
            }

            foreach (var row in rows)
            {
                Scores.Enqueue(row);
            }

            return rows.Count;
        }
        finally
        {
            changes.Pulse();
        }
    }

    public Task<int> WriteQuarantineAsync(IReadOnlyList<QuarantineRow> rows, string? writerId, CancellationToken cancellationToken = default)
    {
        foreach (var row in rows)
        {
            Quarantined.Enqueue(row);
        }

        changes.Pulse();
        return Task.FromResult(rows.Count);
    }
}

internal sealed class EmptyScoreIndex : IScoreIndex, IContainerPassLog
{
    public Task<IReadOnlyDictionary<string, ScoredSource>> ScoredRecordsAsync(string modelId, IReadOnlyCollection<string> blobs, CancellationToken cancellationToken = default) =>
        Task.FromResult<IReadOnlyDictionary<string, ScoredSource>>(new Dictionary<string, ScoredSource>());

    public Task RecordContainerPassAsync(string modelId, string blob, string etag, Guid runId, long recordsScored, long recordsQuarantined, CancellationToken cancellationToken = default) =>
        Task.CompletedTask;
}

/// <summary>
/// Records are text files: one number per window, comma separated (<c>1,3</c> is a record of two windows). The
/// decoder reads them into a one-lead signal; the word <c>unreadable</c> makes a record that cannot be read, and a
/// negative number one that cannot be preprocessed.
/// </summary>
internal sealed class TextRecordDecoder : IRecordDecoder
{
    public IEnumerable<RecordInput> Enumerate(DownloadedShard shard) =>
        shard.Blobs.Select(b => new RecordInput(FormatRegistry.RecordStem(b.BlobName), b.BlobName, b.ETag, () => Load(FormatRegistry.RecordStem(b.BlobName), b.LocalPath)));

    private static EcgSignal Load(string recordId, string path)
    {
        var text = File.ReadAllText(path).Trim();
        if (text == "unreadable")
        {
            throw new EcgFormatException(recordId, "not a record");
        }

        var values = text.Split(',').Select(v => double.Parse(v, System.Globalization.CultureInfo.InvariantCulture)).ToArray();
        return new EcgSignal(recordId, 500, ["I"], [values]);
    }
}

/// <summary>One window per sample of the one-lead signal, every value of the window that sample.</summary>
internal sealed class ConstantWindowPreparer : IWindowPreparer
{
    public float[] Prepare(EcgSignal signal, string profile, int maxWindows)
    {
        var values = signal.Leads[0];
        if (values.Any(v => v < 0))
        {
            throw new EcgFormatException(signal.RecordId, "too short to preprocess");
        }

        var windows = new float[values.Length * IEcgScorer.WindowLength];
        for (var w = 0; w < values.Length; w++)
        {
            windows.AsSpan(w * IEcgScorer.WindowLength, IEcgScorer.WindowLength).Fill((float)values[w]);
        }

        return windows;
    }
}

/// <summary>
/// A model whose outputs for a window of value v are the embedding (v, 2v) and the probabilities (v / 10, 1 - v / 10).
/// Remembers each batch's windows (their values); <see cref="BeforeBatch"/> runs on the model thread before each call.
/// Its descriptor claims <paramref name="hiddenSize"/> (a model lying about it when not 2).
/// </summary>
internal sealed class FakeScorer(string modelId = "fake-model", int hiddenSize = 2) : IEcgScorer, IScorerProvider
{
    public ModelDescriptor Model { get; } = new(modelId, "fake", "hash", hiddenSize, ["A", "B"], Untrained: false, "{}", "hubert-ecg-2024");

    public ConcurrentQueue<float[]> Batches { get; } = new();

    public Action? BeforeBatch { get; set; }

    public IEcgScorer Get(string modelPath, WorkerDevice device) => this;

    public void Score(ReadOnlySpan<float> windows, int batch, Span<float> embeddings, Span<float> probabilities)
    {
        BeforeBatch?.Invoke();
        var values = new float[batch];
        for (var i = 0; i < batch; i++)
        {
            var v = windows[i * IEcgScorer.WindowLength];
            values[i] = v;
            embeddings[2 * i] = v;
            embeddings[(2 * i) + 1] = 2 * v;
            probabilities[2 * i] = v / 10;
            probabilities[(2 * i) + 1] = 1 - (v / 10);
        }

        Batches.Enqueue(values);
    }

    public void Dispose()
    {
    }
}

internal sealed class TestMeterFactory : IMeterFactory
{
    private readonly List<Meter> _meters = [];

    public Meter Create(MeterOptions options)
    {
        var meter = new Meter(options);
        _meters.Add(meter);
        return meter;
    }

    public void Dispose() => _meters.ForEach(m => m.Dispose());
}
