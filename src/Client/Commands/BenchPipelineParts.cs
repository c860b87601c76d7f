using System.Diagnostics;
using System.Diagnostics.Metrics;
using HubertEcg.Grains;
using HubertEcg.Inference.Ecg;
using HubertEcg.Inference.Model;
using HubertEcg.Worker;

namespace HubertEcg.Client.Commands;

/// <summary>
/// The scorer of <c>bench pipeline</c>: outputs of the model's shapes (its hidden size and label count) without running
/// anything, so that the worker's rate is what its CPU side allows. The outputs are copied from a few fixed random
/// vectors, not zeros, so that what is written to Postgres costs what real embeddings cost (Postgres compresses a run
/// of zeros; it cannot compress random floats).
/// </summary>
internal sealed class NullScorer : IEcgScorer, IScorerProvider
{
    // A prime, so that the windows of one record get different outputs.
    private const int Variants = 61;
    private readonly float[][] _embeddings;
    private readonly float[][] _probabilities;
    private readonly StageClock _clock;
    private int _next;

    public NullScorer(ModelDescriptor model, StageClock clock)
    {
        Model = model;
        _clock = clock;
        var random = new Random(20261206);
        _embeddings = Enumerable.Range(0, Variants).Select(_ => Enumerable.Range(0, model.HiddenSize).Select(_ => random.NextSingle() - 0.5f).ToArray()).ToArray();
        _probabilities = Enumerable.Range(0, Variants).Select(_ => Enumerable.Range(0, model.LabelCount).Select(_ => random.NextSingle()).ToArray()).ToArray();
    }

    public ModelDescriptor Model { get; }

    public IEcgScorer Get(string modelPath, WorkerDevice device) => this;

    public void Score(ReadOnlySpan<float> windows, int batch, Span<float> embeddings, Span<float> probabilities)
    {
        var started = StageClock.Start();
        var hidden = Model.HiddenSize;
        var labels = Model.LabelCount;
        for (var i = 0; i < batch; i++)
        {
            var k = (int)((uint)Interlocked.Increment(ref _next) % Variants);
            _embeddings[k].CopyTo(embeddings.Slice(i * hidden, hidden));
            _probabilities[k].CopyTo(probabilities.Slice(i * labels, labels));
        }

        _clock.Stop(PipelineStage.Score, started, batch);
    }

    public void Dispose()
    {
    }
}

/// <summary>Downloads through the real blob adapter, counting each blob's wall-clock time as <see cref="PipelineStage.Download"/>.</summary>
internal sealed class TimedBlobSource(IBlobSource inner, StageClock clock) : IBlobSource
{
    public async Task<string> DownloadToFileAsync(string container, string blobName, string path, long maxBytes, CancellationToken cancellationToken = default)
    {
        var started = Stopwatch.GetTimestamp();
        try
        {
            return await inner.DownloadToFileAsync(container, blobName, path, maxBytes, cancellationToken);
        }
        finally
        {
            clock.AddWall(PipelineStage.Download, started, 1);
        }
    }
}

/// <summary>
/// Reads records through the real decoder (the format registry), counting the grouping of a shard's files and each
/// record's read as <see cref="PipelineStage.Decode"/> (CPU time: a record is read on one thread).
/// </summary>
internal sealed class TimedDecoder(IRecordDecoder inner, StageClock clock) : IRecordDecoder
{
    public IEnumerable<RecordInput> Enumerate(DownloadedShard shard)
    {
        var started = StageClock.Start();
        var records = inner.Enumerate(shard).ToList();
        clock.Stop(PipelineStage.Decode, started, 0);
        return records.Select(record =>
        {
            var load = record.Load;
            return record with
            {
                Load = () =>
                {
                    var reading = StageClock.Start();
                    try
                    {
                        return load();
                    }
                    finally
                    {
                        clock.Stop(PipelineStage.Decode, reading, 1);
                    }
                },
            };
        });
    }
}

/// <summary>Preprocesses through the real preparer, counting each record as <see cref="PipelineStage.Preprocess"/> (CPU time).</summary>
internal sealed class TimedPreparer(IWindowPreparer inner, StageClock clock) : IWindowPreparer
{
    public float[] Prepare(EcgSignal signal, string profile, int maxWindows)
    {
        var started = StageClock.Start();
        try
        {
            return inner.Prepare(signal, profile, maxWindows);
        }
        finally
        {
            clock.Stop(PipelineStage.Preprocess, started, 1);
        }
    }
}

/// <summary>Writes through the real result writer, counting each write's wall-clock time as <see cref="PipelineStage.Write"/>.</summary>
internal sealed class TimedSink(IResultSink inner, StageClock clock) : IResultSink
{
    public async Task<int> WriteScoresAsync(IReadOnlyList<ScoreRow> rows, string? writerId, CancellationToken cancellationToken = default)
    {
        var started = Stopwatch.GetTimestamp();
        try
        {
            return await inner.WriteScoresAsync(rows, writerId, cancellationToken);
        }
        finally
        {
            clock.AddWall(PipelineStage.Write, started, rows.Count);
        }
    }

