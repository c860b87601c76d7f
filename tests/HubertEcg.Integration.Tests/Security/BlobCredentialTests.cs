using System.Net;
using System.Security.Authentication;
using System.Text;
using System.Text.Json;
using Azure;
using Azure.Core;
using Azure.Core.Pipeline;
using Azure.Storage.Blobs;
using Azure.Storage.Sas;
using HubertEcg.Grains;
using HubertEcg.Integration.Tests.Scoring;
using HubertEcg.Storage;
using HubertEcg.Storage.Access;
using HubertEcg.Testing;
using Microsoft.Extensions.DependencyInjection;

namespace HubertEcg.Integration.Tests.Security;

/// <summary>
/// Blob storage reached without an account key (issue 16): a read-only container SAS serves a whole run, and a step
/// that writes is refused with the missing permission and the container named; an Entra ID token credential reaches
/// Azurite over HTTPS (<c>--oauth basic</c>, a certificate the test makes, trusted through the test's CA alone) for a
/// whole run, and an expired token or an untrusted certificate is refused.
/// </summary>
public sealed class BlobCredentialTests(PostgresDatabaseFixture database, BlobContainerFixture blobs)
    : IClassFixture<PostgresDatabaseFixture>, IClassFixture<BlobContainerFixture>
{
    [Fact]
    public async Task AReadOnlyContainerSasServesARunAndAWriteIsRefusedNamingThePermissionAndTheContainer()
    {
        using var model = new TinyModel(seed: 161);
        var cohort = await SyntheticCohort.UploadAsync(blobs.Container, "sas/", 8);
        var sasUrl = blobs.Container.GenerateSasUri(
            BlobContainerSasPermissions.Read | BlobContainerSasPermissions.List, DateTimeOffset.UtcNow.AddHours(1)).ToString();
        var signature = HttpUtility(sasUrl, "sig");
        var sas = new BlobStorageOptions { Credential = BlobCredential.Sas, SasUrl = sasUrl };

        // Listing and reading through the SAS.
        var store = new BlobStore(BlobServiceClients.Create(sas));
        var listed = await store.ListPageAsync(blobs.ContainerName, "sas/", null, 1000);
        Assert.Equal(await CountAsync(blobs.Container, "sas/"), listed.Items.Count);
        var chunk = await store.ReadRangeAsync(blobs.ContainerName, listed.Items[0].Name, 0, 16, null);
        Assert.Equal(listed.Items[0].ETag, chunk.ETag);

        // Another container is out of the SAS's reach: refused, naming that container.
        var other = await Assert.ThrowsAsync<BlobAccessDeniedException>(() => store.ListPageAsync("another-container", "", null, 10));
        Assert.Equal("another-container", other.Container);
        Assert.Contains("refused listing container 'another-container'", other.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(signature, other.Message, StringComparison.Ordinal);

        // A whole run, the silo reading through the SAS alone.
        await using (var cluster = await ScoringCluster.StartAsync(
                         1, database.ConnectionString, blobs.ConnectionString,
                         settings: new Dictionary<string, string?> { ["BlobStorage:Credential"] = "Sas", ["BlobStorage:SasUrl"] = sasUrl, ["BlobStorage:ConnectionString"] = "" }))
        {
            var runs = new RunStore(database.DataSource);
            var runId = await Runs.SubmitAsync(runs, model.Descriptor, blobs.ContainerName, "sas/", shardSize: 4, modelPath: model.Path);
            var run = await Runs.WaitFinishedAsync(runs, runId, TimeSpan.FromMinutes(3));
            Assert.Equal((RunState.Completed, (long)cohort.GoodRecords.Count), (run.State, run.RecordsDone));
        }

        // Uploading into the container needs Write: refused in one line that names it and the container, no trace.
        var folder = Directory.CreateTempSubdirectory("hubert-sas-upload-");
        try
        {
            await File.WriteAllTextAsync(Path.Combine(folder.FullName, "a.txt"), "one record");
            var (code, output, error) = await CliHarness.RunAsync(
                database.ConnectionString, blobs.ConnectionString,
                "input", "upload", folder.FullName, "--to", $"{blobs.ContainerName}/uploaded/",
                "--set", "BlobStorage:Credential=Sas", "--set", $"BlobStorage:SasUrl={sasUrl}");

            Assert.Equal(1, code);
            Assert.Equal("", output);
            var line = Assert.Single(error.Split('\n', StringSplitOptions.RemoveEmptyEntries));
            Assert.StartsWith($"error: blob storage refused writing to container '{blobs.ContainerName}' (AuthorizationPermissionMismatch)", line, StringComparison.Ordinal);
            Assert.Contains("a SAS needs w (Write) and c (Create)", line, StringComparison.Ordinal);
            Assert.Contains($"a container SAS for '{blobs.ContainerName}' (permissions 'rl')", line, StringComparison.Ordinal);
            Assert.DoesNotContain(signature, line, StringComparison.Ordinal);
            Assert.DoesNotContain(" at ", line, StringComparison.Ordinal);
        }
        finally
        {
            folder.Delete(recursive: true);
        }

        Assert.Empty((await store.ListPageAsync(blobs.ContainerName, "uploaded/", null, 10)).Items);
    }

    [Fact]
    public async Task AnEntraIdTokenReachesAzuriteOverHttpsForARunAndIsRefusedWhenExpiredOrWhenTheCertificateIsNotTrusted()
    {
        using var certificates = TestCertificates.Create(Path.Combine(Path.GetTempPath(), "hubert-oauth-" + Guid.NewGuid().ToString("N")[..12]));
        var server = certificates.IssueServer("azurite", ["localhost"], [IPAddress.Loopback]);
        await using var azurite = await PrivateAzurite.StartAsync(server);
        var credential = new FakeEntraCredential(TimeSpan.FromHours(1));
        var options = new BlobStorageOptions { Credential = BlobCredential.Default, AccountUrl = azurite.BlobEndpoint };
        var service = BlobServiceClients.Create(options, TrustingTestCa(certificates), credential);

        // Basic OAuth checks no permission: the test writes its input through the same credential.
        var container = service.GetBlobContainerClient("oauth-input");
        await container.CreateAsync();
        var cohort = await SyntheticCohort.UploadAsync(container, "o/", 6);
        Assert.Contains("https://storage.azure.com/.default", credential.Scopes);
        var store = new BlobStore(service);
        Assert.Equal(await CountAsync(container, "o/"), (await store.ListPageAsync("oauth-input", "o/", null, 1000)).Items.Count);

        // A whole run, the silo signing in with the token credential and trusting the test's CA.
        using var model = new TinyModel(seed: 162);
        await using (var cluster = await ScoringCluster.StartAsync(
                         1, database.ConnectionString, blobs.ConnectionString,
                         settings: new Dictionary<string, string?>
                         {
                             ["BlobStorage:Credential"] = "Default",
                             ["BlobStorage:AccountUrl"] = azurite.BlobEndpoint,
                         },
                         services: s =>
                         {
                             s.AddSingleton<TokenCredential>(credential);
                             s.AddSingleton(TrustingTestCa(certificates));
                         }))
        {
            var runs = new RunStore(database.DataSource);
            var runId = await Runs.SubmitAsync(runs, model.Descriptor, "oauth-input", "o/", shardSize: 3, modelPath: model.Path);
            var run = await Runs.WaitFinishedAsync(runs, runId, TimeSpan.FromMinutes(3));
            Assert.Equal((RunState.Completed, (long)cohort.GoodRecords.Count), (run.State, run.RecordsDone));
        }

        // Azurite does check the token: an expired one is refused.
        var expired = new BlobStore(BlobServiceClients.Create(options, TrustingTestCa(certificates), new FakeEntraCredential(TimeSpan.FromMinutes(-5))));
        var refused = await Assert.ThrowsAsync<BlobAccessDeniedException>(() => expired.ListPageAsync("oauth-input", "o/", null, 10));
        Assert.Contains("refused listing container 'oauth-input' (AuthenticationFailed)", refused.Message, StringComparison.Ordinal);
        Assert.Contains("Entra ID (Default)", refused.Message, StringComparison.Ordinal);

        // The certificate is trusted through the test's CA only: the machine's own trust store does not know it.
        var untrusted = new BlobClientOptions();
        untrusted.Retry.MaxRetries = 0;
        var plain = new BlobStore(BlobServiceClients.Create(options, untrusted, credential));
        var tls = await Assert.ThrowsAnyAsync<Exception>(() => plain.ListPageAsync("oauth-input", "o/", null, 10));
        Assert.True(Chain(tls).Any(e => e is AuthenticationException), $"expected a TLS failure, got {tls}");
    }

    /// <summary>A transport whose certificate check trusts the test's CA alone (never verification turned off).</summary>
    private static BlobClientOptions TrustingTestCa(TestCertificates certificates)
    {
        var options = new BlobClientOptions
        {
            Transport = new HttpClientTransport(new HttpClientHandler { ServerCertificateCustomValidationCallback = TestCertificates.TrustsOnly(certificates.Authority) }),
        };
        options.Retry.MaxRetries = 1;
        return options;
    }

    private static async Task<int> CountAsync(BlobContainerClient container, string prefix)
    {
        var count = 0;
        await foreach (var _ in container.GetBlobsAsync(Azure.Storage.Blobs.Models.BlobTraits.None, Azure.Storage.Blobs.Models.BlobStates.None, prefix, CancellationToken.None))
        {
            count++;
        }

        return count;
    }

    private static IEnumerable<Exception> Chain(Exception e)
    {
        for (Exception? current = e; current is not null; current = current.InnerException)
        {
            yield return current;
            if (current is AggregateException aggregate)
            {
                foreach (var inner in aggregate.InnerExceptions.SelectMany(Chain))
                {
                    yield return inner;
                }
            }
        }
    }

    private static string HttpUtility(string url, string parameter) =>
        new Uri(url).Query.TrimStart('?').Split('&').Select(p => p.Split('=', 2)).Single(p => p[0] == parameter)[1];

    /// <summary>
    /// Hands out unsigned JWTs of the shape Entra ID issues for storage (issuer <c>https://sts.windows.net/TENANT/</c>,
    /// audience <c>https://storage.azure.com</c>), valid for <c>lifetime</c> from now (negative: already expired).
    /// </summary>
    private sealed class FakeEntraCredential(TimeSpan lifetime) : TokenCredential
    {
        private readonly List<string> _scopes = [];

        public IReadOnlyList<string> Scopes
        {
            get
            {
                lock (_scopes)
                {
                    return [.. _scopes];
                }
            }
        }

        public override AccessToken GetToken(TokenRequestContext requestContext, CancellationToken cancellationToken)
        {
            lock (_scopes)
            {
                _scopes.AddRange(requestContext.Scopes);
            }

            var now = DateTimeOffset.UtcNow;
            var expires = now + lifetime;
            var claims = new Dictionary<string, object>
            {
                ["aud"] = "https://storage.azure.com",
                ["iss"] = "https://sts.windows.net/00000000-0000-0000-0000-0000000000aa/",
                ["iat"] = (now - TimeSpan.FromHours(2)).ToUnixTimeSeconds(),
                ["nbf"] = (now - TimeSpan.FromHours(2)).ToUnixTimeSeconds(),
                ["exp"] = expires.ToUnixTimeSeconds(),
                ["oid"] = "00000000-0000-0000-0000-0000000000bb",
            };
            var token = $"{Part(new { alg = "RS256", typ = "JWT" })}.{Part(claims)}.{Base64Url(Encoding.ASCII.GetBytes("unsigned"))}";
            // The SDK must not think the token expired, or it asks again for every request; the server judges it.
            return new AccessToken(token, lifetime > TimeSpan.Zero ? expires : now.AddHours(1));
        }

        public override ValueTask<AccessToken> GetTokenAsync(TokenRequestContext requestContext, CancellationToken cancellationToken) =>
            ValueTask.FromResult(GetToken(requestContext, cancellationToken));

        private static string Part(object value) => Base64Url(JsonSerializer.SerializeToUtf8Bytes(value));

        private static string Base64Url(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');
    }
}
