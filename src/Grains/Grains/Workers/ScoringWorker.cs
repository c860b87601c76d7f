using System.Diagnostics;
using System.Threading.Channels;
using HubertEcg.Grains.Telemetry;
using HubertEcg.Inference.Ecg;
using HubertEcg.Inference.Ecg.Wfdb;
using HubertEcg.Inference.Model;
using HubertEcg.Storage;
using Microsoft.Extensions.Logging;

namespace HubertEcg.Grains.Workers;

/// <summary>
/// One scoring worker, pinned to its silo and device. It pulls shard leases from the coordinators of active runs,
/// downloads the next shard while the current one is scored (one shard prefetched), reads and preprocesses
/// records on a pool of threads, scores windows in batches, aggregates per record, writes results idempotently and
/// reports the shard done. A heartbeat renews each held lease; a lost lease or a cancelled run stops its shard.
/// On shutdown, leases not finished are handed back without counting an attempt.
/// Every log line about a shard carries its run id and shard number (as message parameters, and in a logger scope
/// around the shard's work); error text in logs and quarantine reasons goes through <see cref="SafeErrors"/>, so it
/// names the record and the reason, never record content. Counts, latencies and queue depths go to
/// <see cref="ScoringMetrics"/>. In an incremental run, records
/// whose stored score came from the same source blob and ETag are left out (one query per shard).
/// </summary>
public sealed partial class ScoringWorker(
    string workerId,
    string device,
    IGrainFactory grains,
    RunStore runs,
    BlobStore blobs,
    ResultWriter writer,
    IRecordDecoder decoder,
    IWindowPreparer preparer,
    IScorerProvider scorers,
    WorkerOptions options,
    ScoringMetrics metrics,
    ILogger logger,
    CurrentScores? currentScores = null)
{
    private static readonly Func<ILogger, Guid, int, string, IDisposable?> ShardScope =
        LoggerMessage.DefineScope<Guid, int, string>("run {RunId} shard {ShardNo} worker {Worker}");

    private readonly ScoringMetrics.WorkerQueues _queues = metrics.TrackWorker(workerId);
    private readonly CurrentScores _currentScores = currentScores ?? new CurrentScores(runs.DataSource);

    public string WorkerId => workerId;

    public async Task RunAsync(CancellationToken stoppingToken)
    {
        using var queues = _queues;
        var prefetched = Channel.CreateBounded<HeldLease>(new BoundedChannelOptions(1) { SingleReader = true, SingleWriter = true });
        var producer = Task.Run(() => ProduceAsync(prefetched.Writer, stoppingToken), CancellationToken.None);
        try
        {
            await foreach (var held in prefetched.Reader.ReadAllAsync(CancellationToken.None))
            {
                _queues.AddShards(-1);
                using var scope = ShardScope(logger, held.Lease.RunId, held.Lease.ShardNo, workerId);
                await using (held)
                {
                    if (stoppingToken.IsCancellationRequested)
                    {
                        await held.HandBackAsync();
                        continue;
                    }

                    try
                    {
                        await ProcessAsync(held, stoppingToken);
                    }
                    catch (Exception e)
                    {
                        // The coordinator could not be told (its silo died); the lease expires and the shard is redone.
                        LogShardFailed(logger, SafeErrors.ForLog(e), workerId, held.Lease.RunId, held.Lease.ShardNo);
                    }
                }
            }
        }
        finally
        {
            await producer;
        }
    }

    private async Task ProduceAsync(ChannelWriter<HeldLease> output, CancellationToken stoppingToken)
    {
        try
        {
            while (!stoppingToken.IsCancellationRequested)
            {
                HeldLease? held = null;
                IDisposable? scope = null;
                try
                {
                    held = await AcquireAsync(stoppingToken);
                    if (held is null)
                    {
                        await Task.Delay(options.IdlePollInterval, stoppingToken);
                        continue;
                    }

                    scope = ShardScope(logger, held.Lease.RunId, held.Lease.ShardNo, workerId);
                    if (await DownloadAsync(held, stoppingToken))
                    {
                        _queues.AddShards(1);
                        try
                        {
                            await output.WriteAsync(held, stoppingToken);
                        }
                        catch
                        {
                            _queues.AddShards(-1);
                            throw;
                        }

                        held = null;
                    }
                }
                catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
                {
                    break;
                }
                catch (Exception e)
                {
                    if (held is null)
                    {
                        LogFetchFailed(logger, SafeErrors.ForLog(e), workerId);
                    }
                    else
                    {
                        LogShardFailed(logger, SafeErrors.ForLog(e), workerId, held.Lease.RunId, held.Lease.ShardNo);
                        await held.TryReleaseAsync($"worker {workerId}: {SafeErrors.Describe(e)}", permanent: false);
                    }

                    await Task.Delay(options.IdlePollInterval, CancellationToken.None);
                }
                finally
                {
                    if (held is not null)
                    {
                        if (stoppingToken.IsCancellationRequested)
                        {
                            await held.HandBackAsync();
                        }

                        await held.DisposeAsync();
                    }

                    scope?.Dispose();
                }
            }
        }
        finally
        {
            output.Complete();
        }
    }

    private async Task<HeldLease?> AcquireAsync(CancellationToken cancellationToken)
    {
        foreach (var runId in await runs.ListActiveRunIdsAsync(cancellationToken))
        {
            var coordinator = grains.GetGrain<IRunCoordinatorGrain>(runId);
            var lease = await coordinator.AcquireLease(workerId);
            if (lease is not null)
            {
                LogLeased(logger, workerId, runId, lease.ShardNo, lease.LeaseId);
                return new HeldLease(workerId, coordinator, lease, logger);
            }
        }

        return null;
    }

    /// <summary>
    /// Downloads the shard's blobs; false (and the lease released) when the shard cannot be downloaded. For a run
    /// whose input is a manifest, a listed blob that does not exist is noted (its record is quarantined) rather than
    /// failing the shard, and the signal files each WFDB header names are downloaded too (a manifest may list only
    /// the headers).
    /// </summary>
    private async Task<bool> DownloadAsync(HeldLease held, CancellationToken stoppingToken)
    {
        var lease = held.Lease;
        var root = string.IsNullOrEmpty(options.TempDirectory) ? Path.GetTempPath() : options.TempDirectory;
        var directory = Path.Combine(root, "hubert-ecg", $"{lease.RunId:N}-{lease.ShardNo}-{lease.LeaseId}-{Guid.NewGuid():N}");
        held.LocalDirectory = directory;
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken, held.Stopped);
        var results = new DownloadedBlob?[lease.Blobs.Count];
        var missing = new System.Collections.Concurrent.ConcurrentBag<string>();
        long total = 0;
        async Task<string?> DownloadOneAsync(string name, string path, CancellationToken ct)
        {
            string etag;
            try
            {
                etag = await blobs.DownloadToFileAsync(lease.Container, name, path, options.MaxShardBytes, ct);
            }
            catch (BlobNotFoundException) when (lease.FromManifest)
            {
                return null;
            }

            if (Interlocked.Add(ref total, new FileInfo(path).Length) > options.MaxShardBytes)
            {
                throw new BlobTooLargeException(lease.Container, name, Interlocked.Read(ref total), options.MaxShardBytes);
            }

            return etag;
        }

        var parallel = new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, options.DownloadConcurrency), CancellationToken = linked.Token };
        var blobsOut = new List<DownloadedBlob>();
        try
        {
            await Parallel.ForEachAsync(
                Enumerable.Range(0, lease.Blobs.Count),
                parallel,
                async (i, ct) =>
                {
                    var name = lease.Blobs[i];
                    var path = LocalFiles.PathFor(directory, "", i, name);
                    if (await DownloadOneAsync(name, path, ct) is { } etag)
                    {
                        results[i] = new DownloadedBlob(name, path, etag);
                    }
                    else
                    {
                        missing.Add(name);
                    }
                });
            blobsOut.AddRange(results.OfType<DownloadedBlob>());
            if (lease.FromManifest && lease.Kind == ShardKinds.Records)
            {
                var signalFiles = SignalFilesToFetch(blobsOut);
                var extra = new DownloadedBlob?[signalFiles.Count];
                await Parallel.ForEachAsync(
                    Enumerable.Range(0, signalFiles.Count),
                    parallel,
                    async (i, ct) =>
                    {
                        var (name, stem) = signalFiles[i];
                        var path = LocalFiles.PathFor(directory, "s", i, name);

                        // A signal file that does not exist is left out: its record reports the missing file when read.
                        if (await DownloadOneAsync(name, path, ct) is { } etag)
                        {
                            extra[i] = new DownloadedBlob(name, path, etag, stem);
                        }
                    });
                blobsOut.AddRange(extra.OfType<DownloadedBlob>());
            }
        }
        catch (Exception e) when (e is BlobNotFoundException or BlobTooLargeException)
        {
            LogShardFailed(logger, SafeErrors.ForLog(e), workerId, lease.RunId, lease.ShardNo);
            await held.TryReleaseAsync(e.Message, permanent: true);
            return false;
        }
        catch (OperationCanceledException) when (held.Stopped.IsCancellationRequested && !stoppingToken.IsCancellationRequested)
        {
            return false;
        }

        held.Shard = new DownloadedShard(lease.Kind, lease.Container, directory, blobsOut) { MissingBlobs = missing.Order(StringComparer.Ordinal).ToList() };
        return true;
    }

    /// <summary>
    /// The signal files the downloaded WFDB headers name that are not part of the shard yet, each with its header's
    /// record (path without extension). A header that cannot be parsed names none (its record is quarantined when
    /// read); file names with a folder part are not followed.
    /// </summary>
    private static List<(string BlobName, string RecordStem)> SignalFilesToFetch(IReadOnlyList<DownloadedBlob> downloaded)
    {
        var present = downloaded.Select(b => b.BlobName).ToHashSet(StringComparer.Ordinal);
        var wanted = new List<(string, string)>();
        foreach (var header in downloaded.Where(b => b.BlobName.EndsWith(".hea", StringComparison.OrdinalIgnoreCase)))
        {
            var stem = Coordination.ShardPlanner.RecordStem(header.BlobName);
            WfdbHeader parsed;
            try
            {
                parsed = WfdbHeader.Parse(File.ReadAllText(header.LocalPath), stem);
            }
            catch (EcgFormatException)
            {
                continue;
            }

            var folder = header.BlobName[..(header.BlobName.LastIndexOf('/') + 1)];
            foreach (var file in parsed.Signals.Select(s => s.FileName).Distinct(StringComparer.Ordinal))
            {
                if (file.Length == 0 || file is "." or ".." || file.Contains('/', StringComparison.Ordinal) || file.Contains('\\', StringComparison.Ordinal))
                {
                    continue;
                }

                if (present.Add(folder + file))
                {
                    wanted.Add((folder + file, stem));
                }
            }
        }

        return wanted;
    }

    private async Task ProcessAsync(HeldLease held, CancellationToken stoppingToken)
    {
        var lease = held.Lease;
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken, held.Stopped);
        var ct = linked.Token;
        try
        {
            var scorer = scorers.Get(lease.Settings.ModelPath, device);
            if (!string.Equals(scorer.Model.ModelId, lease.Settings.ModelId, StringComparison.Ordinal))
            {
                await held.TryReleaseAsync(
                    $"model file {lease.Settings.ModelPath} has model id {scorer.Model.ModelId}; the run expects {lease.Settings.ModelId}", permanent: true);
                return;
            }

            var (done, quarantined, skipped) = await ScoreShardAsync(held, scorer, ct);
            await held.CompleteAsync(done, quarantined, skipped);
            LogShardDone(logger, workerId, lease.RunId, lease.ShardNo, done, quarantined, skipped);
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            await held.HandBackAsync();
        }
        catch (OperationCanceledException) when (held.Stopped.IsCancellationRequested)
        {
            LogLeaseLost(logger, workerId, lease.RunId, lease.ShardNo);
        }
        catch (Exception e)
        {
            LogShardFailed(logger, SafeErrors.ForLog(e), workerId, lease.RunId, lease.ShardNo);
            await held.TryReleaseAsync(SafeErrors.Describe(e), permanent: false);
        }
    }

    private async Task<(int Done, int Quarantined, int Skipped)> ScoreShardAsync(HeldLease held, IEcgScorer scorer, CancellationToken ct)
    {
        var skipped = 0;
        var lease = held.Lease;
        var settings = lease.Settings;
        var shard = held.Shard!;
        var prepared = Channel.CreateBounded<PreparedRecord>(new BoundedChannelOptions(Math.Max(8, settings.BatchSize * 2)) { SingleReader = true });
        var rowsOut = Channel.CreateBounded<object>(new BoundedChannelOptions(4) { SingleReader = true, SingleWriter = true });
        using var stages = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var token = stages.Token;

        // Stage 3: writes score rows and quarantine rows in batches, overlapped with scoring; counts what it wrote.
        var writing = Task.Run(
            async () =>
            {
                int scored = 0, quarantined = 0;
                await foreach (var batch in rowsOut.Reader.ReadAllAsync(token))
                {
                    var started = Stopwatch.GetTimestamp();
                    if (batch is List<ScoreRow> scores)
                    {
                        await writer.WriteScoresAsync(scores, WorkerId, token);
                        metrics.RecordWrite(workerId, "scores", Stopwatch.GetElapsedTime(started));
                        metrics.AddRecordsScored(lease.RunId, workerId, settings.ModelId, scores.Count);
                        _queues.AddRows(-scores.Count);
                        scored += scores.Count;
                        held.Report(scores.Count);
                    }
                    else if (batch is List<QuarantineRow> rows)
                    {
                        await writer.WriteQuarantineAsync(rows, WorkerId, token);
                        metrics.RecordWrite(workerId, "quarantine", Stopwatch.GetElapsedTime(started));
                        metrics.AddRecordsQuarantined(lease.RunId, workerId, rows.Count);
                        _queues.AddRows(-rows.Count);
                        quarantined += rows.Count;
                        held.Report(rows.Count);
                    }
                }

                return (scored, quarantined);
            },
            token);

        // Stage 1: reads and preprocesses records on a pool of threads; collects quarantine rows.
        var preparing = Task.Run(
            async () =>
            {
                var quarantine = new List<QuarantineRow>();
                void Quarantine(string recordId, string blob, string reason)
                {
                    lock (quarantine)
                    {
                        quarantine.Add(new QuarantineRow(lease.RunId, recordId, lease.ShardNo, blob, reason, DateTime.UtcNow));
                    }

                    _queues.AddRows(1);
                }

                try
                {
                    List<RecordInput> records;
                    try
                    {
                        records = decoder.Enumerate(shard).ToList();
                    }
                    catch (EcgFormatException e)
                    {
                        // A container that cannot be opened at all: one quarantine row names the blob and the reason.
                        Quarantine(e.RecordId, shard.Blobs.Count > 0 ? shard.Blobs[0].BlobName : e.RecordId, e.Reason);
                        records = [];
                    }

                    if (lease.Incremental && records.Count > 0)
                    {
                        var before = records.Count;
                        records = await LeaveOutCurrentAsync(records, settings.ModelId, token);
                        skipped = before - records.Count;
                    }

                    _queues.AddRecords(records.Count);
                    await Parallel.ForEachAsync(
                        records,
                        new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, options.PreprocessThreads), CancellationToken = token },
                        async (record, t) =>
                        {
                            _queues.AddRecords(-1);
                            if (PostgresText.Problem(record.RecordId) is { } problem)
                            {
                                // An archive member name Postgres cannot store: quarantined under a printable form of the name.
                                Quarantine(PostgresText.Printable(record.RecordId), PostgresText.Printable(record.SourceBlob), $"record id {problem}");
                                return;
                            }

                            float[] windows;
                            try
                            {
                                windows = preparer.Prepare(record.Load(), settings.PreprocessingProfile, settings.MaxWindows);
                                if (windows.Length == 0 || windows.Length % IEcgScorer.WindowLength != 0)
                                {
                                    throw new EcgFormatException(record.RecordId, $"preprocessing produced {windows.Length} samples, not whole windows");
                                }
                            }
                            catch (EcgFormatException e)
                            {
                                Quarantine(record.RecordId, record.SourceBlob, e.Reason);
                                return;
                            }
                            catch (Exception e) when (e is not OperationCanceledException)
                            {
                                Quarantine(record.RecordId, record.SourceBlob, SafeErrors.Describe(e));
                                return;
                            }

                            _queues.AddWindows(windows.Length / IEcgScorer.WindowLength);
                            await prepared.Writer.WriteAsync(new PreparedRecord(record, windows), t);
                        });
                }
                finally
                {
                    prepared.Writer.TryComplete();
                }

                return quarantine;
            },
            token);

        // Stage 2: batches windows to the model and aggregates per record.
        var scoring = Task.Run(
            async () =>
            {
                var batchSize = Math.Max(1, settings.BatchSize);
                var hidden = scorer.Model.HiddenSize;
                var labels = scorer.Model.LabelCount;
                var useMax = string.Equals(settings.Aggregation, "max", StringComparison.Ordinal);
                var windows = new float[batchSize * IEcgScorer.WindowLength];
                var embeddings = new float[batchSize * hidden];
                var probabilities = new float[batchSize * labels];
                var slots = new List<RecordAccumulator>(batchSize);
                var rows = new List<ScoreRow>();

                async Task FlushBatchAsync(bool final)
                {
                    if (slots.Count > 0)
                    {
                        var n = slots.Count;
                        var started = Stopwatch.GetTimestamp();
                        scorer.Score(windows.AsSpan(0, n * IEcgScorer.WindowLength), n, embeddings.AsSpan(0, n * hidden), probabilities.AsSpan(0, n * labels));
                        metrics.RecordBatch(workerId, settings.ModelId, Stopwatch.GetElapsedTime(started));
                        metrics.AddWindowsScored(lease.RunId, workerId, settings.ModelId, n);
                        _queues.AddWindows(-n);
                        for (var i = 0; i < n; i++)
                        {
                            if (slots[i].Add(embeddings.AsSpan(i * hidden, hidden), probabilities.AsSpan(i * labels, labels)))
                            {
                                rows.Add(slots[i].ToRow(settings.ModelId, lease.RunId));
                                _queues.AddRows(1);
                            }
                        }

                        slots.Clear();
                    }

                    if (rows.Count > 0 && (final || rows.Count >= options.WriteBatchRows))
                    {
                        await rowsOut.Writer.WriteAsync(rows, token);
                        rows = [];
                    }
                }

                await foreach (var record in prepared.Reader.ReadAllAsync(token))
                {
                    var count = record.Windows.Length / IEcgScorer.WindowLength;
                    var accumulator = new RecordAccumulator(record.Input, count, hidden, labels, useMax);
                    for (var w = 0; w < count; w++)
                    {
                        record.Windows.AsSpan(w * IEcgScorer.WindowLength, IEcgScorer.WindowLength)
                            .CopyTo(windows.AsSpan(slots.Count * IEcgScorer.WindowLength));
                        slots.Add(accumulator);
                        if (slots.Count == batchSize)
                        {
                            await FlushBatchAsync(final: false);
                        }
                    }
                }

                await FlushBatchAsync(final: true);
            },
            token);

        try
        {
            await scoring;
            var quarantineRows = await preparing;
            if (quarantineRows.Count > 0)
            {
                await rowsOut.Writer.WriteAsync(quarantineRows, token);
            }

            rowsOut.Writer.TryComplete();
            var (done, quarantinedCount) = await writing;
            return (done, quarantinedCount, skipped);
        }
        catch
        {
            // One stage failed or the shard was stopped: stop the others, wait for them, report the first failure.
            await stages.CancelAsync();
            rowsOut.Writer.TryComplete();
            prepared.Writer.TryComplete();
            try
            {
                await Task.WhenAll(scoring, preparing, writing);
            }
            catch (Exception)
            {
                // Already failing; the original exception is rethrown below.
            }

            throw;
        }
        finally
        {
            _queues.ClearShard();
        }
    }

    /// <summary>The records whose stored score for the model is not from their source blob's current version (ETag).</summary>
    private async Task<List<RecordInput>> LeaveOutCurrentAsync(List<RecordInput> records, string modelId, CancellationToken cancellationToken)
    {
        var sources = records.Select(r => r.SourceBlob).Distinct(StringComparer.Ordinal).ToList();
        var scored = await _currentScores.ScoredRecordsAsync(modelId, sources, cancellationToken);
        return records
            .Where(r => !(r.SourceETag.Length > 0
                && scored.TryGetValue(r.RecordId, out var stored)
                && stored.SourceBlob == r.SourceBlob
                && stored.SourceETag == r.SourceETag))
            .ToList();
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "{Worker}: leased run {RunId} shard {ShardNo} attempt {LeaseId}")]
    private static partial void LogLeased(ILogger logger, string worker, Guid runId, int shardNo, int leaseId);

    [LoggerMessage(Level = LogLevel.Information, Message = "{Worker}: run {RunId} shard {ShardNo} done: {Done} scored, {Quarantined} quarantined, {Skipped} left out as current")]
    private static partial void LogShardDone(ILogger logger, string worker, Guid runId, int shardNo, int done, int quarantined, int skipped);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Worker}: run {RunId} shard {ShardNo} failed")]
    private static partial void LogShardFailed(ILogger logger, Exception e, string worker, Guid runId, int shardNo);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Worker}: lease of run {RunId} shard {ShardNo} lost; stopped working on it")]
    private static partial void LogLeaseLost(ILogger logger, string worker, Guid runId, int shardNo);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Worker}: error while asking for work (no shard leased)")]
    private static partial void LogFetchFailed(ILogger logger, Exception e, string worker);

    private sealed record PreparedRecord(RecordInput Input, float[] Windows);

    /// <summary>Sums (or takes the maximum of) one record's window outputs until all its windows are scored.</summary>
    private sealed class RecordAccumulator(RecordInput input, int windows, int hidden, int labels, bool useMax)
    {
        private readonly float[] _embedding = new float[hidden];
        private readonly float[] _probabilities = new float[labels];
        private int _seen;

        /// <summary>Adds one window's outputs; true when it was the record's last window.</summary>
        public bool Add(ReadOnlySpan<float> embedding, ReadOnlySpan<float> probabilities)
        {
            for (var i = 0; i < embedding.Length; i++)
            {
                _embedding[i] += embedding[i];
            }

            for (var i = 0; i < probabilities.Length; i++)
            {
                _probabilities[i] = !useMax ? _probabilities[i] + probabilities[i]
                    : _seen == 0 ? probabilities[i]
                    : Math.Max(_probabilities[i], probabilities[i]);
            }

            return ++_seen == windows;
        }

        public ScoreRow ToRow(string modelId, Guid runId)
        {
            var scale = 1f / windows;
            for (var i = 0; i < _embedding.Length; i++)
            {
                _embedding[i] *= scale;
            }

            if (!useMax)
            {
                for (var i = 0; i < _probabilities.Length; i++)
                {
                    _probabilities[i] *= scale;
                }
            }

            return new ScoreRow(modelId, input.RecordId, runId, _probabilities, _embedding, windows, input.SourceBlob, input.SourceETag, DateTime.UtcNow);
        }
    }
}
