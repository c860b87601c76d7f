using HubertEcg.Inference.Formats;
using HubertEcg.Worker;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.Runtime;

namespace HubertEcg.Grains.Workers;

/// <summary>
/// This silo's scoring workers (one per configured device), tied to the silo's lifecycle: they start when the silo
/// becomes active and stop first when it shuts down, while grain calls still work, so unfinished leases are handed
/// back to the coordinators instead of being left to expire.
/// </summary>
public sealed partial class ScoringWorkerHost(
    ILocalSiloDetails silo,
    WorkerPorts ports,
    FormatRegistry formats,
    IOptions<WorkerOptions> options,
    ILoggerFactory loggers) : ILifecycleParticipant<ISiloLifecycle>, IDisposable
{
    private readonly List<ScoringWorker> _workers = [];
    private readonly List<Task> _running = [];
    private readonly CancellationTokenSource _stopping = new();
    private readonly ILogger _logger = loggers.CreateLogger<ScoringWorkerHost>();
    private readonly ILogger _workerLogger = loggers.CreateLogger<ScoringWorker>();

    public IReadOnlyList<ScoringWorker> Workers => _workers;

    public void Participate(ISiloLifecycle lifecycle) =>
        lifecycle.Subscribe(nameof(ScoringWorkerHost), ServiceLifecycleStage.Active, StartAsync, StopAsync);

    public void Dispose() => _stopping.Dispose();

    private Task StartAsync(CancellationToken cancellationToken)
    {
        foreach (var device in options.Value.EffectiveDevices)
        {
            var id = WorkerIdentity.Format(silo.Name, silo.SiloAddress, device.ToString());
            var worker = new ScoringWorker(id, device, ports, formats, options.Value, _workerLogger);
            _workers.Add(worker);
            _running.Add(Task.Run(() => worker.RunAsync(_stopping.Token), CancellationToken.None));
        }

        LogStarted(_logger, silo.Name, _workers.Count);
        return Task.CompletedTask;
    }

    private async Task StopAsync(CancellationToken cancellationToken)
    {
        await _stopping.CancelAsync();
        try
        {
            await Task.WhenAll(_running).WaitAsync(cancellationToken);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            LogStopTimedOut(_logger, silo.Name);
        }

        LogStopped(_logger, silo.Name, _workers.Count);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "silo {Silo}: started {Count} scoring workers")]
    private static partial void LogStarted(ILogger logger, string silo, int count);

    [LoggerMessage(Level = LogLevel.Information, Message = "silo {Silo}: stopped {Count} scoring workers")]
    private static partial void LogStopped(ILogger logger, string silo, int count);

    [LoggerMessage(Level = LogLevel.Warning, Message = "silo {Silo}: workers did not stop in time; their leases will expire")]
    private static partial void LogStopTimedOut(ILogger logger, string silo);
}
