using System.Diagnostics;
using System.Net.Sockets;
using System.Text.RegularExpressions;
using HubertEcg.Integration.Tests.Scoring;
using HubertEcg.Silo;
using HubertEcg.Testing;
using Npgsql;

namespace HubertEcg.Integration.Tests.Security;

/// <summary>
/// The operator surface of the real silo program and scripts (issue 12, finding 7): a dashboard without a token listens
/// on loopback only whichever configuration source asks otherwise; <c>localhost</c> clustering refuses a second live
/// silo on the same database; <c>infra/demo.sh</c> uses the services of <c>HUBERT_LOCAL_DIR</c> and its ports.
/// </summary>
public sealed partial class OperatorSurfaceTests(PostgresDatabaseFixture database, BlobContainerFixture blobs)
    : IClassFixture<PostgresDatabaseFixture>, IClassFixture<BlobContainerFixture>
{
    /// <summary>How long a silo or script may take on a busy machine; every wait ends as soon as its condition holds.</summary>
    private static readonly TimeSpan Patience = TimeSpan.FromMinutes(3);

    private static readonly Dictionary<string, string> TokenlessDashboard = new()
    {
        ["Dashboard:Enabled"] = "true",
        ["Dashboard:Urls"] = "http://127.0.0.1:0",
        ["Logging:LogLevel:HubertEcg.Silo.Dashboard"] = "Information",
    };

    [Fact]
    public void KestrelEndpointsFromThePlainEnvironmentAreRefusedWithoutAToken()
    {
        using var silo = StartSilo(
            "env",
            TokenlessDashboard,
            environment: new Dictionary<string, string> { ["Kestrel__Endpoints__Exposed__Url"] = "http://0.0.0.0:0" });

        Assert.Equal(2, silo.WaitForExit(Patience));
        Assert.Contains("configuration refused: Kestrel:Endpoints is set", silo.Log, StringComparison.Ordinal);
    }

    [Fact]
    public void KestrelEndpointsFromTheWorkingDirectorysAppSettingsAreRefusedWithoutAToken()
    {
        var directory = Directory.CreateTempSubdirectory("hubert-cwd-");
        try
        {
            File.WriteAllText(
                Path.Combine(directory.FullName, "appsettings.json"),
                """{ "Kestrel": { "Endpoints": { "Exposed": { "Url": "http://0.0.0.0:0" } } } }""");
            using var silo = StartSilo("cwd", TokenlessDashboard, workingDirectory: directory.FullName);

            Assert.Equal(2, silo.WaitForExit(Patience));
            Assert.Contains("configuration refused: Kestrel:Endpoints is set", silo.Log, StringComparison.Ordinal);
        }
        finally
        {
            directory.Delete(recursive: true);
        }
    }

    [Fact]
    public async Task AspNetCoreUrlsOpenNoListenerBesideDashboardUrls()
    {
        var exposedPort = int.Parse(SiloProcess.FreePort(), System.Globalization.CultureInfo.InvariantCulture);
        using var silo = StartSilo(
            "urls",
            TokenlessDashboard,
            environment: new Dictionary<string, string>
            {
                ["ASPNETCORE_URLS"] = $"http://0.0.0.0:{exposedPort}",
                ["ASPNETCORE_HTTP_PORTS"] = exposedPort.ToString(System.Globalization.CultureInfo.InvariantCulture),
                ["urls"] = $"http://+:{exposedPort}",
            });

        var listening = await silo.WaitForLogAsync(ListeningPattern(), Patience);
        Assert.StartsWith("http://127.0.0.1:", listening.Groups["url"].Value, StringComparison.Ordinal);
        Assert.Single(ListeningPattern().Matches(silo.Log)); // one listener: Dashboard:Urls', loopback
        using var probe = new TcpClient();
        var refused = await Assert.ThrowsAsync<SocketException>(() => probe.ConnectAsync("127.0.0.1", exposedPort));
        Assert.Equal(SocketError.ConnectionRefused, refused.SocketErrorCode);
    }

    [Fact]
    public async Task ASecondLocalhostSiloOnTheSameDatabaseRefusesToStart()
    {
        var localhost = new Dictionary<string, string>
        {
            ["Silo:Clustering"] = "localhost",
            ["Logging:LogLevel:HubertEcg.Silo.LocalhostClusteringLock"] = "Information",
        };
        using (var first = StartSilo("local-1", localhost))
        {
            await first.WaitForLogAsync(LockHeldPattern(), Patience);

            using var second = StartSilo("local-2", localhost);
            Assert.Equal(3, second.WaitForExit(Patience));
            Assert.Contains(
                "hubert-ecg-silo: refused to start: another silo with Silo:Clustering=localhost is running on this database",
                second.Log,
                StringComparison.Ordinal);
            Assert.False(first.HasExited); // the first one goes on
            first.Kill(); // as SIGKILL: Postgres ends its session, and with it the lock
        }

        await WaitUntilAsync(async () => !await LockHeldAsync(), "Postgres to end the killed silo's session and its lock");
        using var third = StartSilo("local-3", localhost);
        await third.WaitForLogAsync(LockHeldPattern(), Patience);
        Assert.True(await LockHeldAsync());
    }

    [Fact]
    public async Task TheDemoUsesTheServicesOfHubertLocalDirAndItsPorts()
    {
        var local = Path.Combine(RepoPaths.Root, ".local", "demo-env-" + Guid.NewGuid().ToString("N")[..8]);
        var pgPort = SiloProcess.FreePort();
        var blobPort = SiloProcess.FreePort();
        var environment = new Dictionary<string, string>
        {
            ["HUBERT_LOCAL_DIR"] = local,
            ["HUBERT_PG_PORT"] = pgPort,
            ["HUBERT_BLOB_PORT"] = blobPort,
        };
        try
        {
            var (code, output) = await BashAsync(environment, "infra/demo.sh", "--services-only");

            Assert.True(code == 0, output);
            Assert.Contains($"Postgres:ConnectionString=Host=127.0.0.1;Port={pgPort};", output, StringComparison.Ordinal);
            Assert.Contains("BlobStorage:ConnectionString=DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;", output, StringComparison.Ordinal);
            Assert.Contains($"BlobEndpoint=http://127.0.0.1:{blobPort}/devstoreaccount1;", output, StringComparison.Ordinal);
            Assert.True(File.Exists(Path.Combine(local, "services.env")));
            Assert.True(File.Exists(Path.Combine(local, "pg", "data", "PG_VERSION"))); // its own cluster, in that folder
            await using var connection = new NpgsqlConnection($"Host=127.0.0.1;Port={pgPort};Username=hubert;Database=hubert;Pooling=false");
            await connection.OpenAsync(); // and it answers on that port

            // Asked again for other ports while those services run, it names the ports they run on instead of
            // printing settings for services that are not there.
            var otherPort = SiloProcess.FreePort();
            (code, output) = await BashAsync(new Dictionary<string, string>(environment) { ["HUBERT_PG_PORT"] = otherPort }, "infra/demo.sh", "--services-only");
            Assert.NotEqual(0, code);
            Assert.Contains($"already runs on port {pgPort}, not {otherPort}", output, StringComparison.Ordinal);
            Assert.DoesNotContain("Postgres:ConnectionString=", output, StringComparison.Ordinal);
            (code, output) = await BashAsync(new Dictionary<string, string>(environment) { ["HUBERT_BLOB_PORT"] = otherPort }, "infra/demo.sh", "--services-only");
            Assert.NotEqual(0, code);
            Assert.Contains($"already runs on port {blobPort}, not {otherPort}", output, StringComparison.Ordinal);
        }
        finally
        {
            await BashAsync(environment, "infra/local/down.sh");
            if (Directory.Exists(local))
            {
                Directory.Delete(local, recursive: true);
            }
        }
    }

    private SiloProcess StartSilo(
        string name, Dictionary<string, string> settings, Dictionary<string, string>? environment = null, string? workingDirectory = null) =>
        SiloProcess.Start(
            "ops-" + Guid.NewGuid().ToString("N")[..8],
            name,
            database.ConnectionString,
            blobs.ConnectionString,
            settings,
            environment,
            workingDirectory);

    /// <summary>Whether a session of this database holds the localhost clustering lock.</summary>
    private async Task<bool> LockHeldAsync()
    {
        await using var command = database.DataSource.CreateCommand(
            "select exists (select 1 from pg_locks where locktype = 'advisory' and granted and database = " +
            "(select oid from pg_database where datname = current_database()) and classid::bigint = @high and objid::bigint = @low)");
        command.Parameters.AddWithValue("high", (long)(uint)(LocalhostClusteringLock.LockKey >> 32));
        command.Parameters.AddWithValue("low", (long)(uint)(LocalhostClusteringLock.LockKey & 0xFFFF_FFFF));
        return (bool)(await command.ExecuteScalarAsync())!;
    }

    private static async Task WaitUntilAsync(Func<Task<bool>> condition, string what)
    {
        var deadline = DateTime.UtcNow + Patience;
        while (!await condition())
        {
            Assert.True(DateTime.UtcNow < deadline, $"waited {Patience} for {what}");
            await Task.Delay(100);
        }
    }

    private static async Task<(int Code, string Output)> BashAsync(IReadOnlyDictionary<string, string> environment, params string[] arguments)
    {
        var start = new ProcessStartInfo("bash")
        {
            WorkingDirectory = RepoPaths.Root,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        foreach (var (key, value) in environment)
        {
            start.Environment[key] = value;
        }

        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(Patience);
        await process.WaitForExitAsync(timeout.Token);
        return (process.ExitCode, await stdout + await stderr);
    }

    [GeneratedRegex(@"Dashboard listening on (?<url>http://[^ ]+)")]
    private static partial Regex ListeningPattern();

    [GeneratedRegex("holds the database's localhost clustering lock")]
    private static partial Regex LockHeldPattern();
}
