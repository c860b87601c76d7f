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

    public static IConfigurationRoot Build(string[]? commandLine = null) =>
        new ConfigurationBuilder().AddHubertEcgSources(commandLine).Build();

    public static PostgresOptions Postgres(this IConfiguration configuration)
    {
        var options = new PostgresOptions();
        configuration.GetSection(PostgresOptions.SectionName).Bind(options);
        if (string.IsNullOrWhiteSpace(options.ConnectionString))
        {
            throw new InvalidOperationException(
                "Postgres:ConnectionString is not set (appsettings.json, HUBERTECG_Postgres__ConnectionString or --Postgres:ConnectionString=...)");
        }

        return options;
    }

    public static BlobStorageOptions BlobStorage(this IConfiguration configuration)
    {
        var options = new BlobStorageOptions();
        configuration.GetSection(BlobStorageOptions.SectionName).Bind(options);
        if (string.IsNullOrWhiteSpace(options.ConnectionString))
        {
            throw new InvalidOperationException(
                "BlobStorage:ConnectionString is not set (appsettings.json, HUBERTECG_BlobStorage__ConnectionString or --BlobStorage:ConnectionString=...)");
        }

        return options;
    }
}
