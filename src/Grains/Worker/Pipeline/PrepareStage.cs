using System.Threading.Channels;
using HubertEcg.Grains;
using HubertEcg.Inference.Ecg;
using HubertEcg.Inference.Model;
using Microsoft.Extensions.Logging;

namespace HubertEcg.Worker.Pipeline;

/// <summary>One record's model windows (count x 6000 floats, back to back), on its way from preparation to the batches.</summary>
internal sealed record PreparedRecord(RecordInput Input, float[] Windows)
{
    public int WindowCount => Windows.Length / IEcgScorer.WindowLength;
}

/// <summary>
/// Stage 1: takes the downloaded shards in turn and passes each on as a <see cref="ShardWork"/> whose records it then
/// reads and preprocesses on a pool of threads (<see cref="WorkerOptions.PreprocessThreads"/>) into the shard's own
/// channel, which it completes at the shard's end. Records that cannot be read or preprocessed become quarantine
/// rows; in an incremental run, the records the <see cref="IIncrementalFilter"/> finds current are left out first.
/// A shard whose model does not match the run, or whose records cannot be enumerated, fails.
/// </summary>
internal sealed class PrepareStage(
    string workerId,
    IRecordDecoder decoder,
    IWindowPreparer preparer,
    IIncrementalFilter incremental,
    ScorerCache scorers,
    WorkerOptions options,
    ScoringMetrics.WorkerQueues queues,
    ILogger logger)
{
    public async Task RunAsync(ChannelReader<HeldLease> shards, ChannelWriter<ShardWork> output, CancellationToken token)
    {
        try
        {
            await foreach (var held in shards.ReadAllAsync(token))
            {
                queues.AddShards(-1);
                var work = new ShardWork(held, queues, token);
                try
                {
                    await output.WriteAsync(work, token);
                    using (ScoringPipeline.ShardScope(logger, held.Lease.RunId, held.Lease.ShardNo, workerId))
                    {
                        await PrepareShardAsync(work, token);
                    }

                    // Nothing more to read right now: the model must not wait for windows that may be long in coming.
                    work.FlushAfter = !shards.TryPeek(out _);
                }
                finally
                {
                    work.Records.Writer.TryComplete();
                }
            }
        }
        catch (Exception e) when (ScoringPipeline.IsStop(e, token))
        {
            // The worker is stopping.
        }
        finally
        {
            output.TryComplete();
        }
    }

    private async Task PrepareShardAsync(ShardWork work, CancellationToken token)
    {
        var lease = work.Lease;
        var settings = lease.Settings;
        var shard = work.Held.Shard!;
        try
        {
            IEcgScorer scorer;
            try
            {
                scorer = await scorers.OpenAsync(lease);
            }
            catch (CheckpointFormatException e) when (e.InnerException is null or System.Text.Json.JsonException)
            {
                // The file itself is no usable model (not ONNX, metadata missing or lying about its outputs), whichever
                // silo reads it: no shard of the run can be scored. A file this silo cannot open, or that ONNX Runtime
                // refuses here (it may be this device), stays the shard's fault.
                work.FailRun($"the run's model cannot be used: {SafeErrors.Describe(e)}");
                return;
            }

            if (!string.Equals(scorer.Model.ModelId, settings.ModelId, StringComparison.Ordinal))
            {
                work.Fail($"model {settings.ModelPath} has model id {scorer.Model.ModelId}; the run expects {settings.ModelId}", permanent: true);
                return;
            }

            if (RunSettingsRules.CheckScoring(settings, scorer.Model.HiddenSize, scorer.Model.LabelCount) is { Count: > 0 } problems)
            {
                // Options or model sizes no worker can work with (a run stored without the submit checks): the run
                // fails once with the reason; its records never reach the batches, whose buffers these sizes set.
                work.FailRun(RunSettingsRules.Describe("run options and model", problems));
                return;
            }

            work.Scorer = scorer;
            List<RecordInput> records;
            try
            {
                records = decoder.Enumerate(shard).ToList();
            }
            catch (EcgFormatException e)
            {
                // A container that cannot be opened at all: one quarantine row, keyed by the blob's name (never the
                // local path the reader was given), with the reason.
                var blobName = shard.Blobs.Count > 0 ? shard.Blobs[0].BlobName : e.RecordId;
                work.Quarantine(blobName, blobName, e.Reason);
                records = [];
            }

            records = LeaveOutDuplicates(work, records);
            if (lease.Incremental && records.Count > 0)
            {
                var before = records.Count;
                records = await incremental.LeaveOutCurrentAsync(records, settings.ModelId, work.Token);
                work.Skipped = before - records.Count;
            }

            await PrepareRecordsAsync(work, records);
        }
        catch (OperationCanceledException) when (work.Token.IsCancellationRequested && !token.IsCancellationRequested)
        {
            // The lease was lost or the run cancelled: the writer notes it when the shard leaves the pipeline.
        }
        catch (Exception e) when (!ScoringPipeline.IsStop(e, token))
        {
            work.Fail(e);
        }
    }

    /// <summary>
    /// A record id met again in the same shard (ten exams of one HDF5 file with the same exam id) is one record: the
    /// first is scored, each later one quarantined as a duplicate under the id with <c> (duplicate N)</c> appended, so
    /// that every one of them has its own row and the shard's counts equal its rows.
    /// </summary>
    private static List<RecordInput> LeaveOutDuplicates(ShardWork work, List<RecordInput> records)
    {
        var seen = new Dictionary<string, int>(StringComparer.Ordinal);
        var kept = new List<RecordInput>(records.Count);
        foreach (var record in records)
        {
            if (!seen.TryGetValue(record.RecordId, out var count))
            {
                seen[record.RecordId] = 1;
                kept.Add(record);
                continue;
            }

            seen[record.RecordId] = ++count;
            work.Quarantine(
                $"{record.RecordId} (duplicate {count})",
                record.SourceBlob,
                $"duplicate record id: {count} records of this shard are called {record.RecordId}; only the first is scored");
        }

        return kept;
    }

    /// <summary>Reads and preprocesses the records on a pool of threads; the records-waiting gauge counts those not started.</summary>
    private async Task PrepareRecordsAsync(ShardWork work, List<RecordInput> records)
    {
        var settings = work.Lease.Settings;
        var output = work.Records.Writer;
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
                        windows = preparer.Prepare(record.Load(), settings.PreprocessingProfile, settings.MaxWindows);
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

                    var prepared = new PreparedRecord(record, windows);
                    queues.AddWindows(prepared.WindowCount);
                    try
                    {
                        await output.WriteAsync(prepared, t);
                    }
                    catch
                    {
                        queues.AddWindows(-prepared.WindowCount);
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
}
