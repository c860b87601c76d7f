using System.Globalization;
using Azure.Storage.Blobs;
using HubertEcg.Storage.Access;
using Npgsql;

namespace HubertEcg.Storage;

/// <summary>
/// The Entra ID credential a process signs in with (<c>Azure.Identity</c>): <see cref="Default"/> tries the environment,
/// workload identity, managed identity and the Azure CLI in turn; the others name one of them.
/// </summary>
public enum EntraCredential
{
    /// <summary><c>DefaultAzureCredential</c>.</summary>
    Default,

    /// <summary>The machine's managed identity: system-assigned, or the user-assigned one named by its client id.</summary>
    ManagedIdentity,

    /// <summary>A Kubernetes workload identity (<c>AZURE_CLIENT_ID</c>, <c>AZURE_TENANT_ID</c>, <c>AZURE_FEDERATED_TOKEN_FILE</c>).</summary>
    WorkloadIdentity,

    /// <summary>Whoever is signed in to the Azure CLI (<c>az login</c>): for a person at a workstation.</summary>
    AzureCli,
}

/// <summary>How a process signs in to Postgres.</summary>
public enum PostgresCredential
{
    /// <summary>The connection string's password, or Postgres' password file (<c>Passfile</c>, <c>PGPASSFILE</c>, <c>~/.pgpass</c>).</summary>
    Password,

    /// <summary>Entra ID tokens from <c>DefaultAzureCredential</c> as the password (Azure Database for PostgreSQL).</summary>
    Default,

    /// <summary>Entra ID tokens of the machine's managed identity.</summary>
    ManagedIdentity,

    /// <summary>Entra ID tokens of a Kubernetes workload identity.</summary>
    WorkloadIdentity,

    /// <summary>Entra ID tokens of the Azure CLI's signed-in user.</summary>
    AzureCli,
}

/// <summary>How a process reaches blob storage.</summary>
public enum BlobCredential
{
    /// <summary><see cref="BlobStorageOptions.ConnectionString"/>: an account key, or a SAS inside the connection string.</summary>
    ConnectionString,

    /// <summary><see cref="BlobStorageOptions.SasUrl"/>: a container or account SAS URL.</summary>
    Sas,

    /// <summary>Entra ID through <c>DefaultAzureCredential</c>, at <see cref="BlobStorageOptions.AccountUrl"/>.</summary>
    Default,

    /// <summary>Entra ID through the machine's managed identity, at <see cref="BlobStorageOptions.AccountUrl"/>.</summary>
    ManagedIdentity,

    /// <summary>Entra ID through a Kubernetes workload identity, at <see cref="BlobStorageOptions.AccountUrl"/>.</summary>
    WorkloadIdentity,

    /// <summary>Entra ID through the Azure CLI's signed-in user, at <see cref="BlobStorageOptions.AccountUrl"/>.</summary>
    AzureCli,
}

/// <summary>Where results and run state live. Section <c>Postgres</c>, bound once and checked at start-up (<see cref="Problems"/>).</summary>
public sealed class PostgresOptions
{
    public const string SectionName = "Postgres";

    /// <summary>Default of <see cref="ApplyMigrations"/>.</summary>
    public const bool DefaultApplyMigrations = true;

    /// <summary>Default of <see cref="TokenRefresh"/>: well inside the hour an Entra ID token for Postgres lasts at least.</summary>
    public static readonly TimeSpan DefaultTokenRefresh = TimeSpan.FromMinutes(15);

    /// <summary>Npgsql connection string. The local-dev default lives in appsettings.json, never in code.</summary>
    public string ConnectionString { get; set; } = "";

    /// <summary>
    /// Apply pending migrations from infra/sql when the silo starts, before Orleans does; false when a deployment job
    /// applies them (<c>hubert-ecg db migrate</c>).
    /// </summary>
    public bool ApplyMigrations { get; set; } = DefaultApplyMigrations;

    /// <summary>
    /// Npgsql SSL mode (<c>Disable</c>, <c>Allow</c>, <c>Prefer</c>, <c>Require</c>, <c>VerifyCA</c>, <c>VerifyFull</c>, or
    /// libpq's <c>verify-full</c> spelling);
    /// empty: the connection string's own (Npgsql's default <c>Prefer</c> without one). <c>VerifyFull</c> checks the
    /// server's certificate chain and that it names the host connected to.
    /// </summary>
    public string SslMode { get; set; } = "";

