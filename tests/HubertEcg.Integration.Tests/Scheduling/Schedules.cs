using HubertEcg.Grains;
using HubertEcg.Inference.Model;
using HubertEcg.Integration.Tests.Scoring;
using HubertEcg.Storage;
using Npgsql;

namespace HubertEcg.Integration.Tests.Scheduling;

/// <summary>Adding schedules and reading their runs, as the client and the dashboards do.</summary>
public static class Schedules
{
    /// <summary>The record ids a run scored (its score rows), in ordinal order; for <see cref="Runs.StringsAsync"/>.</summary>
    public const string RecordsOfRun = "select record_id from scores where run_id = @run order by record_id collate \"C\"";

    public static async Task<ScheduleRecord> AddAsync(
        NpgsqlDataSource db, ModelDescriptor model, string name, string container, string prefix, string cron, string timeZone = "UTC",
        bool incremental = true, string modelPath = "/models/test.onnx", int shardSize = 5)
    {
        await new RunStore(db).RegisterModelAsync(new ModelRecord(
            model.ModelId, model.Name, model.SourceHash, model.ArchitectureJson, model.HiddenSize, model.LabelCodes, model.Untrained, model.PreprocessingProfile));
        return await new ScheduleStore(db).AddAsync(new ScheduleRecord(
            Guid.NewGuid(), name, container, prefix, null, model.ModelId, modelPath, model.PreprocessingProfile, Aggregation.Mean, 4, 8, shardSize, 3, 10,
            cron, timeZone, incremental));
    }

    /// <summary>The schedule's runs, oldest first: run id, due time (null when started by hand) and state.</summary>
    public static async Task<IReadOnlyList<(Guid RunId, DateTime? ScheduledFor, RunState State)>> RunsAsync(NpgsqlDataSource db, Guid scheduleId)
    {
        await using var cmd = db.CreateCommand("select run_id, scheduled_for, state from runs where schedule_id = @id order by created_at, run_id");
        cmd.Parameters.AddWithValue("id", scheduleId);
        await using var reader = await cmd.ExecuteReaderAsync();
        var runs = new List<(Guid, DateTime?, RunState)>();
        while (await reader.ReadAsync())
        {
            runs.Add((reader.GetGuid(0), reader.IsDBNull(1) ? null : reader.GetFieldValue<DateTime>(1), ContractText.ParseRunState(reader.GetString(2))));
        }

        return runs;
    }
}
