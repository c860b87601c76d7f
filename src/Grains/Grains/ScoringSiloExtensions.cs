using Azure.Storage.Blobs;
using HubertEcg.Grains.Coordination;
using HubertEcg.Grains.Scheduling;
using HubertEcg.Grains.Workers;
using HubertEcg.Inference.Formats;
using HubertEcg.Storage;
using HubertEcg.Worker;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using Npgsql;
using Orleans.Runtime;

namespace HubertEcg.Grains;

/// <summary>Registers what a scoring silo needs: Postgres and blob adapters, coordinator and worker options, and the workers.</summary>
public static class ScoringSiloExtensions
{
    /// <summary>
    /// Adds the scoring services from <paramref name="configuration"/> (sections <c>Postgres</c>, <c>BlobStorage</c>,
    /// <c>Coordinator</c>, <c>Workers</c>, each bound once and checked when the host starts) and the scoring metrics
    /// (<see cref="ScoringMetrics"/>; whether they are exported is the host's choice). Records are read through the
    /// format registry, preprocessed by the inference library and scored with ONNX Runtime; a host may register its
    /// own <see cref="IWindowPreparer"/> or <see cref="IScorerProvider"/> before this call to replace them.
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
        services.TryAddSingleton<CurrentScores>(sp => new CurrentScores(sp.GetRequiredService<NpgsqlDataSource>()));
        services.AddMetrics();
        services.TryAddSingleton<ScoringMetrics>();

        services.AddOptions<CoordinatorOptions>()
            .Bind(configuration.GetSection(CoordinatorOptions.SectionName))
            .ValidateOnStart();
        services.AddSingleton<IValidateOptions<CoordinatorOptions>>(new ProblemsValidator<CoordinatorOptions>(o => o.Problems()));
        var workers = configuration.GetSection(WorkerOptions.SectionName);
        services.AddOptions<WorkerOptions>()
            .Bind(workers)
            .PostConfigure(o => o.Hdf5 = o.Hdf5 with
            {
                // Binding appends configured lead names to the default ones: configured names replace them instead.
                // An empty exam id dataset means shards without ids.
                LeadNames = workers.GetSection("Hdf5:LeadNames").Get<string[]>() is { Length: > 0 } leads ? leads : new Inference.Formats.Hdf5.Hdf5ShardOptions().LeadNames,
                ExamIdDataset = string.IsNullOrEmpty(o.Hdf5.ExamIdDataset) ? null : o.Hdf5.ExamIdDataset,
            })
            .ValidateOnStart();
        services.AddSingleton<IValidateOptions<WorkerOptions>>(new ProblemsValidator<WorkerOptions>(o => o.Problems()));

        services.TryAddSingleton(sp => FormatRegistry.Create(sp.GetRequiredService<IOptions<WorkerOptions>>().Value.Formats));
        services.TryAddSingleton<IRecordDecoder, RecordDecoder>();
        services.TryAddSingleton<IWindowPreparer, PreprocessingWindowPreparer>();
        services.TryAddSingleton<IScorerProvider>(sp =>
        {
            var options = sp.GetRequiredService<IOptions<WorkerOptions>>().Value;
            return new OnnxScorerProvider(options.IntraOpThreads, options.AllowSpinning);
        });
        services.TryAddSingleton<ILeasePort, GrainLeasePort>();
        services.TryAddSingleton(sp => new WorkerPorts(
            sp.GetRequiredService<ILeasePort>(),
            sp.GetRequiredService<BlobStore>(),
            sp.GetRequiredService<ResultWriter>(),
            sp.GetRequiredService<CurrentScores>(),
            sp.GetRequiredService<CurrentScores>(),
            sp.GetRequiredService<IRecordDecoder>(),
            sp.GetRequiredService<IWindowPreparer>(),
            sp.GetRequiredService<IScorerProvider>(),
            sp.GetRequiredService<ScoringMetrics>()));
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

    /// <summary>Fails options whose <c>Problems()</c> lists anything, with those lines as the reasons.</summary>
    private sealed class ProblemsValidator<T>(Func<T, IReadOnlyList<string>> problems) : IValidateOptions<T>
        where T : class
    {
        public ValidateOptionsResult Validate(string? name, T options)
        {
            var found = problems(options);
            return found.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(found);
        }
    }
}
