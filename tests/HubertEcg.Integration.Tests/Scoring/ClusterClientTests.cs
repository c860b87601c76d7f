using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using HubertEcg.Grains;
using HubertEcg.Storage;
using HubertEcg.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Xunit.Abstractions;

namespace HubertEcg.Integration.Tests.Scoring;

/// <summary>
/// The run commands through a silo's gateway (<c>Cluster:Gateways</c>): submit announces the run to the run directory,
/// cancel reaches the coordinator, watch and status read its live progress, and each command says on standard error
/// whether the cluster or Postgres answered. The silos are the silo program's own configuration
/// (<see cref="SiloHosts"/>, localhost clustering on free ports, a cluster id of their own).
/// </summary>
[Collection(nameof(ConsoleBound))]
public sealed class ClusterClientTests(PostgresDatabaseFixture database, BlobContainerFixture blobs, ITestOutputHelper output)
    : IClassFixture<PostgresDatabaseFixture>, IClassFixture<BlobContainerFixture>
{
    private static readonly TimeSpan Generous = TimeSpan.FromMinutes(3);

    [Fact]
    public async Task SubmitThroughAGatewayStartsPlanningWithoutWaitingForTheDirectorysPostgresRefresh()
    {
        using var model = new TinyModel(seed: 91);
        await SyntheticCohort.UploadAsync(blobs.Container, "gw-announce/", 40);
        var silo = await StartSiloAsync("announce", new Dictionary<string, string?> { ["Coordinator:DirectoryRefresh"] = "01:00:00" });
        try
        {
            // The directory reads Postgres once when it activates and then not for an hour: activate it now, before the
            // run exists, so that only the announcement can tell the cluster about the run.
            var grains = silo.Host.Services.GetRequiredService<IGrainFactory>();
            await grains.GetGrain<IRunDirectoryGrain>(0).GetActiveRuns();

            var store = new RunStore(database.DataSource);
            var clock = Stopwatch.StartNew();
            var (code, stdout, stderr) = await CliAsync(
                [.. silo.Gateway, "run", "submit", "--input", $"{blobs.ContainerName}/gw-announce/", "--model", model.Path, "--shard-size", "10"]);
            var submitted = clock.Elapsed;
            Assert.True(code == 0, stderr);
            var runId = Guid.Parse(stdout.Trim());
            Assert.Equal($"via cluster gateway {silo.Address}", stderr.Trim());

            var run = await WaitUntilAsync(store, runId, r => r.State != RunState.Pending || r.ShardsPlanned > 0, "the run to leave pending");
            var planned = clock.Elapsed;
            output.WriteLine(
                $"submit to planning: {planned.TotalMilliseconds:0} ms from the start of `run submit` ({submitted.TotalMilliseconds:0} ms in the command, " +
                $"{(planned - submitted).TotalMilliseconds:0} ms after it returned); run {run.State.ToText()}, {run.ShardsPlanned} shards planned");

            // A run submitted without the gateway is only in Postgres: this directory does not read it for an hour, so it
            // stays pending until cancel reaches its coordinator through the gateway, which cancels it before returning.
            (code, stdout, stderr) = await CliAsync(["run", "submit", "--input", $"{blobs.ContainerName}/gw-announce/", "--model", model.Path]);
            Assert.True(code == 0, stderr);
            Assert.Equal("via Postgres (no gateway configured)", stderr.Trim());
            var unannounced = Guid.Parse(stdout.Trim());
            Assert.Equal(RunState.Pending, (await store.GetRunAsync(unannounced))!.State);
            (code, stdout, stderr) = await CliAsync([.. silo.Gateway, "run", "cancel", unannounced.ToString()]);
            Assert.Equal((0, $"cancel requested for run {unannounced}"), (code, stdout.Trim()));
            Assert.Equal($"via cluster gateway {silo.Address}", stderr.Trim());
            var cancelled = (await store.GetRunAsync(unannounced))!;
            Assert.Equal((RunState.Cancelled, true, "cancelled by request"), (cancelled.State, cancelled.CancelRequested, cancelled.Error));

            Assert.Equal(RunState.Completed, (await Runs.WaitFinishedAsync(store, runId, Generous)).State);
        }
        finally
        {
            await silo.DisposeAsync();
        }
    }

    [Fact]
    public async Task WatchAndStatusThroughAGatewayShowTheCoordinatorsProgress()
    {
        using var model = new TinyModel(seed: 92);
        var cohort = await SyntheticCohort.UploadAsync(blobs.Container, "gw-watch/", 40);
        var silo = await StartSiloAsync("watch");
        try
        {
            var (code, stdout, stderr) = await CliAsync(
                [.. silo.Gateway, "run", "submit", "--input", $"{blobs.ContainerName}/gw-watch/", "--model", model.Path, "--name", "gateway watch", "--shard-size", "7"]);
            Assert.True(code == 0, stderr);
            var runId = Guid.Parse(stdout.Trim());

            // One source line, the cluster's: every poll was answered by the run's coordinator.
            (code, stdout, stderr) = await CliAsync([.. silo.Gateway, "run", "watch", runId.ToString(), "--interval", "0.2"]);
            Assert.True(code == 0, stdout + stderr);
            Assert.Equal($"via cluster gateway {silo.Address}", stderr.Trim());
            Assert.Contains($"scored={cohort.GoodRecords.Count} quarantined={cohort.CorruptRecords.Count} seconds=", stdout, StringComparison.Ordinal);

            (code, stdout, stderr) = await CliAsync([.. silo.Gateway, "run", "status", runId.ToString(), "--json"]);
            Assert.Equal(0, code);
            Assert.Equal($"via cluster gateway {silo.Address}", stderr.Trim());
            using (var status = JsonDocument.Parse(stdout))
            {
                var root = status.RootElement;
                Assert.Equal("cluster", root.GetProperty("source").GetString());
                Assert.Equal($"cluster gateway {silo.Address}", root.GetProperty("via").GetString());
                Assert.Equal("completed", root.GetProperty("state").GetString());
                Assert.Equal("gateway watch", root.GetProperty("name").GetString());
                Assert.Equal(cohort.GoodRecords.Count, root.GetProperty("records").GetProperty("done").GetInt64());
                Assert.Equal(cohort.CorruptRecords.Count, root.GetProperty("records").GetProperty("quarantined").GetInt64());
                Assert.Equal(7, root.GetProperty("shards").GetProperty("done").GetInt32());
                Assert.Equal(7, root.GetProperty("shards").GetProperty("planned").GetInt32());
            }

            // A finished run cannot be cancelled, through the cluster or not.
            (code, _, _) = await CliAsync([.. silo.Gateway, "run", "cancel", runId.ToString()]);
            Assert.Equal(1, code);
        }
        finally
        {
            await silo.DisposeAsync();
        }
    }

    [Fact]
    public async Task WatchGoesOnFromPostgresWhenTheGatewayStopsAnswering()
    {
        using var model = new TinyModel(seed: 93);
        var cohort = await SyntheticCohort.UploadAsync(blobs.Container, "gw-lost/", 120);
        var store = new RunStore(database.DataSource);
        var first = await StartSiloAsync("lost-1");
        Task<(int Code, string Output, string Error)> watch;
        Guid runId;
        try
        {
            var (code, stdout, stderr) = await CliAsync(
                [.. first.Gateway, "run", "submit", "--input", $"{blobs.ContainerName}/gw-lost/", "--model", model.Path, "--shard-size", "10"]);
            Assert.True(code == 0, stderr);
            runId = Guid.Parse(stdout.Trim());
            watch = CliAsync([.. first.Gateway, "run", "watch", runId.ToString(), "--interval", "0.2"]);
            await WaitUntilAsync(store, runId, r => r.ShardsDone >= 1, "a shard to be done");
        }
        finally
        {
            // The only gateway goes away mid-run (its worker hands its leases back); another silo finishes the run.
            await first.DisposeAsync();
        }

        var second = await StartSiloAsync("lost-2");
        try
        {
            var (code, stdout, stderr) = await watch.WaitAsync(Generous);
            Assert.True(code == 0, stdout + stderr);
            Assert.Contains($"scored={cohort.GoodRecords.Count} quarantined={cohort.CorruptRecords.Count} seconds=", stdout, StringComparison.Ordinal);
            var lines = stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            Assert.Equal($"via cluster gateway {first.Address}", lines[0]);
            Assert.Contains(lines, l => l.StartsWith($"via Postgres (gateway {first.Address} stopped answering: ", StringComparison.Ordinal));
            Assert.Equal(RunState.Completed, (await store.GetRunAsync(runId))!.State);
        }
        finally
        {
            await second.DisposeAsync();
        }
    }

    [Fact]
    public async Task AnUnreachableGatewayFallsBackToPostgresAndSaysSo()
    {
        using var model = new TinyModel(seed: 94);
        var cohort = await SyntheticCohort.UploadAsync(blobs.Container, "gw-down/", 20);
        var silo = await StartSiloAsync("down");
        try
        {
            // A gateway nobody listens on (port 1: a free port picked now could be taken by another test's silo before the
            // client connects): every command still works, through Postgres, and says why.
            const string nobody = "127.0.0.1:1";
            string[] unreachable = ["--set", $"Cluster:Gateways:0={nobody}", "--set", "Cluster:ConnectTimeout=00:00:30"];
            var (code, stdout, stderr) = await CliAsync([.. unreachable, "run", "submit", "--input", $"{blobs.ContainerName}/gw-down/", "--model", model.Path]);
            Assert.True(code == 0, stderr);
            var runId = Guid.Parse(stdout.Trim());
            Assert.StartsWith($"via Postgres (gateway {nobody} unreachable: ", stderr.Trim(), StringComparison.Ordinal);
            Assert.True(stderr.Contains("ConnectionRefused", StringComparison.Ordinal), stderr);

            (code, stdout, stderr) = await CliAsync([.. unreachable, "run", "watch", runId.ToString(), "--interval", "0.2"]);
            Assert.True(code == 0, stdout + stderr);
            Assert.StartsWith($"via Postgres (gateway {nobody} unreachable: ", stderr.Trim(), StringComparison.Ordinal);
            Assert.Contains($"scored={cohort.GoodRecords.Count} quarantined={cohort.CorruptRecords.Count} seconds=", stdout, StringComparison.Ordinal);

            (code, stdout, stderr) = await CliAsync([.. unreachable, "run", "status", runId.ToString(), "--json"]);
            Assert.Equal(0, code);
            using var status = JsonDocument.Parse(stdout);
            Assert.Equal("postgres", status.RootElement.GetProperty("source").GetString());
            Assert.StartsWith($"Postgres (gateway {nobody} unreachable: ", status.RootElement.GetProperty("via").GetString(), StringComparison.Ordinal);
            Assert.Equal("completed", status.RootElement.GetProperty("state").GetString());

            // A silo of another cluster answers but refuses the handshake: unreachable too. Orleans tells the client why
            // (the cluster ids) or only closes the connection, so the line names the ids or the keys to check.
            string[] otherCluster = [.. silo.Gateway, "--set", "Cluster:ClusterId=another-cluster"];
            (code, _, stderr) = await CliAsync([.. otherCluster, "run", "status", runId.ToString()]);
            Assert.Equal(0, code);
            Assert.StartsWith($"via Postgres (gateway {silo.Address} unreachable: ", stderr.Trim(), StringComparison.Ordinal);
            Assert.True(
                stderr.Contains("another-cluster", StringComparison.Ordinal) || stderr.Contains("Cluster:ClusterId", StringComparison.Ordinal),
                stderr);
        }
        finally
        {
            await silo.DisposeAsync();
        }
    }

    [Fact]
    public async Task WithoutAGatewayTheCommandsUsePostgresAsBefore()
    {
        using var model = new TinyModel(seed: 95);
        var (code, stdout, stderr) = await CliAsync(["run", "submit", "--input", $"{blobs.ContainerName}/gw-none/", "--model", model.Path]);
        Assert.Equal(0, code);
        var runId = Guid.Parse(stdout.Trim());
        Assert.Equal("via Postgres (no gateway configured)", stderr.Trim());

        (code, stdout, stderr) = await CliAsync(["run", "status", runId.ToString(), "--json"]);
        Assert.Equal(0, code);
        Assert.Equal("via Postgres (no gateway configured)", stderr.Trim());
        using (var status = JsonDocument.Parse(stdout))
        {
            Assert.Equal(("pending", "postgres", "Postgres (no gateway configured)"), (
                status.RootElement.GetProperty("state").GetString(),
                status.RootElement.GetProperty("source").GetString(),
                status.RootElement.GetProperty("via").GetString()));
        }

        (code, stdout, stderr) = await CliAsync(["run", "cancel", runId.ToString()]);
        Assert.Equal((0, $"cancel requested for run {runId}", "via Postgres (no gateway configured)"), (code, stdout.Trim(), stderr.Trim()));
        Assert.True((await new RunStore(database.DataSource).GetRunAsync(runId))!.CancelRequested);

        // `run list` stays Postgres only, its JSON as it was.
        (code, stdout, _) = await CliAsync(["run", "list", "--json"]);
        Assert.Equal(0, code);
        using var list = JsonDocument.Parse(stdout);
        Assert.All(list.RootElement.EnumerateArray(), r => Assert.False(r.TryGetProperty("source", out _)));

        // A gateway that is not host:port is a configuration error, before anything is submitted.
        (code, stdout, stderr) = await CliAsync(["--set", "Cluster:Gateways:0=no-port", "run", "submit", "--input", $"{blobs.ContainerName}/gw-none/", "--model", model.Path]);
        Assert.Equal((1, ""), (code, stdout));
        Assert.Equal("error: Cluster:Gateways entry 'no-port' is not host:port (a port from 1 to 65535)", stderr.Trim());
    }

    private Task<(int Code, string Output, string Error)> CliAsync(string[] args) =>
        CliHarness.RunAsync(database.ConnectionString, blobs.ConnectionString, args);

    private async Task<GatewaySilo> StartSiloAsync(string name, IReadOnlyDictionary<string, string?>? settings = null)
    {
        var port = SiloHosts.FreePort();
        var clusterId = $"gw-{name}-{Guid.NewGuid():N}"[..24];
        var values = new Dictionary<string, string?>
        {
            ["Silo:Clustering"] = "localhost",
            ["Silo:ClusterId"] = clusterId,
            ["Silo:ServiceId"] = clusterId,
            ["Silo:GatewayPort"] = port.ToString(CultureInfo.InvariantCulture),
        };
        foreach (var (key, value) in settings ?? new Dictionary<string, string?>())
        {
            values[key] = value;
        }

        var host = await SiloHosts.StartAsync(database.ConnectionString, blobs.ConnectionString, name, values);
        return new GatewaySilo(host, $"127.0.0.1:{port}", clusterId);
    }

    private static async Task<RunRecord> WaitUntilAsync(RunStore store, Guid runId, Func<RunRecord, bool> condition, string what)
    {
        var deadline = DateTime.UtcNow + Generous;
        while (true)
        {
            var run = await store.GetRunAsync(runId) ?? throw new InvalidOperationException($"run {runId} vanished");
            if (condition(run))
            {
                return run;
            }

            Assert.True(DateTime.UtcNow < deadline, $"waited {Generous} for {what}; run {run.State.ToText()}, {run.ShardsPlanned} shards planned, {run.ShardsDone} done");
            await Task.Delay(10);
        }
    }

    /// <summary>A started silo host, the gateway address the client is given, and the client settings that reach it.</summary>
    private sealed class GatewaySilo(IHost host, string address, string clusterId) : IAsyncDisposable
    {
        public IHost Host { get; } = host;

        public string Address { get; } = address;

        public string[] Gateway { get; } =
            ["--set", $"Cluster:Gateways:0={address}", "--set", $"Cluster:ClusterId={clusterId}", "--set", $"Cluster:ServiceId={clusterId}"];

        public async ValueTask DisposeAsync()
        {
            try
            {
                await Host.StopAsync(TimeSpan.FromSeconds(30));
            }
            finally
            {
                Host.Dispose();
            }
        }
    }
}
