namespace HubertEcg.Worker.Pipeline;

/// <summary>
/// How long a worker waits before asking for its next shard after a service it needs was unreachable: doubling from
/// <see cref="First"/> up to <see cref="Max"/> with each outage in a row, each wait scattered by ±50% so that the
/// workers of a cluster do not come back in step; a shard finished ends the streak. Without it, a worker would lease,
/// fail and hand back shards as fast as it could for as long as storage is down.
/// </summary>
internal sealed class OutageBackoff(TimeSpan first, TimeSpan max, Random? random = null)
{
    private readonly Random _random = random ?? Random.Shared;
    private readonly Lock _lock = new();
    private int _streak;
    private DateTime _notBefore = DateTime.MinValue;

    public static OutageBackoff Default() => new(TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(30));

    public TimeSpan First => first;

    public TimeSpan Max => max;

    /// <summary>Outages in a row since the last shard finished.</summary>
    public int Streak
    {
        get
        {
            lock (_lock)
            {
                return _streak;
            }
        }
    }

    /// <summary>An outage was met: the next shard waits longer. Returns the wait.</summary>
    public TimeSpan Failed()
    {
        lock (_lock)
        {
            _streak = Math.Min(_streak + 1, 30);
            var wait = Delay(_streak);
            _notBefore = DateTime.UtcNow + wait;
            return wait;
        }
    }

    /// <summary>A shard was finished: the streak ends.</summary>
    public void Succeeded()
    {
        lock (_lock)
        {
            _streak = 0;
            _notBefore = DateTime.MinValue;
        }
    }

    /// <summary>Waits until the current back-off (if any) is over.</summary>
    public Task WaitAsync(CancellationToken cancellationToken)
    {
        TimeSpan wait;
        lock (_lock)
        {
            wait = _notBefore - DateTime.UtcNow;
        }

        return wait > TimeSpan.Zero ? Task.Delay(wait, cancellationToken) : Task.CompletedTask;
    }

    /// <summary>The wait after <paramref name="streak"/> outages in a row: first x 2^(streak-1), capped, times a factor in [0.5, 1.5).</summary>
    public TimeSpan Delay(int streak)
    {
        var doubled = first.TotalMilliseconds * Math.Pow(2, Math.Max(0, streak - 1));
        var capped = Math.Min(doubled, max.TotalMilliseconds);
        return TimeSpan.FromMilliseconds(capped * (0.5 + _random.NextDouble()));
    }
}
