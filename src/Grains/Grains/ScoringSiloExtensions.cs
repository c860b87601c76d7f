using Azure.Storage.Blobs;
using HubertEcg.Grains.Coordination;
using HubertEcg.Grains.Workers;
using HubertEcg.Storage;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Npgsql;

namespace HubertEcg.Grains;

/// <summary>Registers what a scoring silo needs: Postgres and blob adapters, coordinator and worker options, and the workers.</summary>
public static class ScoringSiloExtensions
{
    /// <summary>
    /// Adds the scoring services from <paramref name="configuration"/> (sections <c>Postgres</c>, <c>BlobStorage</c>,
    /// <c>Coordinator</c>, <c>Workers</c>). The window preparer and scorer provider are registered by the host
    /// (they come from the inference library); record formats are added as <see cref="IRecordFormat"/> and
    /// <see cref="IContainerFormat"/> services.
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
        services.Configure<CoordinatorOptions>(configuration.GetSection(CoordinatorOptions.SectionName));
        services.Configure<WorkerOptions>(configuration.GetSection(WorkerOptions.SectionName));
        var npyRate = configuration.GetValue("Workers:NpySamplingRate", 500.0);
        services.AddSingleton<IRecordFormat>(new NpyRecordFormat(npyRate));
        services.TryAddSingleton<IRecordDecoder, RecordDecoder>();
        if (startWorkers)
        {
            services.AddHostedService<ScoringWorkerHost>();
        }

        return services;
    }
}
