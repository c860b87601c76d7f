using HubertEcg.Grains;
using HubertEcg.Storage;
using HubertEcg.Storage.Access;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Npgsql;

namespace HubertEcg.Unit.Tests.Security;

/// <summary>
/// The credential settings of blob storage and Postgres: each kind is checked by its own rules, and no secret (account
/// key, SAS signature, password, token) ever shows in a refusal, an options dump or a message.
/// </summary>
public sealed class AccessOptionsTests
{
    private const string AccountKey = "c2VjcmV0LWFjY291bnQta2V5LXRoYXQtbXVzdC1uZXZlci1iZS1wcmludGVk";
    private const string Signature = "SIGNATURE-abc%2Bdef%3D";
    private const string Password = "pa55-word-never-printed";
    private const string ContainerSas = "http://127.0.0.1:10000/devstoreaccount1/input?sv=2025-01-05&se=2030-01-01T00%3A00%3A00Z&sr=c&sp=rl&sig=" + Signature;

    [Theory]
    [InlineData("DefaultEndpointsProtocol=https;AccountName=a;AccountKey=" + AccountKey + ";EndpointSuffix=core.windows.net", AccountKey)]
    [InlineData("BlobEndpoint=https://a.blob.core.windows.net;SharedAccessSignature=sv=2025&sp=r&sig=" + Signature, Signature)]
    [InlineData(ContainerSas, Signature)]
    [InlineData("Host=db;Username=u;Password=" + Password + ";Database=d", Password)]
    [InlineData("Host=db;Username=u;PWD = '" + Password + "';Database=d", Password)]
    [InlineData("Authorization: Bearer eyJhbGciOiJub25lIn0.eyJhdWQiOiJ4In0.c2ln", "eyJhbGciOiJub25lIn0")]
    public void RedactMasksEverySecretAndKeepsTheRest(string text, string secret)
    {
        var redacted = Secrets.Redact(text);

        Assert.DoesNotContain(secret, redacted, StringComparison.Ordinal);
        Assert.Contains(Secrets.Mask, redacted, StringComparison.Ordinal);
        // What says where is kept: the host, account or container is still there.
        Assert.Equal(text.Split(['=', ':', '/'])[0], redacted.Split(['=', ':', '/'])[0]);
    }

    [Fact]
    public void OptionDumpsShowNoSecret()
    {
        var blobs = new BlobStorageOptions
        {
            Credential = BlobCredential.Sas,
            SasUrl = ContainerSas,
            ConnectionString = $"AccountName=a;AccountKey={AccountKey}",
        }.ToString();
        var postgres = new PostgresOptions { ConnectionString = $"Host=db;Username=u;Password={Password}" }.ToString();

        Assert.DoesNotContain(Signature, blobs, StringComparison.Ordinal);
        Assert.DoesNotContain(AccountKey, blobs, StringComparison.Ordinal);
        Assert.Contains("sp=rl", blobs, StringComparison.Ordinal);
        Assert.DoesNotContain(Password, postgres, StringComparison.Ordinal);
        Assert.Contains("Host=db", postgres, StringComparison.Ordinal);
    }

