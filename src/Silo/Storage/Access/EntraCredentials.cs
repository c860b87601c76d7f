using Azure.Core;
using Azure.Identity;

namespace HubertEcg.Storage.Access;

/// <summary>The <c>Azure.Identity</c> credential of each configured kind.</summary>
public static class EntraCredentials
{
    /// <summary>
    /// A credential of <paramref name="kind"/>; <paramref name="clientId"/> (empty: none) picks a user-assigned managed
    /// identity, or the workload identity's application when the environment does not say it.
    /// </summary>
    public static TokenCredential Create(EntraCredential kind, string? clientId)
    {
        var id = string.IsNullOrWhiteSpace(clientId) ? null : clientId.Trim();
        return kind switch
        {
            EntraCredential.Default => id is null
                ? new DefaultAzureCredential()
                : new DefaultAzureCredential(new DefaultAzureCredentialOptions { ManagedIdentityClientId = id, WorkloadIdentityClientId = id }),
            EntraCredential.ManagedIdentity => new ManagedIdentityCredential(
                id is null ? ManagedIdentityId.SystemAssigned : ManagedIdentityId.FromUserAssignedClientId(id)),
            EntraCredential.WorkloadIdentity => id is null
                ? new WorkloadIdentityCredential()
                : new WorkloadIdentityCredential(new WorkloadIdentityCredentialOptions { ClientId = id }),
            EntraCredential.AzureCli => new AzureCliCredential(),
            _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "unknown Entra ID credential"),
        };
    }

    /// <summary>The Entra ID credential kind of a blob credential, or null for a connection string or SAS.</summary>
    public static EntraCredential? Of(BlobCredential credential) => credential switch
    {
        BlobCredential.Default => EntraCredential.Default,
        BlobCredential.ManagedIdentity => EntraCredential.ManagedIdentity,
        BlobCredential.WorkloadIdentity => EntraCredential.WorkloadIdentity,
        BlobCredential.AzureCli => EntraCredential.AzureCli,
        _ => null,
    };

    /// <summary>The Entra ID credential kind of a Postgres credential, or null for a password.</summary>
    public static EntraCredential? Of(PostgresCredential credential) => credential switch
    {
        PostgresCredential.Default => EntraCredential.Default,
        PostgresCredential.ManagedIdentity => EntraCredential.ManagedIdentity,
        PostgresCredential.WorkloadIdentity => EntraCredential.WorkloadIdentity,
        PostgresCredential.AzureCli => EntraCredential.AzureCli,
        _ => null,
    };
}
