using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace HubertEcg.Worker;

/// <summary>
/// The silo's scoring metrics, all under one meter (<see cref="MeterName"/>), created through the host's
/// <see cref="IMeterFactory"/> so that each silo has its own set. Instruments carry the worker id and, where the model
/// matters, the model id (or the table written): never the run, so that the number of series stays bounded however
/// many runs a silo serves (run-level figures are in Postgres and the dashboard). Queue depths are observed per
/// worker. Record ids are never tags.
/// </summary>
public sealed class ScoringMetrics
{
    /// <summary>The meter every HubertEcg instrument belongs to.</summary>
    public const string MeterName = "HubertEcg";

    /// <summary>Orleans' own meter (grain calls, activations, membership, messaging).</summary>
    public const string OrleansMeterName = "Microsoft.Orleans";

    public const string WorkerIdTag = "worker_id";
    public const string ModelIdTag = "model_id";
    public const string TableTag = "table";

    public const string RecordsScored = "hubert_ecg.records.scored";
    public const string RecordsQuarantined = "hubert_ecg.records.quarantined";
    public const string WindowsScored = "hubert_ecg.windows.scored";
    public const string BatchDuration = "hubert_ecg.batch.duration";
    public const string WriteDuration = "hubert_ecg.write.duration";
    public const string QueueRecords = "hubert_ecg.queue.records";
    public const string QueueWindows = "hubert_ecg.queue.windows";
    public const string QueueRows = "hubert_ecg.queue.rows";
    public const string QueueShards = "hubert_ecg.queue.shards";
    public const string LeasesExpired = "hubert_ecg.leases.expired";
    public const string LeasesReclaimed = "hubert_ecg.leases.reclaimed";
    public const string ShardsCompleted = "hubert_ecg.shards.completed";
    public const string ShardsFailed = "hubert_ecg.shards.failed";
    public const string ModelDownloads = "hubert_ecg.model.downloads";
    public const string ModelRejected = "hubert_ecg.model.rejected";
    public const string ModelFileTag = "file";

    private readonly ConcurrentDictionary<string, WorkerQueues> _workers = new(StringComparer.Ordinal);
    private readonly Counter<long> _recordsScored;
    private readonly Counter<long> _recordsQuarantined;
    private readonly Counter<long> _windowsScored;
    private readonly Histogram<double> _batchDuration;
    private readonly Histogram<double> _writeDuration;
    private readonly Counter<long> _leasesExpired;
    private readonly Counter<long> _leasesReclaimed;
    private readonly Counter<long> _shardsCompleted;
    private readonly Counter<long> _shardsFailed;
    private readonly Counter<long> _modelDownloads;
    private readonly Counter<long> _modelRejected;

    public ScoringMetrics(IMeterFactory meters)
    {
        ArgumentNullException.ThrowIfNull(meters);
        var meter = meters.Create(MeterName);
        Meter = meter;
        _recordsScored = meter.CreateCounter<long>(
            RecordsScored, "{record}", "Records scored and written to Postgres (a shard redone after a lost lease counts again)");
        _recordsQuarantined = meter.CreateCounter<long>(
            RecordsQuarantined, "{record}", "Records that could not be read or preprocessed, written to the quarantine table");
        _windowsScored = meter.CreateCounter<long>(WindowsScored, "{window}", "5 s windows passed through the model");
        _batchDuration = meter.CreateHistogram<double>(BatchDuration, "ms", "Time of one model call on a batch of windows");
        _writeDuration = meter.CreateHistogram<double>(WriteDuration, "ms", "Time of one Postgres write of score or quarantine rows (COPY and insert)");
        _leasesExpired = meter.CreateCounter<long>(LeasesExpired, "{lease}", "Shard leases that expired because their worker stopped renewing");
        _leasesReclaimed = meter.CreateCounter<long>(LeasesReclaimed, "{lease}", "Shard leases taken back without counting an attempt because their worker's silo was declared dead");
        _shardsCompleted = meter.CreateCounter<long>(ShardsCompleted, "{shard}", "Shards done");
        _shardsFailed = meter.CreateCounter<long>(ShardsFailed, "{shard}", "Shards marked failed (a permanent error, or out of attempts)");
        _modelDownloads = meter.CreateCounter<long>(ModelDownloads, "{file}", "Model files downloaded from blob storage into the silo's model cache");
        _modelRejected = meter.CreateCounter<long>(
            ModelRejected, "{file}", "Model files refused because their SHA-256 is not their content address's (tag file: cached or downloaded)");
        meter.CreateObservableGauge(QueueRecords, () => Observe(q => q.Records), "{record}", "Records of the current shard waiting to be read and preprocessed");
        meter.CreateObservableGauge(QueueWindows, () => Observe(q => q.Windows), "{window}", "Preprocessed windows waiting for the model");
        meter.CreateObservableGauge(QueueRows, () => Observe(q => q.Rows), "{row}", "Score and quarantine rows waiting to be written");
        meter.CreateObservableGauge(QueueShards, () => Observe(q => q.Shards), "{shard}", "Downloaded shards waiting for the worker");
    }

