using Azure.Core;
using Azure.Storage.Blobs;
using HubertEcg.Grains.Coordination;
using HubertEcg.Grains.Scheduling;
using HubertEcg.Grains.Workers;
using HubertEcg.Inference.Formats;
using HubertEcg.Storage;
using HubertEcg.Storage.Access;
using HubertEcg.Storage.Folders;
using HubertEcg.Worker;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;
using Orleans.Configuration;
using Orleans.Runtime;

namespace HubertEcg.Grains;

/// <summary>Registers what a scoring silo needs: Postgres, blob and folder input adapters, coordinator and worker options, and the workers.</summary>
public static class ScoringSiloExtensions
{
    /// <summary>
    /// Adds the scoring services from <paramref name="configuration"/> (sections <c>Postgres</c>, <c>BlobStorage</c>,
    /// <c>Coordinator</c>, <c>Workers</c>, <c>Models</c>, each bound once and checked when the host starts), the silo's
    /// model cache and the scoring metrics (<see cref="ScoringMetrics"/>; whether they are exported is the host's choice). Records are read through the
    /// format registry, preprocessed by the inference library and scored with ONNX Runtime; a host may register its
    /// own <see cref="IWindowPreparer"/> or <see cref="IScorerProvider"/> before this call to replace them.
    /// </summary>
    public static IServiceCollection AddHubertEcgScoring(this IServiceCollection services, IConfiguration configuration, bool startWorkers = true)
    {
        services.AddPostgresConnections(configuration);
        services.AddBlobStorageOptions(configuration);
        // Credentials (a connection string, a SAS, an Entra ID identity) and TLS come from the options alone; a host (a
        // test) may register a PostgresTokenSource, BlobClientOptions or TokenCredential first to replace parts of them.
        services.TryAddSingleton(sp => sp.GetRequiredService<PostgresConnections>().CreateDataSource());
        services.TryAddSingleton(sp => BlobServiceClients.Create(
            sp.GetRequiredService<IOptions<BlobStorageOptions>>().Value, sp.GetService<BlobClientOptions>(), sp.GetService<TokenCredential>()));
        services.TryAddSingleton<BlobStore>();
        services.TryAddSingleton<FolderStore>();
        services.TryAddSingleton<IInputStore, InputStores>();
        services.TryAddSingleton<RunStore>(sp => new RunStore(sp.GetRequiredService<NpgsqlDataSource>()));
        services.TryAddSingleton<ResultWriter>(sp => new ResultWriter(
            sp.GetRequiredService<NpgsqlDataSource>(), embeddingPrecision: sp.GetRequiredService<IOptions<PostgresOptions>>().Value.ParsedEmbeddingPrecision()));
        services.TryAddSingleton<CurrentScores>(sp => new CurrentScores(sp.GetRequiredService<NpgsqlDataSource>()));
        services.AddMetrics();
        services.TryAddSingleton<ScoringMetrics>();

        services.AddValidatedOptions<CoordinatorOptions>(configuration, CoordinatorOptions.SectionName, o => o.Problems());
        var workers = configuration.GetSection(WorkerOptions.SectionName);
        services.AddValidatedOptions<WorkerOptions>(configuration, WorkerOptions.SectionName, o => o.Problems())
            ?.PostConfigure(o => o.Hdf5 = o.Hdf5 with
            {
                // Binding appends configured lead names to the default ones: configured names replace them instead.
                // An empty exam id dataset means shards without ids.
                LeadNames = workers.GetSection("Hdf5:LeadNames").Get<string[]>() is { Length: > 0 } leads ? leads : new Inference.Formats.Hdf5.Hdf5ShardOptions().LeadNames,
                ExamIdDataset = string.IsNullOrEmpty(o.Hdf5.ExamIdDataset) ? null : o.Hdf5.ExamIdDataset,
            });

        services.AddValidatedOptions<ModelOptions>(configuration, ModelOptions.SectionName, o => o.Problems());
        services.TryAddSingleton(sp => new ModelCache(
            sp.GetRequiredService<BlobStore>(),
            sp.GetRequiredService<IOptions<ModelOptions>>().Value,
            sp.GetRequiredService<ILogger<ModelCache>>(),
            sp.GetRequiredService<ScoringMetrics>()));
        services.TryAddSingleton(sp => FormatRegistry.Create(sp.GetRequiredService<IOptions<WorkerOptions>>().Value.Formats));
        services.TryAddSingleton<IRecordDecoder, RecordDecoder>();
        services.TryAddSingleton<IWindowPreparer, PreprocessingWindowPreparer>();
        services.TryAddSingleton<IScorerProvider>(sp =>
        {
            var options = sp.GetRequiredService<IOptions<WorkerOptions>>().Value;
            return new OnnxScorerProvider(options.IntraOpThreads, options.AllowSpinning, options.Cuda, options.IoBinding, options.IoBindingMemory);
        });
        services.TryAddSingleton<ILeasePort, GrainLeasePort>();
        services.TryAddSingleton(sp => new WorkerPorts(
            sp.GetRequiredService<ILeasePort>(),
            sp.GetRequiredService<IInputStore>(),
            sp.GetRequiredService<ResultWriter>(),
            sp.GetRequiredService<CurrentScores>(),
            sp.GetRequiredService<CurrentScores>(),
            sp.GetRequiredService<IRecordDecoder>(),
            sp.GetRequiredService<IWindowPreparer>(),
            sp.GetRequiredService<IScorerProvider>(),
            sp.GetRequiredService<ScoringMetrics>(),
            Models: sp.GetRequiredService<ModelCache>()));
        if (startWorkers)
        {
            services.AddSingleton<ScoringWorkerHost>();
            services.AddSingleton<ILifecycleParticipant<ISiloLifecycle>>(sp => sp.GetRequiredService<ScoringWorkerHost>());
        }

        return services;
    }

    /// <summary>
    /// Adds scheduled runs (section <c>Scheduling</c>): the schedule store and the synchronizer that gives every
    /// enabled schedule's grain its reminder. The silo must have a reminder service (the host configures ADO.NET
    /// reminders on Postgres, lowering Orleans' minimum reminder period to <see cref="ScheduleOptions.TickInterval"/>
    /// from the options bound here); call after <see cref="AddHubertEcgScoring"/>.
    /// </summary>
    public static IServiceCollection AddHubertEcgScheduling(this IServiceCollection services, IConfiguration configuration)
    {
        services.TryAddSingleton<ScheduleStore>(sp => new ScheduleStore(sp.GetRequiredService<NpgsqlDataSource>()));
        services.AddValidatedOptions<ScheduleOptions>(configuration, ScheduleOptions.SectionName, o => o.Problems());
        services.AddOptions<ReminderOptions>().Configure<IOptions<ScheduleOptions>>((reminders, scheduling) =>
        {
            if (scheduling.Value.TickInterval < reminders.MinimumReminderPeriod)
            {
                reminders.MinimumReminderPeriod = scheduling.Value.TickInterval;
            }
        });
        services.AddSingleton<ScheduleSynchronizer>();
        services.AddSingleton<ILifecycleParticipant<ISiloLifecycle>>(sp => sp.GetRequiredService<ScheduleSynchronizer>());
        return services;
    }
}