    [Fact]
    public void EachBlobCredentialNeedsItsOwnSetting()
    {
        Assert.Empty(new BlobStorageOptions { ConnectionString = "UseDevelopmentStorage=true" }.Problems());
        Assert.Empty(new BlobStorageOptions { Credential = BlobCredential.Sas, SasUrl = ContainerSas }.Problems());
        Assert.Empty(new BlobStorageOptions { Credential = BlobCredential.ManagedIdentity, AccountUrl = "https://a.blob.core.windows.net" }.Problems());

        Assert.Contains("BlobStorage:SasUrl is not set", Assert.Single(new BlobStorageOptions { Credential = BlobCredential.Sas }.Problems()), StringComparison.Ordinal);
        Assert.Contains("BlobStorage:AccountUrl is not set", Assert.Single(new BlobStorageOptions { Credential = BlobCredential.Default }.Problems()), StringComparison.Ordinal);
        Assert.Contains(
            "is not an https URL",
            Assert.Single(new BlobStorageOptions { Credential = BlobCredential.WorkloadIdentity, AccountUrl = "http://a.blob.core.windows.net" }.Problems()),
            StringComparison.Ordinal);
        var withQuery = Assert.Single(new BlobStorageOptions { Credential = BlobCredential.AzureCli, AccountUrl = $"https://a.blob.core.windows.net/?sig={Signature}" }.Problems());
        Assert.Contains("carries a query", withQuery, StringComparison.Ordinal);
        Assert.DoesNotContain(Signature, withQuery, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("https://a.blob.core.windows.net/input?sv=2025&sr=c&sp=rl", "carries no SAS signature")]
    [InlineData("https://a.blob.core.windows.net/input/record.hea?sv=2025&sr=b&sp=r&sig=" + Signature, "names a blob")]
    [InlineData("not a url sig=" + Signature, "is not an http(s) URL")]
    public void ABadSasUrlIsRefusedWithoutItsSignature(string url, string reason)
    {
        var problem = Assert.Single(new BlobStorageOptions { Credential = BlobCredential.Sas, SasUrl = url }.Problems());

        Assert.Contains(reason, problem, StringComparison.Ordinal);
        Assert.DoesNotContain(Signature, problem, StringComparison.Ordinal);
    }

    [Fact]
    public void ASasUrlIsTakenApartIntoEndpointContainerAndQuery()
    {
        Assert.True(SasAddress.TryParse(ContainerSas, out var pathStyle, out _));
        Assert.Equal("http://127.0.0.1:10000/devstoreaccount1", pathStyle.ServiceUri.ToString().TrimEnd('/'));
        Assert.Equal("input", pathStyle.Container);
        Assert.Equal("rl", pathStyle.Permissions);
        Assert.StartsWith("sv=", pathStyle.Sas, StringComparison.Ordinal);
        Assert.DoesNotContain(Signature, pathStyle.Scope, StringComparison.Ordinal);

        Assert.True(SasAddress.TryParse($"https://acct.blob.core.windows.net/?sv=2025&ss=b&srt=co&sp=rl&sig={Signature}", out var account, out _));
        Assert.Equal("https://acct.blob.core.windows.net/", account.ServiceUri.ToString());
        Assert.Null(account.Container);
        Assert.Contains("an account SAS", account.Scope, StringComparison.Ordinal);
    }

    [Fact]
    public void PostgresTlsSettingsAreLaidOverTheConnectionString()
    {
        var ca = Path.GetTempFileName();
        try
        {
            var connections = new PostgresConnections(new PostgresOptions
            {
                ConnectionString = "Host=db.example;Username=u;Password=p;SSL Mode=Disable",
                SslMode = "verify-full",
                RootCertificate = ca,
            });

            var built = new NpgsqlConnectionStringBuilder(connections.ConnectionString());
            Assert.Equal(SslMode.VerifyFull, built.SslMode);
            Assert.Equal(ca, built.RootCertificate);
            Assert.Equal("p", built.Password);
            Assert.False(connections.UsesTokens);
        }
        finally
        {
            File.Delete(ca);
        }
    }

    [Theory]
    [InlineData("Host=db;Username=u", PostgresConnections.DefaultWriteBufferSize)]
    [InlineData("Host=db;Username=u;Write Buffer Size=8192", 8192)]
    [InlineData("Host=db;Username=u;WriteBufferSize=32768", 32768)]
    public void TheWriteBufferHoldsManyScoreRowsUnlessTheConnectionStringSetsIt(string connectionString, int expected)
    {
        using var connections = new PostgresConnections(new PostgresOptions { ConnectionString = connectionString });
        Assert.Equal(expected, new NpgsqlConnectionStringBuilder(connections.ConnectionString()).WriteBufferSize);
    }

    [Fact]
    public void BadPostgresTlsSettingsAreRefusedNamingTheirKey()
    {
        var problems = new PostgresOptions
        {
            ConnectionString = $"Host=db;Password={Password}",
            SslMode = "Sometimes",
            RootCertificate = "/no/such/ca.pem",
        }.Problems();

        Assert.Contains(problems, p => p.StartsWith("Postgres:SslMode 'Sometimes' is not one of", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.StartsWith("Postgres:RootCertificate '/no/such/ca.pem' is not a file", StringComparison.Ordinal));
        var broken = Assert.Single(new PostgresOptions { ConnectionString = $"Host=db;Password={Password};Bogus Keyword=1" }.Problems());
        Assert.StartsWith("Postgres:ConnectionString is not a valid Npgsql connection string", broken, StringComparison.Ordinal);
        Assert.DoesNotContain(Password, string.Join(' ', problems) + broken, StringComparison.Ordinal);
    }

    [Fact]
    public async Task WithTokensTheConnectionStringNamesTheTokenFileAndNoPassword()
    {
        var file = PostgresConnections.NewTokenFile();
        using var connections = new PostgresConnections(
            new PostgresOptions { ConnectionString = $"Host=db;Username=u;Password={Password}" }, _ => ValueTask.FromResult("token:with\\specials"), file);

        var built = new NpgsqlConnectionStringBuilder(connections.ConnectionString());
        Assert.Null(built.Password);
        Assert.Equal(file, built.Passfile);
        Assert.False(File.Exists(file));

        Assert.Equal("token:with\\specials", await connections.FetchTokenAsync(CancellationToken.None));
        Assert.Equal("*:*:*:*:token\\:with\\\\specials\n", await File.ReadAllTextAsync(file));
        if (!OperatingSystem.IsWindows())
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(file));
        }

        connections.Dispose();
        Assert.False(File.Exists(file));
    }

    [Fact]
    public void TokensWithoutATokenFileServeDataSourcesOnly()
    {
        using var connections = new PostgresConnections(new PostgresOptions { ConnectionString = "Host=db;Username=u" }, _ => ValueTask.FromResult("t"));

        Assert.True(connections.UsesTokens);
        Assert.Throws<InvalidOperationException>(() => connections.ConnectionString());
        using var dataSource = connections.CreateDataSource();
        Assert.DoesNotContain("Password", dataSource.ConnectionString, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public void ASiloRefusesBadCredentialSettingsWithoutQuotingASecret()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Postgres:ConnectionString"] = $"Host=db;Password={Password};SSL Mode=Sometimes",
            ["BlobStorage:Credential"] = "Sas",
            ["BlobStorage:SasUrl"] = $"https://a.blob.core.windows.net/input/one.hea?sp=r&sig={Signature}",
        }).Build();
        using var services = new ServiceCollection().AddHubertEcgScoring(configuration, startWorkers: false).BuildServiceProvider();

        var postgres = Assert.Throws<OptionsValidationException>(() => services.GetRequiredService<IOptions<PostgresOptions>>().Value);
        var blobs = Assert.Throws<OptionsValidationException>(() => services.GetRequiredService<IOptions<BlobStorageOptions>>().Value);
        var said = ValidatedOptions.RefusalReasons(postgres) + " " + ValidatedOptions.RefusalReasons(blobs);

        Assert.Contains("Postgres:ConnectionString is not a valid Npgsql connection string", said, StringComparison.Ordinal);
        Assert.Contains("BlobStorage:SasUrl", said, StringComparison.Ordinal);
        Assert.DoesNotContain(Password, said, StringComparison.Ordinal);
        Assert.DoesNotContain(Signature, said, StringComparison.Ordinal);
    }
}
