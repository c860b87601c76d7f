using HubertEcg.Grains;
using HubertEcg.Storage;
using HubertEcg.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace HubertEcg.Integration.Tests.Scoring;

/// <summary>
/// Real silo hosts (the silo program's own configuration code, TCP between silos) forming a cluster through the
/// project's ADO.NET clustering SQL on Postgres, then running a job together.
/// </summary>
public sealed class AdoNetClusteringTests(PostgresDatabaseFixture database, BlobContainerFixture blobs)
    : IClassFixture<PostgresDatabaseFixture>, IClassFixture<BlobContainerFixture>
{
    [Fact]
    public async Task TwoSilosJoinThroughPostgresAndShareARun()
    {
        var cohort = await SyntheticCohort.UploadAsync(blobs.Container, "adonet/", 60);
        using var model = new TinyModel(seed: 51);
        var clusterId = "test-" + Guid.NewGuid().ToString("N")[..8];
        var hosts = new List<IHost>();
        try
        {
            for (var i = 0; i < 2; i++)
            {
                hosts.Add(await StartSiloAsync(clusterId, $"silo{i}"));
            }

            // Both silos are Active (status 3) in the membership table the project's SQL maintains.
            Assert.Equal(2, await CountActiveAsync(clusterId));

            // Reminders go through the project's reminder SQL: register, read back, remove.
            var probe = hosts[0].Services.GetRequiredService<IGrainFactory>().GetGrain<IReminderProbeGrain>("probe-" + clusterId);
            Assert.Equal("probe", await probe.Register(TimeSpan.FromHours(24)));
            Assert.Equal(1, await CountRemindersAsync(clusterId, "probe"));
            Assert.Equal(1, await probe.Count());
            await probe.Remove();
            Assert.Equal(0, await CountRemindersAsync(clusterId, "probe"));
            Assert.Equal(0, await probe.Count());

            var store = new RunStore(database.DataSource);
            var runId = await Runs.SubmitAsync(store, model.Descriptor, blobs.ContainerName, "adonet/", shardSize: 8, modelPath: model.Path);
            var run = await Runs.WaitFinishedAsync(store, runId, TimeSpan.FromMinutes(3));
            Assert.Equal(RunState.Completed, run.State);
            Assert.Equal(cohort.GoodRecords.Count, run.RecordsDone);
            Assert.Equal(cohort.CorruptRecords.Count, run.RecordsQuarantined);
        }
        finally
        {
            foreach (var host in hosts)
            {
                await host.StopAsync(TimeSpan.FromSeconds(30));
                host.Dispose();
            }
        }

        // A silo that shut down gracefully marks itself Dead (status 6).
        Assert.Equal(0, await CountActiveAsync(clusterId));
    }

    private async Task<long> CountRemindersAsync(string serviceId, string name)
    {
        await using var cmd = database.DataSource.CreateCommand(
            "select count(*) from orleansreminderstable where serviceid = @service and remindername = @name and period = 86400000");
        cmd.Parameters.AddWithValue("service", serviceId);
        cmd.Parameters.AddWithValue("name", name);
        return (long)(await cmd.ExecuteScalarAsync())!;
    }

    private async Task<long> CountActiveAsync(string clusterId)
    {
        await using var cmd = database.DataSource.CreateCommand(
            "select count(*) from orleansmembershiptable where deploymentid = @cluster and status = 3");
        cmd.Parameters.AddWithValue("cluster", clusterId);
        return (long)(await cmd.ExecuteScalarAsync())!;
    }

    private Task<IHost> StartSiloAsync(string clusterId, string name) =>
        SiloHosts.StartAsync(
            database.ConnectionString,
            blobs.ConnectionString,
            name,
            new Dictionary<string, string?> { ["Silo:Clustering"] = "adonet", ["Silo:ClusterId"] = clusterId, ["Silo:ServiceId"] = clusterId });
}
