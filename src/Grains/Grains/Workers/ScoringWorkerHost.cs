using HubertEcg.Storage;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.Runtime;

namespace HubertEcg.Grains.Workers;

/// <summary>
/// Starts this silo's scoring workers (one per configured device) when the silo has started, and on shutdown
/// stops them, which hands their unfinished leases back to the coordinators.
/// </summary>
public sealed partial class ScoringWorkerHost(
    IGrainFactory grains,
    ILocalSiloDetails silo,
    RunStore runs,
    BlobStore blobs,
    ResultWriter writer,
    IRecordDecoder decoder,
    IWindowPreparer preparer,
    IScorerProvider scorers,
    IOptions<WorkerOptions> options,
    ILoggerFactory loggers) : BackgroundService
{
    private readonly List<ScoringWorker> _workers = [];

    public IReadOnlyList<ScoringWorker> Workers => _workers;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var logger = loggers.CreateLogger<ScoringWorker>();
        foreach (var device in options.Value.EffectiveDevices)
        {
            var id = $"{silo.Name}@{silo.SiloAddress.ToParsableString()}/{device}";
            _workers.Add(new ScoringWorker(id, device, grains, runs, blobs, writer, decoder, preparer, scorers, options.Value, logger));
        }

        LogStarting(logger, silo.Name, _workers.Count);
        await Task.WhenAll(_workers.Select(w => Task.Run(() => w.RunAsync(stoppingToken), CancellationToken.None)));
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "silo {Silo}: starting {Count} scoring workers")]
    private static partial void LogStarting(ILogger logger, string silo, int count);
}
