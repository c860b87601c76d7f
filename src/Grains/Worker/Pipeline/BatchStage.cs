using System.Threading.Channels;
using HubertEcg.Inference.Model;

namespace HubertEcg.Worker.Pipeline;

/// <summary>
/// Stage 2: fills batches of windows across shard boundaries: a batch waits for the next shard's windows rather than
/// going to the model half empty, and a partial batch is sent only when no further shard was downloaded when a shard
/// ended (<see cref="ShardWork.FlushAfter"/>), when the next shard needs another model or batch size, or when the
/// shards run out. Batches come from a pool of reusable ones (<paramref name="free"/>), which bounds the windows in
/// flight. Records of a dropped shard are let go. At each shard's end it closes the shard's end count
/// (<see cref="ShardWork.CloseEnd"/>); if that was the last thing open, it hands the shard's end to the writer itself.
/// With a <paramref name="clock"/>, the time spent copying windows into batches is counted as <see cref="PipelineStage.Batch"/>.
/// </summary>
internal sealed class BatchStage(ChannelReader<Batch> free, ScoringMetrics.WorkerQueues queues, StageClock? clock = null)
{
    public async Task RunAsync(ChannelReader<ShardWork> shards, ChannelWriter<Batch> output, ChannelWriter<WriteItem> writes, CancellationToken token)
    {
        Batch? open = null;
        try
        {
            await foreach (var work in shards.ReadAllAsync(token))
            {
                await foreach (var record in work.Records.Reader.ReadAllAsync(token))
                {
                    if (work.Dropped)
                    {
                        queues.AddWindows(-record.WindowCount);
                        continue;
                    }

                    var scorer = work.Scorer!;
                    var size = Math.Max(1, work.Lease.Settings.BatchSize);
                    if (open is not null && (!ReferenceEquals(open.Scorer, scorer) || open.Capacity != size))
                    {
                        await output.WriteAsync(open, token);
                        open = null;
                    }

                    var count = record.WindowCount;
                    var accumulator = new RecordAccumulator(work, record.Input, count, scorer.Model.HiddenSize, scorer.Model.LabelCount);
                    work.OpenRecord();
                    for (var w = 0; w < count; w++)
                    {
                        open ??= (await free.ReadAsync(token)).Start(scorer, size);
                        var started = clock is null ? default : StageClock.Start();
                        open.Add(record.Windows.AsSpan(w * IEcgScorer.WindowLength, IEcgScorer.WindowLength), accumulator);
                        clock?.Stop(PipelineStage.Batch, started, 1);
                        if (open.Count == open.Capacity)
                        {
                            await output.WriteAsync(open, token);
                            open = null;
                        }
                    }
                }

                if (work.CloseEnd())
                {
                    // Every record of the shard is aggregated already (or it had none): its end goes to the writer from here.
                    await writes.WriteAsync(work.TakeWrite(last: true), token);
                }

                if (work.FlushAfter && open is not null)
                {
                    await output.WriteAsync(open, token);
                    open = null;
                }
            }

            if (open is not null)
            {
                await output.WriteAsync(open, token);
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
}
