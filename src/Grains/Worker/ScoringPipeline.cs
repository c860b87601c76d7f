using System.Diagnostics;
using System.Threading.Channels;
using HubertEcg.Grains;
using HubertEcg.Inference.Ecg;
using HubertEcg.Inference.Model;
using Microsoft.Extensions.Logging;

namespace HubertEcg.Worker;

/// <summary>
/// The stages a worker's downloaded shards flow through, running for as long as the worker runs, so that the model
/// sees one continuous stream of windows instead of one shard at a time:
/// <list type="number">
/// <item>prepare: reads and preprocesses the records of each shard in turn on a pool of threads, collecting
/// quarantine rows, then marks the shard's end; when no further shard is downloaded yet it asks for a flush;</item>
/// <item>batch: fills batches of windows across shard boundaries (a batch waits for the next shard's windows rather
/// than going to the model half empty) and sends a partial batch only on a flush, or when the next shard needs
/// another model or batch size;</item>
/// <item>score: runs the model on whole batches (<see cref="WorkerOptions.ConcurrentBatches"/> at a time, each
/// caller on a thread of its own) and aggregates window outputs per record;</item>
/// <item>write: writes score rows in batches, then a shard's quarantine rows, and reports the shard done.</item>
/// </list>
/// A shard is finished once its end was seen and every one of its records is aggregated; a shard whose lease is
/// lost, or that fails (model mismatch, a write that keeps failing, a model error), is dropped from the stream and
/// its lease released with the reason, without stopping the other shards. Model calls, writes, records, windows and
/// rows waiting in each stage are reported to <see cref="ScoringMetrics"/>; in an incremental run, a shard's records
/// whose stored score came from the same source blob and ETag are left out before preparation.
/// </summary>
internal sealed partial class ScoringPipeline(
    string workerId,
    WorkerDevice device,
    WorkerPorts ports,
    WorkerOptions options,
    ScoringMetrics.WorkerQueues queues,
    ILogger logger) : IDisposable
{
    private readonly ScoringMetrics _metrics = ports.Metrics;

    /// <summary>The logger scope of one shard's work: its run, shard number and worker.</summary>
    public static readonly Func<ILogger, Guid, int, string, IDisposable?> ShardScope =
        LoggerMessage.DefineScope<Guid, int, string>("run {RunId} shard {ShardNo} worker {Worker}");

    private readonly Channel<object> _prepared = Channel.CreateBounded<object>(new BoundedChannelOptions(64) { SingleReader = true });
    private readonly Channel<Batch> _batches = Channel.CreateBounded<Batch>(new BoundedChannelOptions(1) { SingleWriter = true });
    private readonly Channel<Batch> _free = Channel.CreateUnbounded<Batch>();
    private readonly Channel<WriteItem> _writes = Channel.CreateBounded<WriteItem>(new BoundedChannelOptions(4) { SingleReader = true });

    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, Task<IEcgScorer>> _opening = new(StringComparer.Ordinal);

    // Shard bookkeeping (records open per shard, rows not yet sent) and the order of write items: a shard's last
    // write item must follow its rows, whichever model caller finished them.
    private readonly SemaphoreSlim _books = new(1, 1);

    /// <summary>
    /// Runs the stages over the shards read from <paramref name="shards"/> until it completes or
    /// <paramref name="stoppingToken"/> is cancelled. <paramref name="finished"/> is called once for each shard that
    /// leaves the pipeline (done, failed or lost), after its lease was disposed; shards still inside when the worker
    /// stops are not passed to it (the caller hands them back).
    /// </summary>
    public async Task RunAsync(ChannelReader<HeldLease> shards, Action<HeldLease> finished, CancellationToken stoppingToken)
    {
        using var failing = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
        var token = failing.Token;
        var callers = options.EffectiveConcurrentBatches(device);
        for (var i = 0; i <= callers; i++)
        {
            _free.Writer.TryWrite(new Batch());
        }

        var running = callers;
        var stages = new List<Task>
        {
            Task.Run(() => PrepareAsync(shards, token), CancellationToken.None),
            Task.Run(() => BatchAsync(token), CancellationToken.None),
            Task.Run(() => WriteAsync(finished, token), CancellationToken.None),
        };
        for (var i = 0; i < callers; i++)
        {
            // Model calls block for as long as a batch takes: each caller has a thread of its own, so that the thread
            // pool stays free for reading, preprocessing, writes and Orleans.
            stages.Add(Task.Factory.StartNew(
                () =>
                {
                    try
                    {
                        ScoreLoop(token);
                    }
                    finally
                    {
                        if (Interlocked.Decrement(ref running) == 0)
                        {
                            _writes.Writer.TryComplete();
                        }
                    }
                },
                CancellationToken.None,
                TaskCreationOptions.LongRunning,
                TaskScheduler.Default));
        }

        // A stage that fails (a defect, not a shard's error) stops the others; the first failure is reported.
        var pending = stages.ToList();
        Exception? failure = null;
        while (pending.Count > 0)
        {
            var done = await Task.WhenAny(pending);
            pending.Remove(done);
            if (done.IsFaulted && failure is null)
            {
                failure = done.Exception!.InnerException;
                await failing.CancelAsync();
            }
        }

        if (failure is not null)
        {
            throw new InvalidOperationException($"worker {workerId}: scoring pipeline failed: {failure.Message}", failure);
        }
    }

    public void Dispose() => _books.Dispose();

    /// <summary>
    /// The scorer of <paramref name="modelPath"/> on this worker's device, opened on a thread of its own (loading a
    /// model takes seconds): the worker calls this as soon as it holds a lease, so that the model loads while the
    /// shard downloads. A model that fails to open is tried again by the next shard.
    /// </summary>
    public Task<IEcgScorer> OpenScorerAsync(string modelPath)
    {
        var opening = _opening.GetOrAdd(
            modelPath,
            path => Task.Factory.StartNew(() => ports.Scorers.Get(path, device), CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default));
        if (opening.IsFaulted)
        {
            _opening.TryRemove(new KeyValuePair<string, Task<IEcgScorer>>(modelPath, opening));
        }

        return opening;
    }

    private static bool IsStop(Exception e, CancellationToken token) => e is OperationCanceledException && token.IsCancellationRequested;

    // Stage 1: records of one shard after another, each shard closed by its end marker.
    private async Task PrepareAsync(ChannelReader<HeldLease> shards, CancellationToken token)
    {
        try
        {
            await foreach (var held in shards.ReadAllAsync(token))
            {
                queues.AddShards(-1);
                var work = new ShardWork(held, queues, token);
                using (ShardScope(logger, held.Lease.RunId, held.Lease.ShardNo, workerId))
                {
                    await PrepareShardAsync(work, token);
                }

                await _prepared.Writer.WriteAsync(new ShardEnd(work), token);
                if (!shards.TryPeek(out _))
                {
                    // Nothing more to read right now: the model must not wait for windows that may be long in coming.
                    await _prepared.Writer.WriteAsync(Flush.Instance, token);
                }
            }
        }
        catch (Exception e) when (IsStop(e, token))
        {
            // The worker is stopping.
        }
        finally
        {
            _prepared.Writer.TryComplete();
        }
    }

    private async Task PrepareShardAsync(ShardWork work, CancellationToken token)
    {
        var lease = work.Lease;
        var settings = lease.Settings;
        var shard = work.Held.Shard!;
        try
        {
            var scorer = await OpenScorerAsync(settings.ModelPath);
            if (!string.Equals(scorer.Model.ModelId, settings.ModelId, StringComparison.Ordinal))
            {
                work.Fail($"model file {settings.ModelPath} has model id {scorer.Model.ModelId}; the run expects {settings.ModelId}", permanent: true);
                return;
            }

            work.Scorer = scorer;
            List<RecordInput> records;
            try
            {
                records = ports.Decoder.Enumerate(shard).ToList();
            }
            catch (EcgFormatException e)
            {
                // A container that cannot be opened at all: one quarantine row names the blob and the reason.
                work.Quarantine(e.RecordId, shard.Blobs.Count > 0 ? shard.Blobs[0].BlobName : e.RecordId, e.Reason);
                records = [];
            }

            if (lease.Incremental && records.Count > 0)
            {
                var before = records.Count;
                records = await LeaveOutCurrentAsync(records, settings.ModelId, work.Token);
                work.Skipped = before - records.Count;
            }

            await PrepareRecordsAsync(work, records);
        }
        catch (OperationCanceledException) when (work.Token.IsCancellationRequested && !token.IsCancellationRequested)
        {
            // The lease was lost or the run cancelled: the writer notes it when the shard leaves the pipeline.
        }
        catch (Exception e) when (!IsStop(e, token))
        {
            work.Fail(SafeErrors.Describe(e), permanent: false);
        }
    }

    /// <summary>Reads and preprocesses the records on a pool of threads; the records-waiting gauge counts those not started.</summary>
    private async Task PrepareRecordsAsync(ShardWork work, List<RecordInput> records)
    {
        var settings = work.Lease.Settings;
        var started = 0;
        queues.AddRecords(records.Count);
        try
        {
            await Parallel.ForEachAsync(
                records,
                new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, options.PreprocessThreads), CancellationToken = work.Token },
                async (record, t) =>
                {
                    Interlocked.Increment(ref started);
                    queues.AddRecords(-1);
                    if (PostgresText.KeyProblem(record.RecordId) is { } problem)
                    {
                        // A name Postgres cannot store or index (an archive member's, or a blob name too long in UTF-8):
                        // quarantined under a storable stand-in for the name (ShardWork.Quarantine).
                        work.Quarantine(record.RecordId, PostgresText.Printable(record.SourceBlob), $"record id {problem}");
                        return;
                    }

                    float[] windows;
                    try
                    {
                        windows = ports.Preparer.Prepare(record.Load(), settings.PreprocessingProfile, settings.MaxWindows);
                        if (windows.Length == 0 || windows.Length % IEcgScorer.WindowLength != 0)
                        {
                            throw new EcgFormatException(record.RecordId, $"preprocessing produced {windows.Length} samples, not whole windows");
                        }
                    }
                    catch (EcgFormatException e)
                    {
                        work.Quarantine(record.RecordId, record.SourceBlob, e.Reason);
                        return;
                    }
                    catch (Exception e) when (e is not OperationCanceledException)
                    {
                        work.Quarantine(record.RecordId, record.SourceBlob, SafeErrors.Describe(e));
                        return;
                    }

                    var count = windows.Length / IEcgScorer.WindowLength;
                    queues.AddWindows(count);
                    try
                    {
                        await _prepared.Writer.WriteAsync(new PreparedRecord(work, record, windows), t);
                    }
                    catch
                    {
                        queues.AddWindows(-count);
                        throw;
                    }
                });
        }
        finally
        {
            // Records never started (the shard was stopped) leave the queue too.
            queues.AddRecords(-(records.Count - Volatile.Read(ref started)));
        }
    }

    /// <summary>The records whose stored score for the model is not from their source blob's current version (ETag).</summary>
    private async Task<List<RecordInput>> LeaveOutCurrentAsync(List<RecordInput> records, string modelId, CancellationToken cancellationToken)
    {
        var sources = records.Select(r => r.SourceBlob).Distinct(StringComparer.Ordinal).ToList();
        var scored = await ports.ScoreIndex.ScoredRecordsAsync(modelId, sources, cancellationToken);
        return records
            .Where(r => !(r.SourceETag.Length > 0
                && scored.TryGetValue(r.RecordId, out var stored)
                && stored.SourceBlob == r.SourceBlob
                && stored.SourceETag == r.SourceETag))
            .ToList();
    }

    // Stage 2: windows into batches, across shard boundaries.
    private async Task BatchAsync(CancellationToken token)
    {
        Batch? open = null;
        try
        {
            await foreach (var item in _prepared.Reader.ReadAllAsync(token))
            {
                switch (item)
                {
                    case PreparedRecord record when !record.Work.Dropped:
                        var work = record.Work;
                        var scorer = work.Scorer!;
                        var size = Math.Max(1, work.Lease.Settings.BatchSize);
                        if (open is not null && (!ReferenceEquals(open.Scorer, scorer) || open.Capacity != size))
                        {
                            await _batches.Writer.WriteAsync(open, token);
                            open = null;
                        }

                        var count = record.Windows.Length / IEcgScorer.WindowLength;
                        var accumulator = new RecordAccumulator(work, record.Input, count, scorer.Model.HiddenSize, scorer.Model.LabelCount);
                        await _books.WaitAsync(token);
                        work.Open++;
                        _books.Release();
                        for (var w = 0; w < count; w++)
                        {
                            open ??= (await _free.Reader.ReadAsync(token)).Start(scorer, size);
                            open.Add(record.Windows.AsSpan(w * IEcgScorer.WindowLength, IEcgScorer.WindowLength), accumulator);
                            if (open.Count == open.Capacity)
                            {
                                await _batches.Writer.WriteAsync(open, token);
                                open = null;
                            }
                        }

                        break;
                    case PreparedRecord dropped:
                        queues.AddWindows(-(dropped.Windows.Length / IEcgScorer.WindowLength));
                        break;
                    case ShardEnd end:
                        await _books.WaitAsync(token);
                        try
                        {
                            end.Work.EndSeen = true;
                            if (end.Work.Open == 0)
                            {
                                await EmitAsync(end.Work, last: true, token);
                            }
                        }
                        finally
                        {
                            _books.Release();
                        }

                        break;
                    case Flush when open is not null:
                        await _batches.Writer.WriteAsync(open, token);
                        open = null;
                        break;
                }
            }

            if (open is not null)
            {
                await _batches.Writer.WriteAsync(open, token);
            }
        }
        catch (Exception e) when (IsStop(e, token))
        {
            // The worker is stopping.
        }
        finally
        {
            _batches.Writer.TryComplete();
        }
    }

    // Stage 3: the model, and the per-record aggregation of its outputs; runs on a dedicated thread.
    private void ScoreLoop(CancellationToken token)
    {
        float[] embeddings = [], probabilities = [];
        try
        {
            while (_batches.Reader.WaitToReadAsync(token).AsTask().GetAwaiter().GetResult())
            {
                while (_batches.Reader.TryRead(out var batch))
                {
                    Score(batch, ref embeddings, ref probabilities);
                    _books.Wait(token);
                    try
                    {
                        Aggregate(batch, embeddings, probabilities, token);
                    }
                    finally
                    {
                        _books.Release();
                    }

                    batch.Clear();
                    _free.Writer.TryWrite(batch);
                }
            }
        }
        catch (Exception e) when (IsStop(e, token))
        {
            // The worker is stopping.
        }
    }

    private void Score(Batch batch, ref float[] embeddings, ref float[] probabilities)
    {
        var scorer = batch.Scorer!;
        var n = batch.Count;
        var hidden = scorer.Model.HiddenSize;
        var labels = scorer.Model.LabelCount;
        if (embeddings.Length < n * hidden || probabilities.Length < n * labels)
        {
            embeddings = new float[batch.Capacity * hidden];
            probabilities = new float[batch.Capacity * labels];
        }

        var started = Stopwatch.GetTimestamp();
        try
        {
            scorer.Score(batch.Windows.AsSpan(0, n * IEcgScorer.WindowLength), n, embeddings.AsSpan(0, n * hidden), probabilities.AsSpan(0, n * labels));
            batch.Error = null;
            _metrics.RecordBatch(workerId, scorer.Model.ModelId, Stopwatch.GetElapsedTime(started));

            _metrics.AddWindowsScored(workerId, scorer.Model.ModelId, n);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            batch.Error = $"scoring a batch failed: {SafeErrors.Describe(e)}";
        }
        finally
        {
            queues.AddWindows(-n);
        }
    }

    // Holding _books: adds the batch's outputs to its records; a record's last window makes its row, a shard's last
    // record sends its rows and end to the writer.
    private void Aggregate(Batch batch, float[] embeddings, float[] probabilities, CancellationToken token)
    {
        var hidden = batch.Scorer!.Model.HiddenSize;
        var labels = batch.Scorer.Model.LabelCount;
        for (var i = 0; i < batch.Count; i++)
        {
            var accumulator = batch.Slots[i];
            var work = accumulator.Work;
            if (batch.Error is { } error)
            {
                work.Fail(error, permanent: false);
            }

            var complete = work.Dropped
                ? accumulator.Skip()
                : accumulator.Add(embeddings.AsSpan(i * hidden, hidden), probabilities.AsSpan(i * labels, labels));
            if (!complete)
            {
                continue;
            }

            work.Open--;
            if (!work.Dropped)
            {
                work.Rows.Add(accumulator.ToRow());
                queues.AddRows(1);
            }

            if (work.EndSeen && work.Open == 0)
            {
                EmitAsync(work, last: true, token).GetAwaiter().GetResult();
            }
            else if (work.Rows.Count >= options.WriteBatchRows)
            {
                EmitAsync(work, last: false, token).GetAwaiter().GetResult();
            }
        }
    }

    // Called holding _books: hands the shard's rows (and, when last, its end) to the writer, in order.
    private async Task EmitAsync(ShardWork work, bool last, CancellationToken token)
    {
        var rows = work.Rows;
        work.Rows = [];
        if (work.Dropped)
        {
            queues.AddRows(-rows.Count);
            rows = [];
        }

        await _writes.Writer.WriteAsync(new WriteItem(work, rows, last), token);
    }

    // Stage 4: score rows, then each finished shard's quarantine rows and its report to the coordinator.
    private async Task WriteAsync(Action<HeldLease> finished, CancellationToken token)
    {
        try
        {
            await foreach (var item in _writes.Reader.ReadAllAsync(token))
            {
                var work = item.Work;
                try
                {
                    if (item.Rows.Count > 0 && !work.Dropped)
                    {
                        await WriteRowsAsync(work, item.Rows, token);
                    }
                }
                finally
                {
                    queues.AddRows(-item.Rows.Count);
                }

                if (item.Last)
                {
                    await FinishAsync(work, token);
                    finished(work.Held);
                }
            }
        }
        catch (Exception e) when (IsStop(e, token))
        {
            // The worker is stopping.
        }
    }

    private async Task WriteRowsAsync(ShardWork work, List<ScoreRow> rows, CancellationToken token)
    {
        try
        {
            var started = Stopwatch.GetTimestamp();
            await ports.Results.WriteScoresAsync(rows, workerId, work.Token);
            _metrics.RecordWrite(workerId, "scores", Stopwatch.GetElapsedTime(started));
            _metrics.AddRecordsScored(workerId, work.Lease.Settings.ModelId, rows.Count);
            work.Scored += rows.Count;
            work.Held.Report(rows.Count);
        }
        catch (OperationCanceledException) when (work.Token.IsCancellationRequested && !token.IsCancellationRequested)
        {
            // The lease was lost mid-write: the shard is dropped.
        }
        catch (Exception e) when (!IsStop(e, token))
        {
            work.Fail(SafeErrors.Describe(e), permanent: false);
        }
    }

    private async Task FinishAsync(ShardWork work, CancellationToken token)
    {
        var lease = work.Lease;
        var quarantine = work.TakeQuarantine();
        if (!work.Dropped && quarantine.Count > 0)
        {
            try
            {
                var started = Stopwatch.GetTimestamp();
                await ports.Results.WriteQuarantineAsync(quarantine, workerId, work.Token);
                _metrics.RecordWrite(workerId, "quarantine", Stopwatch.GetElapsedTime(started));
                _metrics.AddRecordsQuarantined(workerId, quarantine.Count);
                work.Held.Report(quarantine.Count);
            }
            catch (OperationCanceledException) when (work.Token.IsCancellationRequested && !token.IsCancellationRequested)
            {
                // Lost mid-write.
            }
            catch (Exception e) when (!IsStop(e, token))
            {
                work.Fail(SafeErrors.Describe(e), permanent: false);
            }
        }

        queues.AddRows(-quarantine.Count);
        try
        {
            if (work.Error is { } error)
            {
                LogShardFailedWith(logger, workerId, lease.RunId, lease.ShardNo, error);
                await work.Held.TryReleaseAsync(error, work.Permanent);
            }
            else if (work.Held.Stopped.IsCancellationRequested)
            {
                LogLeaseLost(logger, workerId, lease.RunId, lease.ShardNo);
            }
            else
            {
                if (lease.Kind == ShardKind.Container && work.Held.Shard is { Blobs: [var container] })
                {
                    // Every record of the container is dealt with: an incremental run may now leave this version of it
                    // out whole. Without the row (Postgres failing past the retries) the container is only read again.
                    try
                    {
                        await ports.ContainerPasses.RecordContainerPassAsync(
                            lease.Settings.ModelId, container.BlobName, container.ETag, lease.RunId, work.Scored + work.Skipped, quarantine.Count, work.Token);
                    }
                    catch (Exception e) when (!IsStop(e, token))
                    {
                        LogPassNotRecorded(logger, SafeErrors.ForLog(e), workerId, lease.RunId, lease.ShardNo);
                    }
                }

                await work.Held.CompleteAsync(work.Scored, quarantine.Count, work.Skipped);
                LogShardDone(logger, workerId, lease.RunId, lease.ShardNo, work.Scored, quarantine.Count, work.Skipped);
            }
        }
        catch (Exception e) when (!IsStop(e, token))
        {
            // The coordinator could not be told (its silo died); the lease expires and the shard is redone.
            LogReportFailed(logger, SafeErrors.ForLog(e), workerId, lease.RunId, lease.ShardNo);
        }

        work.Dispose();
        await work.Held.DisposeAsync();
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "{Worker}: run {RunId} shard {ShardNo} done: {Done} scored, {Quarantined} quarantined, {Skipped} left out as current")]
    private static partial void LogShardDone(ILogger logger, string worker, Guid runId, int shardNo, int done, int quarantined, int skipped);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Worker}: run {RunId} shard {ShardNo} failed: {Error}")]
    private static partial void LogShardFailedWith(ILogger logger, string worker, Guid runId, int shardNo, string error);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Worker}: run {RunId} shard {ShardNo} finished, but the coordinator could not be told")]
    private static partial void LogReportFailed(ILogger logger, Exception e, string worker, Guid runId, int shardNo);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Worker}: run {RunId} shard {ShardNo}: the container's pass could not be recorded; incremental runs will read it again")]
    private static partial void LogPassNotRecorded(ILogger logger, Exception e, string worker, Guid runId, int shardNo);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Worker}: lease of run {RunId} shard {ShardNo} lost; stopped working on it")]
    private static partial void LogLeaseLost(ILogger logger, string worker, Guid runId, int shardNo);

    /// <summary>Asks the batch stage to send its partial batch.</summary>
    private sealed class Flush
    {
        public static readonly Flush Instance = new();
    }

    private sealed record PreparedRecord(ShardWork Work, RecordInput Input, float[] Windows);

    private sealed record ShardEnd(ShardWork Work);

    private sealed record WriteItem(ShardWork Work, List<ScoreRow> Rows, bool Last);

    /// <summary>One leased shard inside the pipeline.</summary>
    private sealed class ShardWork : IDisposable
    {
        private readonly CancellationTokenSource _token;
        private readonly List<QuarantineRow> _quarantine = [];

        private readonly ScoringMetrics.WorkerQueues _queues;

        public ShardWork(HeldLease held, ScoringMetrics.WorkerQueues queues, CancellationToken stoppingToken)
        {
            Held = held;
            _queues = queues;
            _token = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken, held.Stopped);
        }

        public HeldLease Held { get; }

        public ShardLease Lease => Held.Lease;

        /// <summary>Cancelled when the worker stops, the lease is lost or the run is cancelled.</summary>
        public CancellationToken Token => _token.Token;

        public IEcgScorer? Scorer { get; set; }

        /// <summary>The first error that failed the shard; its lease is released with it.</summary>
        public string? Error { get; private set; }

        public bool Permanent { get; private set; }

        /// <summary>Failed, or its lease lost: its remaining records are not scored and nothing more is written.</summary>
        public bool Dropped => Error is not null || Held.Stopped.IsCancellationRequested;

        // Batch and score stages, under the pipeline's bookkeeping lock.
        public int Open { get; set; }

        public bool EndSeen { get; set; }

        public List<ScoreRow> Rows { get; set; } = [];

        // Write stage.
        public int Scored { get; set; }

        /// <summary>Records left out as current (incremental runs).</summary>
        public int Skipped { get; set; }

        public void Fail(string error, bool permanent)
        {
            lock (_quarantine)
            {
                if (Error is null)
                {
                    Error = error;
                    Permanent = permanent;
                }
            }
        }

        /// <summary>
        /// Adds a quarantine row; a record id that cannot be a key (<see cref="PostgresText.KeyProblem"/>) is stored as
        /// its <see cref="PostgresText.StorableKey"/>.
        /// </summary>
        public void Quarantine(string recordId, string blob, string reason)
        {
            var row = new QuarantineRow(Lease.RunId, PostgresText.StorableKey(recordId), Lease.ShardNo, blob, reason, DateTime.UtcNow);
            lock (_quarantine)
            {
                _quarantine.Add(row);
            }

            _queues.AddRows(1);
        }

        public List<QuarantineRow> TakeQuarantine()
        {
            lock (_quarantine)
            {
                return [.. _quarantine];
            }
        }

        public void Dispose() => _token.Dispose();
    }

    /// <summary>Windows on their way to the model, each with the record it belongs to; reused.</summary>
    private sealed class Batch
    {
        public float[] Windows { get; private set; } = [];

        public List<RecordAccumulator> Slots { get; } = [];

        public IEcgScorer? Scorer { get; private set; }

        public int Capacity { get; private set; }

        public int Count => Slots.Count;

        /// <summary>Why the model failed on this batch; null when it scored.</summary>
        public string? Error { get; set; }

        public Batch Start(IEcgScorer scorer, int capacity)
        {
            Scorer = scorer;
            Capacity = capacity;
            if (Windows.Length < capacity * IEcgScorer.WindowLength)
            {
                Windows = new float[capacity * IEcgScorer.WindowLength];
            }

            return this;
        }

        public void Add(ReadOnlySpan<float> window, RecordAccumulator accumulator)
        {
            window.CopyTo(Windows.AsSpan(Slots.Count * IEcgScorer.WindowLength));
            Slots.Add(accumulator);
        }

        public void Clear()
        {
            Slots.Clear();
            Scorer = null;
        }
    }

    /// <summary>Sums (or takes the maximum of) one record's window outputs until all its windows are scored.</summary>
    private sealed class RecordAccumulator(ShardWork work, RecordInput input, int windows, int hidden, int labels)
    {
        private readonly float[] _embedding = new float[hidden];
        private readonly float[] _probabilities = new float[labels];
        private readonly bool _useMax = work.Lease.Settings.Aggregation == Aggregation.Max;
        private int _seen;

        public ShardWork Work => work;

        /// <summary>Adds one window's outputs; true when it was the record's last window.</summary>
        public bool Add(ReadOnlySpan<float> embedding, ReadOnlySpan<float> probabilities)
        {
            for (var i = 0; i < embedding.Length; i++)
            {
                _embedding[i] += embedding[i];
            }

            for (var i = 0; i < probabilities.Length; i++)
            {
                _probabilities[i] = !_useMax ? _probabilities[i] + probabilities[i]
                    : _seen == 0 ? probabilities[i]
                    : Math.Max(_probabilities[i], probabilities[i]);
            }

            return ++_seen == windows;
        }

        /// <summary>Counts a window whose outputs are not used (its shard was dropped); true when it was the last.</summary>
        public bool Skip() => ++_seen == windows;

        public ScoreRow ToRow()
        {
            var scale = 1f / windows;
            for (var i = 0; i < _embedding.Length; i++)
            {
                _embedding[i] *= scale;
            }

            if (!_useMax)
            {
                for (var i = 0; i < _probabilities.Length; i++)
                {
                    _probabilities[i] *= scale;
                }
            }

            return new ScoreRow(
                work.Lease.Settings.ModelId, input.RecordId, work.Lease.RunId, _probabilities, _embedding, windows, input.SourceBlob, input.SourceETag, DateTime.UtcNow);
        }
    }
}
