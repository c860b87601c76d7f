using Azure.Storage.Blobs;
using HubertEcg.Grains.Coordination;
using HubertEcg.Grains.Telemetry;
using HubertEcg.Grains.Scheduling;
using HubertEcg.Grains.Workers;
using HubertEcg.Inference.Ecg;
using HubertEcg.Storage;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Npgsql;
using Orleans.Runtime;

namespace HubertEcg.Grains;

/// <summary>Registers what a scoring silo needs: Postgres and blob adapters, coordinator and worker options, and the workers.</summary>
public static class ScoringSiloExtensions
{
    /// <summary>
    /// Adds the scoring services from <paramref name="configuration"/> (sections <c>Postgres</c>, <c>BlobStorage</c>,
    /// <c>Coordinator</c>, <c>Workers</c>) and the scoring metrics (<see cref="ScoringMetrics"/>; whether they are
    /// exported is the host's choice). Records are read by the inference library's readers (WFDB and Challenge
    /// .mat, .npy, HDF5 shards), preprocessed by its preprocessor and scored with ONNX Runtime; a host may register
    /// its own <see cref="IWindowPreparer"/> or <see cref="IScorerProvider"/> after this call to replace them.
    /// </summary>
    public static IServiceCollection AddHubertEcgScoring(this IServiceCollection services, IConfiguration configuration, bool startWorkers = true)
    {
        var postgres = configuration.Postgres();
        var blobStorage = configuration.BlobStorage();
        services.TryAddSingleton(_ => NpgsqlDataSource.Create(postgres.ConnectionString));
        services.TryAddSingleton(_ => new BlobServiceClient(blobStorage.ConnectionString));
        services.TryAddSingleton<BlobStore>();
        services.TryAddSingleton<RunStore>(sp => new RunStore(sp.GetRequiredService<NpgsqlDataSource>()));
        services.TryAddSingleton<ResultWriter>(sp => new ResultWriter(sp.GetRequiredService<NpgsqlDataSource>()));
        services.AddMetrics();
        services.TryAddSingleton<ScoringMetrics>();
        services.TryAddSingleton<CurrentScores>(sp => new CurrentScores(sp.GetRequiredService<NpgsqlDataSource>()));
        services.Configure<CoordinatorOptions>(configuration.GetSection(CoordinatorOptions.SectionName));
        services.Configure<WorkerOptions>(configuration.GetSection(WorkerOptions.SectionName));
        var npyRate = configuration.GetValue("Workers:NpySamplingRate", 500.0);
        var hdf5 = new Hdf5ShardOptions();
        var hdf5Section = configuration.GetSection("Workers:Hdf5");
        hdf5Section.Bind(hdf5);

        // Binding appends a configured list to the default one: configured lead names replace the defaults instead.
        // An empty exam id dataset means shards without ids.
        hdf5 = hdf5 with
        {
            LeadNames = hdf5Section.GetSection(nameof(Hdf5ShardOptions.LeadNames)).Get<string[]>() is { Length: > 0 } leads ? leads : new Hdf5ShardOptions().LeadNames,
            ExamIdDataset = string.IsNullOrEmpty(hdf5.ExamIdDataset) ? null : hdf5.ExamIdDataset,
        };
        services.AddSingleton<IRecordFormat>(new WfdbRecordFormat());
        services.AddSingleton<IRecordFormat>(new NpyRecordFormat(npyRate));
        services.AddSingleton<IContainerFormat>(new Hdf5ContainerFormat(hdf5));
        var archives = new ArchiveOptions();
        configuration.GetSection(ArchiveOptions.SectionName).Bind(archives);
        services.AddSingleton<IContainerFormat>(sp => new ArchiveContainerFormat(sp.GetServices<IRecordFormat>(), archives));
        services.TryAddSingleton<IRecordDecoder, RecordDecoder>();
        services.TryAddSingleton<IWindowPreparer, PreprocessingWindowPreparer>();
        services.TryAddSingleton<IScorerProvider>(_ => new OnnxScorerProvider(configuration.GetValue("Workers:IntraOpThreads", 0), configuration.GetValue("Workers:AllowSpinning", true)));
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
    /// reminders on Postgres); call after <see cref="AddHubertEcgScoring"/>.
    /// </summary>
    public static IServiceCollection AddHubertEcgScheduling(this IServiceCollection services, IConfiguration configuration)
    {
        services.TryAddSingleton<ScheduleStore>(sp => new ScheduleStore(sp.GetRequiredService<NpgsqlDataSource>()));
        services.AddOptions<ScheduleOptions>()
            .Bind(configuration.GetSection(ScheduleOptions.SectionName))
            .Validate(o => o.TickInterval > TimeSpan.Zero && o.SyncInterval > TimeSpan.Zero, "Scheduling:TickInterval and Scheduling:SyncInterval must be positive")
            .ValidateOnStart();
        services.AddSingleton<ScheduleSynchronizer>();
        services.AddSingleton<ILifecycleParticipant<ISiloLifecycle>>(sp => sp.GetRequiredService<ScheduleSynchronizer>());
        return services;
    }
}
