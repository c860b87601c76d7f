namespace HubertEcg.Storage;

/// <summary>Where results and run state live. Section <c>Postgres</c>.</summary>
public sealed class PostgresOptions
{
    public const string SectionName = "Postgres";

    /// <summary>Npgsql connection string. The local-dev default lives in appsettings.json, never in code.</summary>
    public string ConnectionString { get; set; } = "";

    /// <summary>Apply pending migrations from infra/sql at start-up.</summary>
    public bool ApplyMigrations { get; set; } = true;
}

/// <summary>Where ECG shards are read from. Section <c>BlobStorage</c>.</summary>
public sealed class BlobStorageOptions
{
    public const string SectionName = "BlobStorage";

    /// <summary>Azure Storage connection string (Azurite in development).</summary>
    public string ConnectionString { get; set; } = "";
}