    /// <summary>This silo's instance of the meter (tests tell silos apart by it).</summary>
    public Meter Meter { get; }

    /// <summary>Starts observing a worker's queues; disposing the result stops it.</summary>
    public WorkerQueues TrackWorker(string workerId)
    {
        var queues = new WorkerQueues(this, workerId);
        _workers[workerId] = queues;
        return queues;
    }

    public void AddRecordsScored(string workerId, string modelId, int count) =>
        _recordsScored.Add(count, WorkerModelTags(workerId, modelId));

    public void AddRecordsQuarantined(string workerId, int count) =>
        _recordsQuarantined.Add(count, new KeyValuePair<string, object?>(WorkerIdTag, workerId));

    public void AddWindowsScored(string workerId, string modelId, int count) =>
        _windowsScored.Add(count, WorkerModelTags(workerId, modelId));

    public void RecordBatch(string workerId, string modelId, TimeSpan elapsed) =>
        _batchDuration.Record(elapsed.TotalMilliseconds, new TagList { { WorkerIdTag, workerId }, { ModelIdTag, modelId } });

    /// <param name="table"><c>scores</c> or <c>quarantine</c>.</param>
    public void RecordWrite(string workerId, string table, TimeSpan elapsed) =>
        _writeDuration.Record(elapsed.TotalMilliseconds, new TagList { { WorkerIdTag, workerId }, { TableTag, table } });

    public void AddLeaseExpired() => _leasesExpired.Add(1);

    public void AddLeaseReclaimed() => _leasesReclaimed.Add(1);

    public void AddShardCompleted(string workerId) => _shardsCompleted.Add(1, new KeyValuePair<string, object?>(WorkerIdTag, workerId));

    public void AddShardFailed() => _shardsFailed.Add(1);

    public void AddModelDownload(string modelId) => _modelDownloads.Add(1, new KeyValuePair<string, object?>(ModelIdTag, modelId));

    /// <param name="file"><c>cached</c> or <c>downloaded</c>.</param>
    public void AddModelRejected(string modelId, string file) =>
        _modelRejected.Add(1, new TagList { { ModelIdTag, modelId }, { ModelFileTag, file } });

    private static TagList WorkerModelTags(string workerId, string modelId) => new() { { WorkerIdTag, workerId }, { ModelIdTag, modelId } };

    private List<Measurement<long>> Observe(Func<WorkerQueues, long> depth) =>
        _workers.Values.Select(q => new Measurement<long>(depth(q), new KeyValuePair<string, object?>(WorkerIdTag, q.WorkerId))).ToList();

    private void Forget(WorkerQueues queues) => _workers.TryRemove(new KeyValuePair<string, WorkerQueues>(queues.WorkerId, queues));

    /// <summary>
    /// One worker's queue depths, kept by the worker as items enter and leave each stage and read by the observable
    /// gauges: records waiting to be preprocessed, windows waiting for the model, rows waiting to be written, and
    /// downloaded shards waiting to be scored.
    /// </summary>
    public sealed class WorkerQueues : IDisposable
    {
        private readonly ScoringMetrics _owner;
        private long _records;
        private long _windows;
        private long _rows;
        private long _shards;

        internal WorkerQueues(ScoringMetrics owner, string workerId)
        {
            _owner = owner;
            WorkerId = workerId;
        }

        public string WorkerId { get; }

        public long Records => Interlocked.Read(ref _records);

        public long Windows => Interlocked.Read(ref _windows);

        public long Rows => Interlocked.Read(ref _rows);

        public long Shards => Interlocked.Read(ref _shards);

        public void AddRecords(long delta) => Interlocked.Add(ref _records, delta);

        public void AddWindows(long delta) => Interlocked.Add(ref _windows, delta);

        public void AddRows(long delta) => Interlocked.Add(ref _rows, delta);

        public void AddShards(long delta) => Interlocked.Add(ref _shards, delta);

        /// <summary>The current shard ended (done, failed or stopped): whatever it left in its stages is dropped.</summary>
        public void ClearShard()
        {
            Interlocked.Exchange(ref _records, 0);
            Interlocked.Exchange(ref _windows, 0);
            Interlocked.Exchange(ref _rows, 0);
        }

        public void Dispose() => _owner.Forget(this);
    }
}
