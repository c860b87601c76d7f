using System.Runtime.CompilerServices;
using Azure;
using Azure.Core;
using Azure.Storage.Blobs;

namespace HubertEcg.Storage.Access;

/// <summary>
/// Builds the one <see cref="BlobServiceClient"/> of a process from <see cref="BlobStorageOptions"/>: a connection
/// string, a container or account SAS URL, or an Entra ID credential at the account URL. The silo and the
/// command-line tool build theirs here, so both read the same settings.
/// </summary>
public static class BlobServiceClients
{
    private static readonly ConditionalWeakTable<BlobServiceClient, string> Descriptions = [];

    /// <summary>
    /// The client the settings describe (checked first: throws <see cref="InvalidOperationException"/> naming the key).
    /// <paramref name="clientOptions"/> replaces the SDK's defaults (a transport that trusts a private CA);
    /// <paramref name="credential"/> replaces the Entra ID credential the settings name (tests).
    /// </summary>
    public static BlobServiceClient Create(BlobStorageOptions options, BlobClientOptions? clientOptions = null, TokenCredential? credential = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        var problems = options.Problems();
        if (problems.Count > 0)
        {
            throw new InvalidOperationException(string.Join("; ", problems));
        }

        BlobServiceClient client;
        string description;
        switch (options.Credential)
        {
            case BlobCredential.ConnectionString:
                client = new BlobServiceClient(options.ConnectionString, clientOptions);
                description = "BlobStorage:ConnectionString";
                break;
            case BlobCredential.Sas:
                if (!SasAddress.TryParse(options.SasUrl, out var sas, out var why))
                {
                    throw new InvalidOperationException($"BlobStorage:SasUrl {why}");
                }

                client = new BlobServiceClient(sas.ServiceUri, new AzureSasCredential(sas.Sas), clientOptions);
                description = $"BlobStorage:SasUrl, {sas.Scope}";
                break;
            default:
                var kind = EntraCredentials.Of(options.Credential)!.Value;
                client = new BlobServiceClient(
                    new Uri(options.AccountUrl), credential ?? EntraCredentials.Create(kind, options.ManagedIdentityClientId), clientOptions);
                description = $"Entra ID ({kind}) at {options.AccountUrl}";
                break;
        }

        Descriptions.AddOrUpdate(client, description);
        return client;
    }

    /// <summary>Which configured credential <paramref name="client"/> signs in with, for messages; never a secret.</summary>
    public static string Describe(BlobServiceClient client) =>
        Descriptions.TryGetValue(client, out var description) ? description : "the configured credential";

    /// <summary>
    /// Creates <paramref name="container"/> when it is missing and the credential may; a credential that may not (a
    /// container SAS, a role without container rights) leaves it to the first write, whose failure names what is missing.
    /// </summary>
    public static async Task EnsureContainerAsync(BlobContainerClient container, CancellationToken cancellationToken)
    {
        try
        {
            await container.CreateIfNotExistsAsync(cancellationToken: cancellationToken);
        }
        catch (RequestFailedException e) when (e.Status == 403)
        {
            // Not allowed to create containers: the container may exist all the same.
        }
    }
}
