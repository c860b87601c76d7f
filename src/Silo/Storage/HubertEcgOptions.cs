namespace HubertEcg.Storage;

/// <summary>Where results and run state live. Section <c>Postgres</c>, bound once and checked at start-up (<see cref="Problems"/>).</summary>
public sealed class PostgresOptions
{
    public const string SectionName = "Postgres";

    /// <summary>Default of <see cref="ApplyMigrations"/>.</summary>
    public const bool DefaultApplyMigrations = true;

    /// <summary>Npgsql connection string. The local-dev default lives in appsettings.json, never in code.</summary>
    public string ConnectionString { get; set; } = "";

    /// <summary>
    /// Apply pending migrations from infra/sql when the silo starts, before Orleans does; false when a deployment job
    /// applies them (<c>hubert-ecg db migrate</c>).
    /// </summary>
    public bool ApplyMigrations { get; set; } = DefaultApplyMigrations;

    /// <summary>What is wrong with these settings, one line each naming the key; empty when they can work.</summary>
    public IReadOnlyList<string> Problems() =>
        string.IsNullOrWhiteSpace(ConnectionString)
            ? ["Postgres:ConnectionString is not set (appsettings.json, HUBERTECG_Postgres__ConnectionString or --Postgres:ConnectionString=...)"]
            : [];
}

/// <summary>Where ECG shards are read from. Section <c>BlobStorage</c>, bound once and checked at start-up (<see cref="Problems"/>).</summary>
public sealed class BlobStorageOptions
{
    public const string SectionName = "BlobStorage";

    /// <summary>Azure Storage connection string (Azurite in development).</summary>
    public string ConnectionString { get; set; } = "";

    /// <summary>What is wrong with these settings, one line each naming the key; empty when they can work.</summary>
    public IReadOnlyList<string> Problems() =>
        string.IsNullOrWhiteSpace(ConnectionString)
            ? ["BlobStorage:ConnectionString is not set (appsettings.json, HUBERTECG_BlobStorage__ConnectionString or --BlobStorage:ConnectionString=...)"]
            : [];
}
