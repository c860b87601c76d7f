using HubertEcg.Integration.Tests.Scoring;
using HubertEcg.Storage;
using HubertEcg.Storage.Access;
using HubertEcg.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Npgsql;

namespace HubertEcg.Integration.Tests.Security;

/// <summary>
/// Entra ID token authentication for Postgres (issue 16), its refresh played by a fake token source against a server of
/// the test's own that checks passwords (scram-sha-256): the role's password is rotated as a token would be, the data
/// source's periodic password provider fetches the new one, new connections sign in with it while an open one goes on,
/// a stale token is refused, and the token file that Orleans' connection string names follows the rotation. A silo
/// whose only way in is the token applies the migrations and joins its cluster through Orleans' ADO.NET clustering.
/// </summary>
public sealed class PostgresTokenTests
{
    private const string Role = "entra_app";

    [Fact]
    public async Task RotatedTokensAreFetchedAgainAndConnectionsKeepWorking()
    {
        await using var server = await PrivatePostgres.StartAsync(new PrivatePostgresSetup(
            Settings: ["password_encryption=scram-sha-256"],
            HbaLines:
            [
                "local all all trust",
                $"host all {PrivatePostgres.User} 127.0.0.1/32 trust",
                "host all all 127.0.0.1/32 scram-sha-256",
            ]));
        await AdminAsync(server, $"create role {Role} login password 'token-1'");
        await AdminAsync(server, $"grant connect on database {PrivatePostgres.Database} to {Role}");

        var token = "token-1";
        var fetches = 0;
        var tokenFile = PostgresConnections.NewTokenFile();
        using var connections = new PostgresConnections(
            new PostgresOptions
            {
                ConnectionString = new NpgsqlConnectionStringBuilder(server.ConnectionString) { Username = Role, Timeout = 10 }.ConnectionString,
                Credential = PostgresCredential.ManagedIdentity,
                TokenRefresh = TimeSpan.FromSeconds(1),
            },
            _ =>
            {
                Interlocked.Increment(ref fetches);
                return ValueTask.FromResult(Volatile.Read(ref token));
            },
            tokenFile);
        try
        {
            await using var dataSource = connections.CreateDataSource();
            await using var first = await dataSource.OpenConnectionAsync();
            Assert.Equal(Role, await CurrentUserAsync(first));
            Assert.Contains("token-1", await File.ReadAllTextAsync(tokenFile), StringComparison.Ordinal);

            // Rotate: the server takes the new token, the source hands it out from now on.
            await AdminAsync(server, $"alter role {Role} password 'token-2'");
            Volatile.Write(ref token, "token-2");
            var seen = Volatile.Read(ref fetches);
            await WaitUntilAsync(() => Volatile.Read(ref fetches) >= seen + 2, "two token fetches after the rotation");

            // A new physical connection signs in with the new token; the open one goes on.
            dataSource.Clear();
            await using (var second = await dataSource.OpenConnectionAsync())
            {
                Assert.Equal(Role, await CurrentUserAsync(second));
            }

            Assert.Equal(Role, await CurrentUserAsync(first));

            // Orleans' ADO.NET providers take a connection string: it names the token file, which holds the new token.
            Assert.Contains("token-2", await File.ReadAllTextAsync(tokenFile), StringComparison.Ordinal);
            await using (var adoNet = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(connections.ConnectionString()) { Pooling = false }.ConnectionString))
            {
                await adoNet.OpenAsync();
                Assert.Equal(Role, await CurrentUserAsync(adoNet));
            }

            // The server does check: a source still handing out the old token is refused.
            using var stale = new PostgresConnections(connections.Options, _ => ValueTask.FromResult("token-1"));
            await using var staleSource = stale.CreateDataSource();
            var refused = await Assert.ThrowsAsync<PostgresException>(async () =>
            {
                await using var connection = await staleSource.OpenConnectionAsync();
            });
            Assert.Equal(PostgresErrorCodes.InvalidPassword, refused.SqlState);

            // Another connection string with a password of its own (a password login beside Entra ID, such as the
            // dashboard's read-only one) signs in with that password, not with the tokens.
            var withPassword = new NpgsqlConnectionStringBuilder(connections.Options.ConnectionString) { Password = "token-2" }.ConnectionString;
            await using var ownPassword = stale.CreateDataSource(connectionString: withPassword);
            await using (var connection = await ownPassword.OpenConnectionAsync())
            {
                Assert.Equal(Role, await CurrentUserAsync(connection));
            }
        }
        finally
        {
            NpgsqlConnection.ClearAllPools();
        }