    public async Task<int> WriteQuarantineAsync(IReadOnlyList<QuarantineRow> rows, string? writerId, CancellationToken cancellationToken = default)
    {
        var started = Stopwatch.GetTimestamp();
        try
        {
            return await inner.WriteQuarantineAsync(rows, writerId, cancellationToken);
        }
        finally
        {
            clock.AddWall(PipelineStage.Write, started, rows.Count);
        }
    }
}

/// <summary>
/// The lease port of <c>bench pipeline</c>: hands out a fixed list of shards once each and notes how each ended. A
/// shard released with an error, interrupted or failing its run is not handed out again; <see cref="Failures"/> says why.
/// </summary>
internal sealed class BenchLeasePort(IReadOnlyList<ShardLease> shards) : ILeasePort
{
    private readonly Queue<ShardLease> _waiting = new(shards);
    private readonly TaskCompletionSource _allEnded = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly List<string> _failures = [];
    private int _open = shards.Count;
    private long _done;
    private long _quarantined;

    /// <summary>Completes once every shard is done or failed.</summary>
    public Task AllEnded => _allEnded.Task;

    public long RecordsDone => Interlocked.Read(ref _done);

    public long RecordsQuarantined => Interlocked.Read(ref _quarantined);

    public IReadOnlyList<string> Failures
    {
        get
        {
            lock (_failures)
            {
                return [.. _failures];
            }
        }
    }

    public Task<ShardLease?> AcquireAsync(string workerId, CancellationToken cancellationToken)
    {
        lock (_waiting)
        {
            return Task.FromResult(_waiting.TryDequeue(out var lease) ? lease : null);
        }
    }

    public Task<LeaseStatus> RenewAsync(string workerId, ShardLease lease, int recordsSinceLastReport) => Task.FromResult(LeaseStatus.Renewed);

    public Task CompleteAsync(ShardLease lease, ShardOutcome outcome)
    {
        Interlocked.Add(ref _done, outcome.RecordsDone);
        Interlocked.Add(ref _quarantined, outcome.RecordsQuarantined);
        End();
        return Task.CompletedTask;
    }

    public Task ReleaseAsync(string workerId, ShardLease lease, string? error, bool permanent)
    {
        // Without an error the worker is stopping and hands back what it holds: nothing ended.
        if (error is not null)
        {
            Fail(lease, error);
        }

        return Task.CompletedTask;
    }

    public Task InterruptAsync(string workerId, ShardLease lease, string service, string error)
    {
        Fail(lease, $"{service} unreachable: {error}");
        return Task.CompletedTask;
    }

    public Task FailRunAsync(string workerId, ShardLease lease, string reason)
    {
        Fail(lease, reason);
        return Task.CompletedTask;
    }

    private void Fail(ShardLease lease, string error)
    {
        lock (_failures)
        {
            _failures.Add($"shard {lease.ShardNo}: {error}");
        }

        End();
    }

    private void End()
    {
        if (Interlocked.Decrement(ref _open) == 0)
        {
            _allEnded.TrySetResult();
        }
    }
}

/// <summary>
/// Samples a worker's queue depths (the <c>hubert_ecg.queue.*</c> gauges of its <see cref="ScoringMetrics"/>) at a
/// fixed interval on a thread of its own, keeping each gauge's mean and maximum.
/// </summary>
internal sealed class QueueSampler : IDisposable
{
    private readonly MeterListener _listener = new();
    private readonly Dictionary<string, (long Sum, long Max, long Samples)> _depths = new(StringComparer.Ordinal);
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _sampling;

    public QueueSampler(ScoringMetrics metrics, TimeSpan interval)
    {
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (ReferenceEquals(instrument.Meter, metrics.Meter) && instrument.Name.StartsWith("hubert_ecg.queue.", StringComparison.Ordinal))
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        _listener.SetMeasurementEventCallback<long>((instrument, value, _, _) =>
        {
            _depths.TryGetValue(instrument.Name, out var d);
            _depths[instrument.Name] = (d.Sum + value, Math.Max(d.Max, value), d.Samples + 1);
        });
        _listener.Start();
        _sampling = Task.Factory.StartNew(
            async () =>
            {
                using var timer = new PeriodicTimer(interval);
                try
                {
                    while (await timer.WaitForNextTickAsync(_stop.Token))
                    {
                        lock (_depths)
                        {
                            _listener.RecordObservableInstruments();
                        }
                    }
                }
                catch (OperationCanceledException) when (_stop.IsCancellationRequested)
                {
                    // Stopped.
                }
            },
            CancellationToken.None,
            TaskCreationOptions.LongRunning,
            TaskScheduler.Default).Unwrap();
    }

    /// <summary>Stops sampling and returns each gauge's mean and maximum over the samples taken.</summary>
    public async Task<IReadOnlyDictionary<string, (double Mean, long Max, long Samples)>> StopAsync()
    {
        await _stop.CancelAsync();
        await _sampling;
        lock (_depths)
        {
            return _depths.ToDictionary(p => p.Key, p => (p.Value.Samples == 0 ? 0 : (double)p.Value.Sum / p.Value.Samples, p.Value.Max, p.Value.Samples));
        }
    }

    public void Dispose()
    {
        _listener.Dispose();
        _stop.Dispose();
    }
}
