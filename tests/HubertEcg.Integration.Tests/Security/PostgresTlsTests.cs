using System.Net;
using HubertEcg.Integration.Tests.Scoring;
using HubertEcg.Storage;
using HubertEcg.Storage.Access;
using HubertEcg.Testing;
using Npgsql;

namespace HubertEcg.Integration.Tests.Security;

/// <summary>
/// Postgres over TLS with the certificate checked (issue 16): a server of the test's own with <c>ssl=on</c> and a
/// certificate for localhost and 127.0.0.1 signed by a CA the test makes. <c>Postgres:SslMode=VerifyFull</c> with
/// <c>Postgres:RootCertificate</c> naming that CA connects over TLS; another CA, or a host name the certificate does
/// not name (127.0.0.2, where the server listens too), is refused, by the library and by <c>hubert-ecg db migrate</c>.
/// </summary>
public sealed class PostgresTlsTests
{
    [Fact]
    public async Task VerifyFullConnectsWithTheRightCaAndRefusesAWrongCaOrHostName()
    {
        var folder = Path.Combine(Path.GetTempPath(), "hubert-pgtls-" + Guid.NewGuid().ToString("N")[..12]);
        using var authority = TestCertificates.Create(Path.Combine(folder, "right"));
        using var stranger = TestCertificates.Create(Path.Combine(folder, "wrong"), "Some other CA");
        var (certificate, key) = authority.IssueServer("server", ["localhost"], [IPAddress.Loopback]);
        await using var server = await PrivatePostgres.StartAsync(new PrivatePostgresSetup(
            Files: new Dictionary<string, string> { ["server.crt"] = certificate, ["server.key"] = key },
            Settings: ["ssl=on", "ssl_cert_file={conf}/server.crt", "ssl_key_file={conf}/server.key"],
            ListenAddresses: "127.0.0.1,127.0.0.2"));
        try
        {
            foreach (var host in new[] { "127.0.0.1", "localhost" })
            {
                using var connections = new PostgresConnections(Options(server, host, authority.AuthorityFile));
                await using var dataSource = connections.CreateDataSource();
                await using var ssl = dataSource.CreateCommand("select ssl from pg_stat_ssl where pid = pg_backend_pid()");
                Assert.Equal(true, await ssl.ExecuteScalarAsync());
            }

            var wrongCa = await RefusedAsync(Options(server, "127.0.0.1", stranger.AuthorityFile));
            var wrongHost = await RefusedAsync(Options(server, "127.0.0.2", authority.AuthorityFile));
            Assert.Contains("certificate", wrongCa, StringComparison.OrdinalIgnoreCase);
            Assert.Contains("certificate", wrongHost, StringComparison.OrdinalIgnoreCase);

            // The command-line tool reads the same settings: migrate over verified TLS, and refuse a wrong CA in one line.
            var (code, output, error) = await CliHarness.RunAsync(
                Options(server, "localhost", "").ConnectionString, LocalServices.Blob, "db", "migrate",
                "--set", "Postgres:SslMode=VerifyFull", "--set", $"Postgres:RootCertificate={authority.AuthorityFile}");
            Assert.True(code == 0, error);
            Assert.Contains("schema up to date", output, StringComparison.Ordinal);

            (code, _, error) = await CliHarness.RunAsync(
                Options(server, "localhost", "").ConnectionString, LocalServices.Blob, "db", "migrate",
                "--set", "Postgres:SslMode=VerifyFull", "--set", $"Postgres:RootCertificate={stranger.AuthorityFile}");
            Assert.Equal(1, code);
            var line = Assert.Single(error.Split('\n', StringSplitOptions.RemoveEmptyEntries));
            Assert.StartsWith("error: ", line, StringComparison.Ordinal);
            Assert.Contains("certificate", line, StringComparison.OrdinalIgnoreCase);
        }
        finally
        {
            NpgsqlConnection.ClearAllPools();
            Directory.Delete(folder, recursive: true);
        }
    }

    private static PostgresOptions Options(PrivatePostgres server, string host, string rootCertificate) => new()
    {
        ConnectionString = new NpgsqlConnectionStringBuilder(server.ConnectionString) { Host = host, Pooling = false, Timeout = 10 }.ConnectionString,
        SslMode = "VerifyFull",
        RootCertificate = rootCertificate,
    };

    /// <summary>Opens a connection that must be refused; returns the messages of the failure and its causes.</summary>
    private static async Task<string> RefusedAsync(PostgresOptions options)
    {
        using var connections = new PostgresConnections(options);
        await using var dataSource = connections.CreateDataSource();
        var e = await Assert.ThrowsAnyAsync<Exception>(async () =>
        {
            await using var connection = await dataSource.OpenConnectionAsync();
        });
        Assert.True(e is NpgsqlException or System.Security.Authentication.AuthenticationException, $"expected a TLS refusal, got {e}");
        var messages = new List<string>();
        for (Exception? current = e; current is not null; current = current.InnerException)
        {
            messages.Add(current.Message);
        }

        return string.Join(" | ", messages);
    }
}
