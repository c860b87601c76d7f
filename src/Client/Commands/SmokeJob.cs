using System.Security.Cryptography;
using System.Text;
using Azure;
using Npgsql;
using HubertEcg.Storage;
using HubertEcg.Storage.Access;

namespace HubertEcg.Client.Commands;

/// <summary>The result of <see cref="SmokeJob"/>: what was written where.</summary>
public sealed record SmokeResult(string Container, string BlobName, string Sha256, long RowId, IReadOnlyList<string> MigrationsApplied);

/// <summary>Proves the pieces talk: applies migrations, writes a blob, reads it back, records a row in Postgres.</summary>
public static class SmokeJob
{
    public static async Task<SmokeResult> RunAsync(PostgresOptions postgres, BlobStorageOptions blobs, CancellationToken cancellationToken = default)
    {
        await using var dataSource = new PostgresConnections(postgres).CreateDataSource();
        var applied = postgres.ApplyMigrations
            ? await SchemaMigrator.ApplyAsync(dataSource, cancellationToken)
            : [];

        var service = BlobServiceClients.Create(blobs);
        var container = service.GetBlobContainerClient("smoke");
        await BlobServiceClients.EnsureContainerAsync(container, cancellationToken);
        var name = $"smoke-{DateTimeOffset.UtcNow:yyyyMMddTHHmmssfff}-{Guid.NewGuid():N}.txt";
        var payload = Encoding.UTF8.GetBytes($"hubert-ecg smoke check {name}");
        var blob = container.GetBlobClient(name);
        try
        {
            await blob.UploadAsync(new BinaryData(payload), cancellationToken);
        }
        catch (RequestFailedException e) when (e.Status == 403)
        {
            throw BlobAccessDeniedException.From(e, service, container.Name, BlobAction.Write, name);
        }

        var downloaded = await blob.DownloadContentAsync(cancellationToken);
        var back = downloaded.Value.Content.ToArray();
        if (!back.AsSpan().SequenceEqual(payload))
        {
            throw new InvalidOperationException($"blob {name} read back {back.Length} bytes that differ from the {payload.Length} written");
        }

        var sha = Convert.ToHexStringLower(SHA256.HashData(back));
        await using var cmd = dataSource.CreateCommand("insert into smoke_checks(blob_name, blob_sha256) values (@n, @s) returning id");
        cmd.Parameters.AddWithValue("n", name);
        cmd.Parameters.AddWithValue("s", sha);
        var id = (long)(await cmd.ExecuteScalarAsync(cancellationToken))!;
        return new SmokeResult(container.Name, name, sha, id, applied);
    }
}
