using HubertEcg.Grains;
using HubertEcg.Inference.Model;
using HubertEcg.Storage;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;
using Orleans.TestingHost;

namespace HubertEcg.Integration.Tests.Scoring;

/// <summary>
/// In-process Orleans silos wired to the real Postgres and Azurite of the test fixtures, each running the scoring
/// services (and, unless disabled, one CPU worker).
/// </summary>
public sealed class ScoringCluster : IAsyncDisposable
{
    private ScoringCluster(InProcessTestCluster cluster)
    {
        Cluster = cluster;
    }

    public InProcessTestCluster Cluster { get; }

    public IGrainFactory Grains => Cluster.Client;

    /// <summary>
    /// Starts <paramref name="silos"/> silos with the real readers, preprocessing and ONNX Runtime scorer;
    /// <paramref name="services"/> may register replacements (a <see cref="RunStore"/> with another retry policy);
    /// <paramref name="siloSettings"/> gives settings of one silo from its name (a folder of its own).
    /// </summary>
    public static async Task<ScoringCluster> StartAsync(
        short silos,
        string postgres,
        string blob,
        bool workers = true,
        IDictionary<string, string?>? settings = null,
        Action<IServiceCollection>? services = null,
        Func<string, IDictionary<string, string?>>? siloSettings = null)
    {
        var builder = new InProcessTestClusterBuilder(silos);
        builder.ConfigureSiloHost((silo, host) =>
        {
            var values = new Dictionary<string, string?>
            {
                ["Postgres:ConnectionString"] = postgres,
                ["BlobStorage:ConnectionString"] = blob,
                ["Coordinator:TickInterval"] = "00:00:00.200",
                ["Coordinator:DirectoryRefresh"] = "00:00:00.200",
                ["Workers:PreprocessThreads"] = "1",
                ["Workers:IntraOpThreads"] = "1",
                ["Workers:IdlePollInterval"] = "00:00:00.200",
                ["Workers:WriteBatchRows"] = "64",
            };
            foreach (var (key, value) in settings ?? new Dictionary<string, string?>())
            {
                values[key] = value;
            }

            foreach (var (key, value) in siloSettings?.Invoke(silo.SiloName) ?? new Dictionary<string, string?>())
            {
                values[key] = value;
            }

            host.Configuration.AddInMemoryCollection(values);
            services?.Invoke(host.Services); // registered first, so it replaces the scoring defaults
            host.Services.AddHubertEcgScoring(host.Configuration, startWorkers: workers);
        });
        var cluster = builder.Build();
        await cluster.DeployAsync();
        return new ScoringCluster(cluster);
    }

    public async ValueTask DisposeAsync()
    {
        await Cluster.StopAllSilosAsync();
        await Cluster.DisposeAsync();
    }
}

/// <summary>Creating runs and waiting for them, as the client does.</summary>
public static class Runs
{
    public static async Task<Guid> SubmitAsync(
        RunStore store, ModelDescriptor model, string container, string prefix, int shardSize, int batchSize = 8,
        int leaseSeconds = 10, int maxAttempts = 3, Aggregation aggregation = Aggregation.Mean, int maxWindows = 4, string modelPath = "/models/test.onnx",
        string? manifest = null, string name = "test run", bool incremental = false, int outageBudgetSeconds = NewRun.DefaultOutageBudgetSeconds)
    {
        await store.RegisterModelAsync(new ModelRecord(
            model.ModelId, model.Name, model.SourceHash, model.ArchitectureJson, model.HiddenSize, model.LabelCodes, model.Untrained, model.PreprocessingProfile,
            ModelPrecisions.Name(model.Precision)));
        var runId = Guid.NewGuid();
        await store.CreateRunAsync(new NewRun(
            runId, name, container, prefix, model.ModelId, modelPath, model.PreprocessingProfile, aggregation, maxWindows, batchSize,
            shardSize, maxAttempts, leaseSeconds, manifest, incremental, OutageBudgetSeconds: outageBudgetSeconds));
        return runId;
    }

    /// <summary>Stores <paramref name="row"/> by a plain insert, as rows were written before 0027_packed_embeddings.sql (and as a database at an older schema takes them): the embedding as real[], nothing packed.</summary>
    public static async Task InsertPre0027RowAsync(NpgsqlDataSource dataSource, HubertEcg.Worker.ScoreRow row)
    {
        await using var insert = dataSource.CreateCommand(
            "insert into scores (model_id, record_id, run_id, probabilities, embedding, windows_used, source_blob, source_etag, scored_at) " +
            "values (@model, @record, @run, @probabilities, @embedding, @windows, @blob, @etag, @scored)");
        insert.Parameters.AddWithValue("model", row.ModelId);
        insert.Parameters.AddWithValue("record", row.RecordId);
        insert.Parameters.AddWithValue("run", row.RunId);
        insert.Parameters.AddWithValue("probabilities", row.Probabilities);
        insert.Parameters.AddWithValue("embedding", row.Embedding);
        insert.Parameters.AddWithValue("windows", row.WindowsUsed);
        insert.Parameters.AddWithValue("blob", row.SourceBlob);
        insert.Parameters.AddWithValue("etag", row.SourceETag);
        insert.Parameters.AddWithValue("scored", DateTime.SpecifyKind(row.ScoredAt, DateTimeKind.Utc));
        if (await insert.ExecuteNonQueryAsync() != 1)
        {
            throw new InvalidOperationException($"record {row.RecordId} was not stored");
        }
    }

    /// <summary>Waits until the run is completed, failed or cancelled; fails the test after <paramref name="timeout"/>.</summary>
    public static async Task<RunRecord> WaitFinishedAsync(RunStore store, Guid runId, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var run = await store.GetRunAsync(runId) ?? throw new InvalidOperationException($"run {runId} vanished");
            if (run.State.IsFinal())
            {
                return run;
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"run {runId} still {run.State} after {timeout}: {run.RecordsDone} done, {run.RecordsQuarantined} quarantined, {run.ShardsDone}/{run.ShardsPlanned} shards");
            }

            await Task.Delay(250);
        }
    }

    /// <summary>The first column of every row <paramref name="sql"/> returns for <c>@run</c> = <paramref name="runId"/>.</summary>
    public static async Task<List<string>> StringsAsync(NpgsqlDataSource db, string sql, Guid runId)
    {
        await using var cmd = db.CreateCommand(sql);
        cmd.Parameters.AddWithValue("run", runId);
        await using var reader = await cmd.ExecuteReaderAsync();
        var values = new List<string>();
        while (await reader.ReadAsync())
        {
            values.Add(reader.GetString(0));
        }

        return values;
    }

    public static async Task<long> CountAsync(NpgsqlDataSource db, string sql, Guid runId)
    {
        await using var cmd = db.CreateCommand(sql);
        cmd.Parameters.AddWithValue("run", runId);
        return Convert.ToInt64(await cmd.ExecuteScalarAsync(), System.Globalization.CultureInfo.InvariantCulture);
    }
}
