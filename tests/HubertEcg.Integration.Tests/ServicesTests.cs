using System.Text;
using Azure;
using HubertEcg.Client.Commands;
using HubertEcg.Storage;
using HubertEcg.Testing;
using Npgsql;
using NpgsqlTypes;

namespace HubertEcg.Integration.Tests;

public sealed class ServicesTests(PostgresDatabaseFixture database, BlobContainerFixture blobs)
    : IClassFixture<PostgresDatabaseFixture>, IClassFixture<BlobContainerFixture>
{
    [Fact]
    public async Task BlobRoundTripsThroughAzurite()
    {
        var payload = Encoding.UTF8.GetBytes("12-lead ECG bytes " + Guid.NewGuid());
        var blob = blobs.Container.GetBlobClient("records/r1.bin");
        await blob.UploadAsync(new BinaryData(payload));

        var back = await blob.DownloadContentAsync();
        Assert.Equal(payload, back.Value.Content.ToArray());

        var props = await blob.GetPropertiesAsync();
        Assert.Equal(payload.Length, props.Value.ContentLength);
        Assert.False(string.IsNullOrEmpty(props.Value.ETag.ToString()));

        var listed = new List<string>();
        await foreach (var item in blobs.Container.GetBlobsAsync(Azure.Storage.Blobs.Models.BlobTraits.None, Azure.Storage.Blobs.Models.BlobStates.None, "records/", CancellationToken.None))
        {
            listed.Add(item.Name);
        }

        Assert.Equal(["records/r1.bin"], listed);
    }

    [Fact]
    public async Task MissingBlobIsA404()
    {
        var blob = blobs.Container.GetBlobClient("no/such/blob");
        var e = await Assert.ThrowsAsync<RequestFailedException>(() => blob.DownloadContentAsync());
        Assert.Equal(404, e.Status);
    }

    [Fact]
    public async Task RowRoundTripsThroughNpgsql()
    {
        await using (var create = database.DataSource.CreateCommand(
            "create table roundtrip (id text primary key, probs real[] not null, at timestamptz not null)"))
        {
            await create.ExecuteNonQueryAsync();
        }

        var probs = new[] { 0.25f, 0.5f, 1e-7f };
        var at = new DateTime(2026, 11, 24, 7, 0, 0, DateTimeKind.Utc);
        await using (var insert = database.DataSource.CreateCommand("insert into roundtrip values (@id, @p, @at)"))
        {
            insert.Parameters.Add(new NpgsqlParameter("id", NpgsqlDbType.Text) { Value = "rec'; drop table roundtrip; --" });
            insert.Parameters.Add(new NpgsqlParameter("p", NpgsqlDbType.Array | NpgsqlDbType.Real) { Value = probs });
            insert.Parameters.Add(new NpgsqlParameter("at", NpgsqlDbType.TimestampTz) { Value = at });
            Assert.Equal(1, await insert.ExecuteNonQueryAsync());
        }

        await using var select = database.DataSource.CreateCommand("select id, probs, at from roundtrip");
        await using var reader = await select.ExecuteReaderAsync();
        Assert.True(await reader.ReadAsync());
        Assert.Equal("rec'; drop table roundtrip; --", reader.GetString(0));
        Assert.Equal(probs, reader.GetFieldValue<float[]>(1));
        Assert.Equal(at, reader.GetFieldValue<DateTime>(2));
        Assert.False(await reader.ReadAsync());
    }

    [Fact]
    public async Task MigrationsAreRecordedAndSafeToReapply()
    {
        var again = await SchemaMigrator.ApplyAsync(database.DataSource);
        Assert.Empty(again);

        await using var cmd = database.DataSource.CreateCommand("select version, sha256 from schema_migrations order by version");
        await using var reader = await cmd.ExecuteReaderAsync();
        var recorded = new List<(string Version, string Sha)>();
        while (await reader.ReadAsync())
        {
            recorded.Add((reader.GetString(0), reader.GetString(1)));
        }

        Assert.Equal(SchemaMigrator.Migrations.Select(m => (m.Version, m.Sha256)), recorded);
        Assert.NotEmpty(recorded);
    }

    [Fact]
    public async Task SmokeJobWritesBlobAndRow()
    {
        var result = await SmokeJob.RunAsync(
            new PostgresOptions { ConnectionString = database.ConnectionString },
            new BlobStorageOptions { ConnectionString = blobs.ConnectionString });

        await using var cmd = database.DataSource.CreateCommand("select blob_name, blob_sha256 from smoke_checks where id = @id");
        cmd.Parameters.AddWithValue("id", result.RowId);
        await using var reader = await cmd.ExecuteReaderAsync();
        Assert.True(await reader.ReadAsync());
        Assert.Equal(result.BlobName, reader.GetString(0));
        Assert.Equal(result.Sha256, reader.GetString(1));
        Assert.Equal(64, result.Sha256.Length);
    }
}
