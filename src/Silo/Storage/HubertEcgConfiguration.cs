using Microsoft.Extensions.Configuration;

namespace HubertEcg.Storage;

/// <summary>
/// The one configuration model of every HubertEcg process: <c>appsettings.json</c> next to the executable,
/// then environment variables prefixed <c>HUBERTECG_</c> (<c>HUBERTECG_Postgres__ConnectionString</c>),
/// then command-line overrides (<c>--Postgres:ConnectionString=...</c>); later sources win.
/// </summary>
public static class HubertEcgConfiguration
{
    public const string EnvironmentPrefix = "HUBERTECG_";

    public static IConfigurationBuilder AddHubertEcgSources(this IConfigurationBuilder builder, string[]? commandLine = null)
    {
        builder.SetBasePath(AppContext.BaseDirectory)
            .AddJsonFile("appsettings.json", optional: true, reloadOnChange: false)
            .AddEnvironmentVariables(EnvironmentPrefix);
        if (commandLine is { Length: > 0 })
        {
            builder.AddCommandLine(commandLine);
        }

        return builder;
    }

    /// <summary>
    /// The <c>Postgres</c> section for a process without a host (the command-line tool), checked by the same rules a
    /// host applies at start-up; throws <see cref="InvalidOperationException"/> naming the key when they fail. Hosts
    /// bind it once through <see cref="ValidatedOptions.AddPostgresOptions"/> and take <c>IOptions</c> instead.
    /// </summary>
    public static PostgresOptions Postgres(this IConfiguration configuration) =>
        Checked(configuration.GetSection(PostgresOptions.SectionName).Get<PostgresOptions>() ?? new(), o => o.Problems());

    /// <summary>The <c>BlobStorage</c> section for a process without a host; see <see cref="Postgres"/>.</summary>
    public static BlobStorageOptions BlobStorage(this IConfiguration configuration) =>
        Checked(configuration.GetSection(BlobStorageOptions.SectionName).Get<BlobStorageOptions>() ?? new(), o => o.Problems());

    /// <summary>The Postgres connections of a process without a host (data sources only: no token file).</summary>
    public static Access.PostgresConnections PostgresConnections(this IConfiguration configuration) => new(configuration.Postgres());

    /// <summary>The blob service client the <c>BlobStorage</c> section describes, for a process without a host.</summary>
    public static Azure.Storage.Blobs.BlobServiceClient BlobService(this IConfiguration configuration) =>
        Access.BlobServiceClients.Create(configuration.BlobStorage());

    /// <summary>The <c>Models</c> section (the models container) for a process without a host; see <see cref="Postgres"/>.</summary>
    public static Worker.ModelOptions Models(this IConfiguration configuration) =>
        Checked(configuration.GetSection(Worker.ModelOptions.SectionName).Get<Worker.ModelOptions>() ?? new(), o => o.Problems());

    private static T Checked<T>(T options, Func<T, IReadOnlyList<string>> problems)
    {
        var found = problems(options);
        return found.Count == 0 ? options : throw new InvalidOperationException(string.Join("; ", found));
    }
}
