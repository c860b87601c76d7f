using System.Globalization;
using System.Text;
using Azure.Core;
using Npgsql;

namespace HubertEcg.Storage.Access;

/// <summary>Fetches a password for Postgres: an Entra ID access token, or what a test supplies.</summary>
public delegate ValueTask<string> PostgresTokenSource(CancellationToken cancellationToken);

/// <summary>
/// Builds every Npgsql data source and connection string of a process from <see cref="PostgresOptions"/>: TLS
/// (<c>Postgres:SslMode</c>, <c>Postgres:RootCertificate</c>) laid over the connection string, and with an Entra ID
/// credential the password replaced by tokens through Npgsql's periodic password provider, fetched again every
/// <c>Postgres:TokenRefresh</c>. Consumers that take a connection string rather than a data source (Orleans' ADO.NET
/// clustering and reminders) get one naming a password file (<c>Passfile</c>) that holds the latest token, readable by
/// this user only and deleted on <see cref="Dispose"/>.
/// </summary>
public sealed class PostgresConnections : IDisposable
{
    /// <summary>The scope of an access token for Azure Database for PostgreSQL.</summary>
    public const string EntraIdScope = "https://ossrdbms-aad.database.windows.net/.default";

    /// <summary>How soon a token fetch that failed is tried again.</summary>
    public static readonly TimeSpan FailedFetchRetry = TimeSpan.FromSeconds(5);

    private readonly PostgresOptions _options;
    private readonly PostgresTokenSource? _tokens;
    private readonly Lock _fileLock = new();
    private bool _disposed;

    /// <summary>
    /// Connections as <paramref name="options"/> say (checked first: throws <see cref="InvalidOperationException"/>
    /// naming the key). <paramref name="tokens"/> replaces the Entra ID credential's tokens (tests) and turns tokens on
    /// whatever <c>Postgres:Credential</c> says; <paramref name="tokenFile"/> is where the latest is kept for
    /// connection-string consumers (<see cref="NewTokenFile"/>; none when null: data sources only).
    /// </summary>
    public PostgresConnections(PostgresOptions options, PostgresTokenSource? tokens = null, string? tokenFile = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        var problems = options.Problems();
        if (problems.Count > 0)
        {
            throw new InvalidOperationException(string.Join("; ", problems));
        }

        _options = options;
        _tokens = tokens ?? (EntraCredentials.Of(options.Credential) is { } kind
            ? FromCredential(EntraCredentials.Create(kind, options.ManagedIdentityClientId))
            : null);
        if (_tokens is not null)
        {
            TokenFile = tokenFile;
        }
    }

    /// <summary>A new token file's path in the temporary folder, unique to this process and call.</summary>
    public static string NewTokenFile() => Path.Combine(Path.GetTempPath(), $"hubert-ecg-{Environment.ProcessId}-{Guid.NewGuid():N}.pgpass");

    /// <summary>The options these connections follow.</summary>
    public PostgresOptions Options => _options;

    /// <summary>True when the password is a token (Entra ID, or a test's source).</summary>
    public bool UsesTokens => _tokens is not null;

    /// <summary>The password file holding the latest token (null without tokens or without a file); it exists once a token was fetched.</summary>
    public string? TokenFile { get; }

    /// <summary>The tokens of <paramref name="credential"/> for Azure Database for PostgreSQL.</summary>
    public static PostgresTokenSource FromCredential(TokenCredential credential)
    {
        ArgumentNullException.ThrowIfNull(credential);
        return async cancellationToken =>
            (await credential.GetTokenAsync(new TokenRequestContext([EntraIdScope]), cancellationToken)).Token;
    }

    /// <summary>
    /// <paramref name="connectionString"/> (default <c>Postgres:ConnectionString</c>) with the TLS settings laid over
    /// it; with tokens, its password replaced by <see cref="TokenFile"/>. For consumers that open connections from a
    /// string; call <see cref="FetchTokenAsync"/> (or open a connection of a data source) before they connect.
    /// </summary>
    public string ConnectionString(string? connectionString = null)
    {
        var builder = Builder(connectionString);
        if (_tokens is not null)
        {
            builder.Password = null;
            builder.Passfile = TokenFile ?? throw new InvalidOperationException(
                "Postgres tokens without a token file reach Postgres through data sources only, not through a connection string");
        }

        return builder.ConnectionString;
    }

