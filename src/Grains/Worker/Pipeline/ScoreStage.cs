using System.Diagnostics;
using System.Threading.Channels;
using HubertEcg.Inference.Model;

namespace HubertEcg.Worker.Pipeline;

/// <summary>
/// Stage 3: runs the model on whole batches, <paramref name="callers"/> at a time
/// (<see cref="WorkerOptions.ConcurrentBatches"/>), each caller with a <see cref="ModelThread{T}"/> of its own so that
/// the blocking model call never holds a thread-pool thread; then aggregates the window outputs per record, in one
/// loop on the async side that alone owns the records' sums. A record's last window makes its score row; a shard's
/// rows go to the writer in groups of <see cref="WorkerOptions.WriteBatchRows"/>, and its end once nothing of it is
/// open any more. A batch the model fails on fails every shard that has windows in it. Scored batches go back to the
/// pool (<paramref name="free"/>) once aggregated. With a <paramref name="clock"/>, the aggregation's time is counted as
/// <see cref="PipelineStage.Aggregate"/>.
/// </summary>
internal sealed class ScoreStage(
    string workerId,
    int callers,
    int writeBatchRows,
    ChannelWriter<Batch> free,
    ScoringMetrics metrics,
    ScoringMetrics.WorkerQueues queues,
    StageClock? clock = null)
{
    public async Task RunAsync(ChannelReader<Batch> batches, ChannelWriter<WriteItem> writes, CancellationToken token)
    {
        // Unbounded, but never holds more than the pool's batches.
        var scored = Channel.CreateUnbounded<Batch>(new UnboundedChannelOptions { SingleReader = true });
        using var failing = CancellationTokenSource.CreateLinkedTokenSource(token);
        var aggregating = Task.Run(() => AggregateAsync(scored.Reader, writes, failing), CancellationToken.None);
        try
        {
            await Task.WhenAll(Enumerable.Range(0, callers).Select(i => Task.Run(() => CallAsync(i, batches, scored.Writer, failing), CancellationToken.None)));
        }
        finally
        {
            scored.Writer.TryComplete();
            await aggregating;
        }
    }

    private async Task CallAsync(int caller, ChannelReader<Batch> batches, ChannelWriter<Batch> scored, CancellationTokenSource failing)
    {
        var token = failing.Token;
        using var thread = new ModelThread<Batch>($"hubert-ecg model caller {caller}", Score);
        try
        {
            await foreach (var batch in batches.ReadAllAsync(token))
            {
                await thread.RunAsync(batch);
                scored.TryWrite(batch);
            }
        }
        catch (Exception e) when (ScoringPipeline.IsStop(e, token))
        {
            // The worker is stopping.
        }
        catch
        {
            // A defect: the other callers stop too, and the pipeline reports it.
            await failing.CancelAsync();
            throw;
        }
    }

    // On a model thread.
    private void Score(Batch batch)
    {
        var scorer = batch.Scorer!;
        var n = batch.Count;
        var hidden = scorer.Model.HiddenSize;
        var labels = scorer.Model.LabelCount;
        batch.EnsureOutputs(hidden, labels);
        var started = Stopwatch.GetTimestamp();
        try
        {
            scorer.Score(
                batch.Windows.AsSpan(0, n * IEcgScorer.WindowLength), n, batch.Embeddings.AsSpan(0, n * hidden), batch.Probabilities.AsSpan(0, n * labels));
            batch.Error = null;
            metrics.RecordBatch(workerId, scorer.Model.ModelId, Stopwatch.GetElapsedTime(started));
            metrics.AddWindowsScored(workerId, scorer.Model.ModelId, n);
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

    private async Task AggregateAsync(ChannelReader<Batch> scored, ChannelWriter<WriteItem> writes, CancellationTokenSource failing)
    {
        var token = failing.Token;
        try
        {
            await foreach (var batch in scored.ReadAllAsync(token))
            {
                try
                {
                    await AggregateAsync(batch, writes, token);
                }
                finally
                {
                    batch.Clear();
                    free.TryWrite(batch);
                }
            }
        }
        catch (Exception e) when (ScoringPipeline.IsStop(e, token))
        {
            // The worker is stopping.
        }
        catch
        {
            // A defect: the callers stop too (no batch would come back to the pool), and the pipeline reports it.
            await failing.CancelAsync();
            throw;
        }
    }

    // Adds the batch's outputs to its records; a record's last window makes its row. A shard's full group of rows goes
    // to the writer before its record is closed, so that they precede the shard's end, whichever stage then closes it.
    private async Task AggregateAsync(Batch batch, ChannelWriter<WriteItem> writes, CancellationToken token)
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

            var started = clock is null ? default : StageClock.Start();
            var complete = work.Dropped
                ? accumulator.Skip()
                : accumulator.Add(batch.Embeddings.AsSpan(i * hidden, hidden), batch.Probabilities.AsSpan(i * labels, labels));
            if (!complete)
            {
                clock?.Stop(PipelineStage.Aggregate, started, 0);
                continue;
            }

            if (!work.Dropped)
            {
                work.Rows.Add(accumulator.ToRow());
                clock?.Stop(PipelineStage.Aggregate, started, 1);
                queues.AddRows(1);
                if (work.Rows.Count >= writeBatchRows)
                {
                    await writes.WriteAsync(work.TakeWrite(last: false), token);
                }
            }

            if (work.CloseRecord())
            {
                await writes.WriteAsync(work.TakeWrite(last: true), token);
            }
        }
    }
}
