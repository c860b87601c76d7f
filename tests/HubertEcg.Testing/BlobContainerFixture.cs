using Azure.Storage.Blobs;
using Xunit;

namespace HubertEcg.Testing;

/// <summary>A fresh Azurite blob container for one test class, deleted afterwards.</summary>
public sealed class BlobContainerFixture : IAsyncLifetime
{
    public string ConnectionString => LocalServices.Blob;

    public string ContainerName { get; } = "test-" + Guid.NewGuid().ToString("N");

    public BlobContainerClient Container { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Container = new BlobContainerClient(ConnectionString, ContainerName);
        await Container.CreateAsync();
    }

    public async Task DisposeAsync()
    {
        if (Container is not null)
        {
            await Container.DeleteIfExistsAsync();
        }
    }
}