    /// <summary>
    /// A data source on <paramref name="connectionString"/> (default <c>Postgres:ConnectionString</c>) with the TLS
    /// settings, changed by <paramref name="adjust"/>; with tokens, its password is the latest token, unless
    /// <paramref name="connectionString"/> is another one that holds a password of its own (a password role beside an
    /// Entra ID silo, such as the dashboard's read-only login).
    /// </summary>
    public NpgsqlDataSource CreateDataSource(Action<NpgsqlConnectionStringBuilder>? adjust = null, string? connectionString = null)
    {
        var builder = Builder(connectionString);
        adjust?.Invoke(builder);
        var ownPassword = !string.IsNullOrWhiteSpace(connectionString) && !string.IsNullOrEmpty(builder.Password);
        if (_tokens is null || ownPassword)
        {
            return NpgsqlDataSource.Create(builder.ConnectionString);
        }

        builder.Password = null;
        builder.Passfile = null;
        var dataSource = new NpgsqlDataSourceBuilder(builder.ConnectionString);
        dataSource.UsePeriodicPasswordProvider((_, cancellationToken) => FetchTokenAsync(cancellationToken), _options.TokenRefresh, FailedFetchRetry);
        return dataSource.Build();
    }

    /// <summary>Fetches a token and keeps it in <see cref="TokenFile"/>; returns it. Throws without tokens.</summary>
    public async ValueTask<string> FetchTokenAsync(CancellationToken cancellationToken)
    {
        var source = _tokens ?? throw new InvalidOperationException("Postgres:Credential is Password: there is no token to fetch");
        string token;
        try
        {
            token = await source(cancellationToken);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // Azure.Identity's messages name the credentials tried and why; they hold no token.
            throw new InvalidOperationException($"could not get a Postgres access token (Postgres:Credential={_options.Credential}): {Secrets.Redact(e.Message)}", e);
        }

        if (string.IsNullOrEmpty(token))
        {
            throw new InvalidOperationException($"the Postgres token source (Postgres:Credential={_options.Credential}) returned an empty token");
        }

        WriteTokenFile(token);
        return token;
    }

    /// <summary>Deletes the token file.</summary>
    public void Dispose()
    {
        lock (_fileLock)
        {
            _disposed = true;
            if (TokenFile is not null)
            {
                File.Delete(TokenFile);
            }
        }
    }

    /// <summary>Npgsql's write buffer per connection unless the connection string says otherwise (bytes).</summary>
    public const int DefaultWriteBufferSize = 128 * 1024;

    private NpgsqlConnectionStringBuilder Builder(string? connectionString)
    {
        var raw = string.IsNullOrWhiteSpace(connectionString) ? _options.ConnectionString : connectionString;
        var builder = new NpgsqlConnectionStringBuilder(raw);
        if (_options.ParsedSslMode() is { } mode)
        {
            builder.SslMode = mode;
        }

        if (_options.RootCertificate.Length > 0)
        {
            builder.RootCertificate = _options.RootCertificate;
        }

        // A score row is about 3.5 KB on the wire: Npgsql's default 8 KB write buffer sends a COPY two rows at a time
        // (one send call each, about a tenth of the writer's CPU). Unless the connection string sets its own size.
        var given = new System.Data.Common.DbConnectionStringBuilder { ConnectionString = raw };
        if (!given.ContainsKey("Write Buffer Size") && !given.ContainsKey("WriteBufferSize"))
        {
            builder.WriteBufferSize = DefaultWriteBufferSize;
        }

        return builder;
    }

    /// <summary>Replaces the password file at once (a reader sees the old token or the new one), readable by this user only.</summary>
    private void WriteTokenFile(string token)
    {
        if (TokenFile is null)
        {
            return;
        }

        // A pgpass line: host:port:database:user:password, '*' matching anything; ':' and '\' in a value are escaped.
        var line = string.Create(CultureInfo.InvariantCulture, $"*:*:*:*:{token.Replace("\\", "\\\\", StringComparison.Ordinal).Replace(":", "\\:", StringComparison.Ordinal)}\n");
        lock (_fileLock)
        {
            if (_disposed)
            {
                return;
            }

            var staging = TokenFile + ".new";
            var options = new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write, Share = FileShare.None };
            if (!OperatingSystem.IsWindows())
            {
                options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
            }

            using (var file = new FileStream(staging, options))
            {
                file.Write(Encoding.UTF8.GetBytes(line));
            }

            File.Move(staging, TokenFile, overwrite: true);
        }
    }
}
