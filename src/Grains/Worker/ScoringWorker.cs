using System.Threading.Channels;
using HubertEcg.Inference.Formats;
using HubertEcg.Worker.Pipeline;
using Microsoft.Extensions.Logging;

namespace HubertEcg.Worker;

/// <summary>
/// One scoring worker, pinned to its silo and device. Its <see cref="DownloadStage"/> pulls shard leases through the
/// lease port (the grains: the coordinators of active runs) and downloads the next shards while the current one is
/// scored (<see cref="WorkerOptions.PrefetchShards"/>); the downloaded shards flow through one continuous
/// <see cref="ScoringPipeline"/> (read and preprocess on a pool of threads, batch windows across shard boundaries,
/// score, aggregate per record, write results idempotently, report each shard done). A heartbeat renews each held
/// lease; a lost lease or a cancelled run stops its shard. On shutdown, leases not finished are handed back without
/// counting an attempt; a stage that fails hands them back too, and the worker starts again.
/// Every log line about a shard carries its run id and shard number (as message parameters, and in a logger scope
/// around the shard's download and preparation); error text in logs and quarantine reasons goes through
/// <see cref="SafeErrors"/>, so it names the record and the reason, never record content. Counts, latencies and queue
/// depths go to <see cref="ScoringMetrics"/>. In an incremental run, records whose stored score came from the same
/// source blob and ETag are left out (<see cref="IIncrementalFilter"/>, one query per shard).
/// </summary>
public sealed partial class ScoringWorker(
    string workerId,
    WorkerDevice device,
    WorkerPorts ports,
    FormatRegistry formats,
    WorkerOptions options,
    ILogger logger)
{
    private readonly ScoringMetrics.WorkerQueues _queues = ports.Metrics.TrackWorker(workerId);
    private readonly ScorerCache _scorers = new(ports.Scorers, device, ports.Models);
    private readonly OutageBackoff _backoff = OutageBackoff.Default();

    public string WorkerId => workerId;

    public async Task RunAsync(CancellationToken stoppingToken)
    {
        using var queues = _queues;
        var incremental = new ScoreIndexIncrementalFilter(ports.ScoreIndex);
        var download = new DownloadStage(workerId, ports, formats, options, _scorers, _queues, _backoff, logger);
        while (!stoppingToken.IsCancellationRequested)
        {
            using var leases = new InFlightLeases(options.PrefetchShards);
            using var running = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
            var downloaded = Channel.CreateBounded<HeldLease>(new BoundedChannelOptions(1) { SingleReader = true, SingleWriter = true });
            var pipeline = new ScoringPipeline(workerId, device, ports, incremental, _scorers, options, _queues, _backoff, logger);
            var downloading = Task.Run(() => download.RunAsync(downloaded.Writer, leases, running.Token), CancellationToken.None);
            try
            {
                await pipeline.RunAsync(downloaded.Reader, leases.Finished, running.Token);
            }
            catch (InvalidOperationException e)
            {
                // A defect in a stage: hand everything back and start over rather than leave the worker dead.
                LogPipelineFailed(logger, SafeErrors.ForLog(e), workerId);
            }
            finally
            {
                await running.CancelAsync();
                await downloading;

                // Shards still inside when the worker stops are handed back without counting an attempt.
                await leases.HandBackAllAsync();
            }

            if (!stoppingToken.IsCancellationRequested)
            {
                await Task.Delay(options.IdlePollInterval, CancellationToken.None);
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "{Worker}: scoring stopped on an error; its leases are handed back and it starts again")]
    private static partial void LogPipelineFailed(ILogger logger, Exception e, string worker);
}
