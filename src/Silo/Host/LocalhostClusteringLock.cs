using HubertEcg.Storage.Access;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;

namespace HubertEcg.Silo;

/// <summary>
/// Keeps <c>localhost</c> clustering to one silo per database. Two such silos do not know of each other (each is its
/// own cluster), so on one database each would lease and score every shard. In the host's starting phase, before
/// Orleans, a <c>localhost</c> silo takes a Postgres session-level advisory lock on a connection of its own (outside
/// the pool, so closing it, or the process dying, releases the lock); when another live silo holds it the start is
/// refused with <see cref="SiloStartRefusedException"/>. While the silo runs the connection is checked every
/// <see cref="CheckInterval"/>; when Postgres restarts the lock is taken again, and if another silo took it meanwhile
/// this one stops. <c>adonet</c> silos take nothing: they find each other through the membership table.
/// </summary>
public sealed partial class LocalhostClusteringLock(
    IOptions<SiloOptions> silo,
    PostgresConnections postgres,
    IHostApplicationLifetime lifetime,
    ILogger<LocalhostClusteringLock> logger) : IHostedLifecycleService, IAsyncDisposable
{
    /// <summary>The advisory lock's key (one per database: Postgres scopes advisory locks to the current database).</summary>
    public const long LockKey = 0x4875_6265_7274_4C48; // "HubertLH"

    /// <summary>How often the lock's connection is checked while the silo runs.</summary>
    public static readonly TimeSpan CheckInterval = TimeSpan.FromSeconds(5);

    private readonly CancellationTokenSource _stopping = new();
    private NpgsqlConnection? _connection;
    private Task? _watch;

    public async Task StartingAsync(CancellationToken cancellationToken)
    {
        if (silo.Value.UsesAdoNet)
        {
            return;
        }

        if (!await TryAcquireAsync(cancellationToken))
        {
            throw new SiloStartRefusedException(
                "another silo with Silo:Clustering=localhost is running on this database (it holds the localhost clustering lock); " +
                "two such silos would each score every shard. Stop it, give this silo its own database, or run both with Silo:Clustering=adonet");
        }

        LogAcquired();
        _watch = WatchAsync(_stopping.Token);
    }

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>Releases the lock after everything else has stopped (Orleans and the workers included).</summary>
    public async Task StoppedAsync(CancellationToken cancellationToken) => await DisposeAsync();

    public async ValueTask DisposeAsync()
    {
        if (!_stopping.IsCancellationRequested)
        {
            await _stopping.CancelAsync();
        }

        if (_watch is not null)
        {
            await _watch.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }

        await CloseAsync();
    }

    /// <summary>Opens the lock's own connection and tries the lock; false when another session holds it.</summary>
    private async Task<bool> TryAcquireAsync(CancellationToken cancellationToken)
    {
        await CloseAsync();
        if (postgres.UsesTokens)
        {
            // The lock's connection reads its password (an Entra ID token) from the token file.
            await postgres.FetchTokenAsync(cancellationToken);
        }

        var builder = new NpgsqlConnectionStringBuilder(postgres.ConnectionString())
        {
            Pooling = false,
            ApplicationName = "hubert-ecg-localhost-lock",
        };
        var connection = new NpgsqlConnection(builder.ConnectionString);
        try
        {
            await connection.OpenAsync(cancellationToken);
            await using var command = new NpgsqlCommand("select pg_try_advisory_lock(@key)", connection);
            command.Parameters.AddWithValue("key", LockKey);
            if (await command.ExecuteScalarAsync(cancellationToken) is true)
            {
                _connection = connection;
                return true;
            }
        }
        catch
        {
            await connection.DisposeAsync();
            throw;
        }

        await connection.DisposeAsync();
        return false;
    }

    /// <summary>Checks the lock's connection; after it broke (a Postgres restart), takes the lock again or stops the silo.</summary>
    private async Task WatchAsync(CancellationToken cancellationToken)
    {
        using var timer = new PeriodicTimer(CheckInterval);
        while (await NextTickAsync(timer, cancellationToken))
        {
            try
            {
                await using (var ping = new NpgsqlCommand("select 1", _connection))
                {
                    await ping.ExecuteScalarAsync(cancellationToken);
                }

                continue;
            }
            catch (Exception e) when (e is NpgsqlException or InvalidOperationException or TimeoutException)
            {
                LogConnectionLost(e.GetType().Name);
            }
            catch (OperationCanceledException)
            {
                return;
            }

            try
            {
                if (await TryAcquireAsync(cancellationToken))
                {
                    LogAcquired();
                    continue;
                }

                LogTakenByAnother();
                lifetime.StopApplication();
                return;
            }
            catch (Exception e) when (e is NpgsqlException or TimeoutException)
            {
                // Postgres is still away: try again on the next tick (the silo's own work waits for it as well).
                LogConnectionLost(e.GetType().Name);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    private static async Task<bool> NextTickAsync(PeriodicTimer timer, CancellationToken cancellationToken)
    {
        try
        {
            return await timer.WaitForNextTickAsync(cancellationToken);
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    private async Task CloseAsync()
    {
        if (_connection is not null)
        {
            await _connection.DisposeAsync();
            _connection = null;
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "localhost clustering: this silo holds the database's localhost clustering lock")]
    private partial void LogAcquired();

    [LoggerMessage(Level = LogLevel.Warning, Message = "localhost clustering: the lock's Postgres connection was lost ({Error}); taking the lock again")]
    private partial void LogConnectionLost(string error);

    [LoggerMessage(Level = LogLevel.Critical, Message = "localhost clustering: another localhost silo took this database's lock while Postgres was away; this silo stops so only one scores")]
    private partial void LogTakenByAnother();
}

/// <summary>The silo cannot start in this environment (not a configuration value's fault); the program prints the reason and exits with code 3.</summary>
public sealed class SiloStartRefusedException(string message) : Exception(message);