        // Disposed with the process's connections, the token file goes too.
        connections.Dispose();
        Assert.False(File.Exists(tokenFile));
    }

    [Fact]
    public async Task ASiloSigningInWithTokensMigratesAndJoinsItsAdoNetCluster()
    {
        await using var server = await PrivatePostgres.StartAsync(new PrivatePostgresSetup(
            Settings: ["password_encryption=scram-sha-256"],
            HbaLines:
            [
                "local all all trust",
                $"host all {PrivatePostgres.User} 127.0.0.1/32 trust",
                "host all all 127.0.0.1/32 scram-sha-256",
            ]));
        const string silo = "entra_silo";
        await AdminAsync(server, $"create role {silo} login createrole password 'silo-token'");
        await AdminAsync(server, $"create database silo_db owner {silo}");
        var fetches = 0;
        PostgresTokenSource tokens = _ =>
        {
            Interlocked.Increment(ref fetches);
            return ValueTask.FromResult("silo-token");
        };
        var clusterId = "entra-" + Guid.NewGuid().ToString("N")[..8];
        var connectionString = new NpgsqlConnectionStringBuilder(server.ConnectionString) { Username = silo, Database = "silo_db", Timeout = 10 }.ConnectionString;
        try
        {
            var host = await SiloHosts.StartAsync(
                connectionString,
                LocalServices.Blob,
                "entra-silo",
                new Dictionary<string, string?>
                {
                    ["Postgres:Credential"] = "ManagedIdentity",
                    ["Silo:Clustering"] = "adonet",
                    ["Silo:ClusterId"] = clusterId,
                    ["Silo:ServiceId"] = clusterId,
                },
                services => services.AddSingleton(tokens));
            string tokenFile;
            try
            {
                tokenFile = host.Services.GetRequiredService<PostgresConnections>().TokenFile!;
                Assert.Contains("silo-token", await File.ReadAllTextAsync(tokenFile), StringComparison.Ordinal);
                var admin = new NpgsqlConnectionStringBuilder(server.ConnectionString) { Database = "silo_db", Pooling = false }.ConnectionString;
                await using var connection = new NpgsqlConnection(admin);
                await connection.OpenAsync();
                await using (var active = new NpgsqlCommand(
                                 "select count(*) from orleansmembershiptable where deploymentid = @cluster and status = 3", connection))
                {
                    active.Parameters.AddWithValue("cluster", clusterId);
                    Assert.Equal(1L, await active.ExecuteScalarAsync());
                }

                await using var migrated = new NpgsqlCommand("select count(*) from schema_migrations", connection);
                Assert.Equal((long)SchemaMigrator.Migrations.Count, await migrated.ExecuteScalarAsync());
                Assert.True(Volatile.Read(ref fetches) > 0);
                await host.StopAsync();
            }
            finally
            {
                host.Dispose();
            }

            Assert.False(File.Exists(tokenFile), "the silo's token file outlived it");
        }
        finally
        {
            NpgsqlConnection.ClearAllPools();
        }
    }

    private static async Task AdminAsync(PrivatePostgres server, string sql)
    {
        await using var connection = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(server.ConnectionString) { Pooling = false }.ConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }

    private static async Task<string> CurrentUserAsync(NpgsqlConnection connection)
    {
        await using var command = new NpgsqlCommand("select current_user", connection);
        return (string)(await command.ExecuteScalarAsync())!;
    }

    private static async Task WaitUntilAsync(Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(1);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, $"timed out waiting for {what}");
            await Task.Delay(50);
        }
    }
}
