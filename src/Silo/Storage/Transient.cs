using System.Net.Sockets;
using Npgsql;

namespace HubertEcg.Storage;

/// <summary>
/// Retries an idempotent Postgres operation while the failure is transient (connection refused or lost,
/// server shutting down or starting, serialization failure), with capped exponential back-off.
/// </summary>
public sealed class TransientRetry
{
    public TransientRetry(int maxAttempts = 12, TimeSpan? firstDelay = null, TimeSpan? maxDelay = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxAttempts, 1);
        MaxAttempts = maxAttempts;
        FirstDelay = firstDelay ?? TimeSpan.FromMilliseconds(200);
        MaxDelay = maxDelay ?? TimeSpan.FromSeconds(5);
    }

    public static TransientRetry Default { get; } = new();

    public int MaxAttempts { get; }

    public TimeSpan FirstDelay { get; }

    public TimeSpan MaxDelay { get; }

    public async Task<T> RunAsync<T>(Func<CancellationToken, Task<T>> operation, CancellationToken cancellationToken)
    {
        var delay = FirstDelay;
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await operation(cancellationToken);
            }
            catch (Exception e) when (attempt < MaxAttempts && IsTransient(e) && !cancellationToken.IsCancellationRequested)
            {
                await Task.Delay(delay, cancellationToken);
                delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, MaxDelay.Ticks));
            }
        }
    }

    /// <summary>
    /// As <see cref="RunAsync{T}"/>, but a transient failure that outlasts the retries becomes a
    /// <see cref="HubertEcg.Worker.ServiceUnavailableException"/> of the database, which workers treat as an outage (no
    /// attempt spent) rather than a fault of the shard. <paramref name="what"/> names the operation.
    /// </summary>
    public async Task<T> RunOrUnavailableAsync<T>(Func<CancellationToken, Task<T>> operation, string what, CancellationToken cancellationToken)
    {
        try
        {
            return await RunAsync(operation, cancellationToken);
        }
        catch (Exception e) when (IsTransient(e) && !cancellationToken.IsCancellationRequested)
        {
            throw new HubertEcg.Worker.ServiceUnavailableException(
                HubertEcg.Worker.ServiceUnavailableException.Database, $"database unreachable while {what} ({e.GetType().Name})", e);
        }
    }

    public Task RunAsync(Func<CancellationToken, Task> operation, CancellationToken cancellationToken) =>
        RunAsync<bool>(
            async ct =>
            {
                await operation(ct);
                return true;
            },
            cancellationToken);

    /// <summary>True for failures that a retry on a fresh connection may cure.</summary>
    public static bool IsTransient(Exception e)
    {
        switch (e)
        {
            case PostgresException pg:
                // 08: connection exception; 57P01-03: admin/crash shutdown, cannot connect now; 40001/40P01: serialization/deadlock.
                return pg.SqlState.StartsWith("08", StringComparison.Ordinal)
                    || pg.SqlState is "57P01" or "57P02" or "57P03" or "40001" or "40P01" or "53300";
            case NpgsqlException npgsql:
                return npgsql.IsTransient || npgsql.InnerException is IOException or SocketException or TimeoutException;
            case IOException or SocketException or TimeoutException:
                return true;
            default:
                return e.InnerException is not null && IsTransient(e.InnerException);
        }
    }
}