    /// <summary>PEM file of the certificate authority that signed the server's certificate (empty: the connection string's <c>Root Certificate</c>, else the system's trust store).</summary>
    public string RootCertificate { get; set; } = "";

    /// <summary>How to sign in: the connection string's password (the default), or Entra ID tokens as the password.</summary>
    public PostgresCredential Credential { get; set; } = PostgresCredential.Password;

    /// <summary>Client id of a user-assigned managed identity (<see cref="PostgresCredential.ManagedIdentity"/>, <see cref="PostgresCredential.Default"/>, <see cref="PostgresCredential.WorkloadIdentity"/>); empty: the system-assigned one, or the environment's.</summary>
    public string ManagedIdentityClientId { get; set; } = "";

    /// <summary>How often an Entra ID token is fetched again (tokens are cached by Azure.Identity until near their expiry).</summary>
    public TimeSpan TokenRefresh { get; set; } = DefaultTokenRefresh;

    /// <summary>
    /// How score rows store the embedding (migration 0027): <c>fp32</c> (the default), the model's output exactly, or
    /// <c>fp16</c>, half the bytes (relative error at most 2^-11 per value; a row with a value beyond half precision's
    /// range is stored in fp32). Probabilities are always stored exactly. docs/benchmarks.md, "Embedding storage".
    /// </summary>
    public string EmbeddingPrecision { get; set; } = "fp32";

    /// <summary><see cref="EmbeddingPrecision"/> parsed (call after <see cref="Problems"/> found none).</summary>
    public Storage.EmbeddingPrecision ParsedEmbeddingPrecision() => PackedEmbeddings.Parse(EmbeddingPrecision);

    /// <summary>True when the password is an Entra ID token.</summary>
    public bool UsesEntraId => Credential != PostgresCredential.Password;

    /// <summary><see cref="SslMode"/> as Npgsql's value (libpq's spelling, <c>verify-full</c>, is read too); null when empty or unknown.</summary>
    public Npgsql.SslMode? ParsedSslMode() =>
        Enum.TryParse<Npgsql.SslMode>(SslMode.Replace("-", "", StringComparison.Ordinal).Replace("_", "", StringComparison.Ordinal), ignoreCase: true, out var mode)
        && Enum.IsDefined(mode)
            ? mode
            : null;

    /// <summary>What is wrong with these settings, one line each naming the key; empty when they can work. Never quotes a secret.</summary>
    public IReadOnlyList<string> Problems()
    {
        if (string.IsNullOrWhiteSpace(ConnectionString))
        {
            return ["Postgres:ConnectionString is not set (appsettings.json, HUBERTECG_Postgres__ConnectionString or --Postgres:ConnectionString=...)"];
        }

        var problems = new List<string>();
        try
        {
            _ = new NpgsqlConnectionStringBuilder(ConnectionString);
        }
        catch (Exception e) when (e is ArgumentException or FormatException or InvalidCastException or OverflowException)
        {
            // Npgsql's message names the keyword, not its value.
            problems.Add($"Postgres:ConnectionString is not a valid Npgsql connection string ({Secrets.Redact(e.Message)})");
        }

        if (SslMode.Length > 0 && ParsedSslMode() is null)
        {
            problems.Add($"Postgres:SslMode '{SslMode}' is not one of {string.Join(", ", Enum.GetNames<Npgsql.SslMode>())}");
        }

        if (RootCertificate.Length > 0 && !File.Exists(RootCertificate))
        {
            problems.Add($"Postgres:RootCertificate '{RootCertificate}' is not a file");
        }

        if (EmbeddingPrecision.Trim().ToLowerInvariant() is not ("fp32" or "fp16"))
        {
            problems.Add($"Postgres:EmbeddingPrecision '{EmbeddingPrecision}' is not one of fp32, fp16");
        }

        if (UsesEntraId && TokenRefresh < TimeSpan.FromSeconds(1))
        {
            problems.Add(string.Create(CultureInfo.InvariantCulture, $"Postgres:TokenRefresh must be at least 1 second, not {TokenRefresh}"));
        }

        return problems;
    }

    /// <summary>The settings with every secret (password, token) replaced by <c>***</c>, for messages and logs.</summary>
    public override string ToString() =>
        $"ConnectionString={Secrets.Redact(ConnectionString)}; SslMode={SslMode}; RootCertificate={RootCertificate}; Credential={Credential}; " +
        $"ManagedIdentityClientId={ManagedIdentityClientId}; TokenRefresh={TokenRefresh}; ApplyMigrations={ApplyMigrations}; EmbeddingPrecision={EmbeddingPrecision}";
}

