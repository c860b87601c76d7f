namespace HubertEcg.Grains.Coordination;

/// <summary>
/// Runs a step, one at a time, on a grain timer that interleaves with the grain's calls, until the step says the
/// work is over. <see cref="StopAsync"/> cancels the reads of the step in flight (the first token a step gets) and
/// waits for it to end, so a step that has begun to store its result finishes it; no step starts after it until
/// <see cref="Resume"/>. The second token a step gets is the timer's own, cancelled only with the activation.
/// </summary>
public sealed class StepTimer(TimeSpan period, Func<CancellationToken, CancellationToken, Task> step, Func<bool> over, Action<Exception> failed) : IDisposable
{
    private CancellationTokenSource _stop = new();
    private Task? _inFlight;
    private IGrainTimer? _timer;
    private IGrainBase? _grain;
    private Action _ended = () => { };

    /// <summary>True from <see cref="StopAsync"/> until <see cref="Resume"/>.</summary>
    public bool IsStopped => _stop.IsCancellationRequested;

    /// <summary>
    /// Starts the timer on <paramref name="grain"/>, its first step at once (nothing when the work is over, the timer
    /// is stopped, or already started); <paramref name="ended"/> runs once the work is over.
    /// </summary>
    public void Start(IGrainBase grain, Action ended)
    {
        (_grain, _ended) = (grain, ended);
        if (_timer is null && !over() && !IsStopped)
        {
            _timer = grain.RegisterGrainTimer(
                TickAsync,
                new GrainTimerCreationOptions { DueTime = TimeSpan.Zero, Period = period, Interleave = true, KeepAlive = true });
        }
    }

    /// <summary>Cancels the reads of the step in flight, waits for it to end, and stops the timer.</summary>
    public async Task StopAsync()
    {
        await _stop.CancelAsync();
        if (_inFlight is { } running)
        {
            try
            {
                await running;
            }
            catch (Exception)
            {
                // The tick reports it.
            }
        }

        // Only now: disposing the timer cancels its callback's token, which would cancel a step being stored.
        _timer?.Dispose();
        _timer = null;
    }

    /// <summary>Lets the steps go on after <see cref="StopAsync"/>.</summary>
    public void Resume()
    {
        if (IsStopped)
        {
            _stop.Dispose();
            _stop = new CancellationTokenSource();
            if (_grain is { } grain)
            {
                Start(grain, _ended);
            }
        }
    }

    public void Dispose()
    {
        _timer?.Dispose();
        _timer = null;
        _stop.Dispose();
    }

    private async Task TickAsync(CancellationToken cancellationToken)
    {
        if (_inFlight is not null || over() || IsStopped)
        {
            return;
        }

        using var reads = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _stop.Token);
        var running = step(reads.Token, cancellationToken);
        _inFlight = running;
        try
        {
            await running;
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested || IsStopped)
        {
            return; // stopped: the work is ending, or the activation is
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            failed(e);
        }
        finally
        {
            _inFlight = null;
        }

        if (over())
        {
            _timer?.Dispose();
            _timer = null;
            _ended();
        }
    }
}