/// <summary>Where ECG shards are read from. Section <c>BlobStorage</c>, bound once and checked at start-up (<see cref="Problems"/>).</summary>
public sealed class BlobStorageOptions
{
    public const string SectionName = "BlobStorage";

    /// <summary>How to reach the account: <see cref="BlobCredential.ConnectionString"/> (the default), a SAS URL, or an Entra ID credential.</summary>
    public BlobCredential Credential { get; set; } = BlobCredential.ConnectionString;

    /// <summary>Azure Storage connection string (Azurite in development), for <see cref="BlobCredential.ConnectionString"/>.</summary>
    public string ConnectionString { get; set; } = "";

    /// <summary>
    /// For <see cref="BlobCredential.Sas"/>: a container SAS URL (<c>https://ACCOUNT.blob.core.windows.net/CONTAINER?sv=...&amp;sig=...</c>),
    /// which reaches that container only, or an account SAS URL (<c>https://ACCOUNT.blob.core.windows.net/?sv=...</c>).
    /// </summary>
    public string SasUrl { get; set; } = "";

    /// <summary>For the Entra ID credentials: the account's blob endpoint, <c>https://ACCOUNT.blob.core.windows.net</c>.</summary>
    public string AccountUrl { get; set; } = "";

    /// <summary>Client id of a user-assigned managed identity (or the workload identity's application); empty: the system-assigned one, or the environment's.</summary>
    public string ManagedIdentityClientId { get; set; } = "";

    /// <summary>True when the credential is an Entra ID one.</summary>
    public bool UsesEntraId => Credential is not (BlobCredential.ConnectionString or BlobCredential.Sas);

    /// <summary>What is wrong with these settings, one line each naming the key; empty when they can work. Never quotes a secret.</summary>
    public IReadOnlyList<string> Problems()
    {
        switch (Credential)
        {
            case BlobCredential.ConnectionString:
                if (string.IsNullOrWhiteSpace(ConnectionString))
                {
                    return ["BlobStorage:ConnectionString is not set (appsettings.json, HUBERTECG_BlobStorage__ConnectionString or --BlobStorage:ConnectionString=...)"];
                }

                try
                {
                    _ = new BlobServiceClient(ConnectionString);
                    return [];
                }
                catch (Exception e) when (e is FormatException or ArgumentException or InvalidOperationException)
                {
                    return [$"BlobStorage:ConnectionString is not a valid Azure Storage connection string ({Secrets.Redact(e.Message)})"];
                }

            case BlobCredential.Sas:
                if (string.IsNullOrWhiteSpace(SasUrl))
                {
                    return ["BlobStorage:SasUrl is not set: BlobStorage:Credential=Sas needs a container or account SAS URL (set it from the environment, HUBERTECG_BlobStorage__SasUrl)"];
                }

                return SasAddress.TryParse(SasUrl, out _, out var why) ? [] : [$"BlobStorage:SasUrl {why}"];

            default:
                if (string.IsNullOrWhiteSpace(AccountUrl))
                {
                    return [$"BlobStorage:AccountUrl is not set: BlobStorage:Credential={Credential} needs the account's blob endpoint, https://ACCOUNT.blob.core.windows.net"];
                }

                if (!Uri.TryCreate(AccountUrl, UriKind.Absolute, out var account) || account.Scheme != Uri.UriSchemeHttps)
                {
                    return [$"BlobStorage:AccountUrl '{Secrets.Redact(AccountUrl)}' is not an https URL (Entra ID tokens are sent over TLS only)"];
                }

                return account.Query.Length > 1
                    ? ["BlobStorage:AccountUrl carries a query (a SAS?): give the bare endpoint, or use BlobStorage:Credential=Sas with BlobStorage:SasUrl"]
                    : [];
        }
    }

    /// <summary>The settings with every secret (account key, SAS signature) replaced, for messages and logs.</summary>
    public override string ToString() =>
        $"Credential={Credential}; ConnectionString={Secrets.Redact(ConnectionString)}; SasUrl={Secrets.Redact(SasUrl)}; " +
        $"AccountUrl={Secrets.Redact(AccountUrl)}; ManagedIdentityClientId={ManagedIdentityClientId}";
}
