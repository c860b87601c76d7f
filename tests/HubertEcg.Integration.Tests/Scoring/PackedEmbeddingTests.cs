using HubertEcg.Storage;
using HubertEcg.Testing;
using HubertEcg.Worker;
using Npgsql;
using NpgsqlTypes;

namespace HubertEcg.Integration.Tests.Scoring;

/// <summary>Embeddings stored packed (0027): both widths, rows from before it, and the SQL reader against the C# one.</summary>
public sealed class PackedEmbeddingTests(PostgresDatabaseFixture database) : IClassFixture<PostgresDatabaseFixture>
{
    private static readonly DateTime At = new(2026, 12, 6, 3, 0, 0, DateTimeKind.Utc);

    private static float[] Embedding(int seed)
    {
        var random = new Random(seed);
        float[] values = [.. Enumerable.Range(0, 509).Select(_ => (random.NextSingle() - 0.5f) * 6), -0f, 3e-6f, -1e-7f];
        return values;
    }

    private static ScoreRow Row(string model, Guid run, int i, string etag = "\"v1\"") => new(
        model, $"rec-{i}", run, Enumerable.Range(0, 164).Select(l => (l + i) / 1000f).ToArray(), Embedding(i), 2, $"p/rec-{i}.npy", etag, At);

    private async Task<(byte[] Packed, float[] FromSql, bool ArrayIsNull)> ReadAsync(string model, string record)
    {
        await using var cmd = database.DataSource.CreateCommand(
            "select embedding_packed, score_embedding(embedding, embedding_packed), embedding is null from scores where model_id = @m and record_id = @r");
        cmd.Parameters.AddWithValue("m", model);
        cmd.Parameters.AddWithValue("r", record);
        await using var reader = await cmd.ExecuteReaderAsync();
        Assert.True(await reader.ReadAsync(), $"{model}/{record} is stored");
        return (reader.GetFieldValue<byte[]>(0), reader.GetFieldValue<float[]>(1), reader.GetBoolean(2));
    }

    [Theory]
    [InlineData(EmbeddingPrecision.Fp32, 4)]
    [InlineData(EmbeddingPrecision.Fp16, 2)]
    public async Task TheWriterStoresTheEmbeddingPackedAndSqlReadsItAsTheToolDoes(EmbeddingPrecision precision, int width)
    {
        var model = $"packed-{width}";
        var store = new RunStore(database.DataSource);
        var run = await Runs.SubmitAsync(store, TestModels.Descriptor(model), "c", "p/", shardSize: 10);
        var writer = new ResultWriter(database.DataSource, embeddingPrecision: precision);
        Assert.Equal(20, await writer.WriteScoresAsync([.. Enumerable.Range(0, 20).Select(i => Row(model, run, i))]));
        // The staging path (a batch with a stored key) stores the same bytes.
        Assert.Equal(5, await writer.WriteScoresAsync([.. Enumerable.Range(18, 7).Select(i => Row(model, run, i))]));

        foreach (var i in new[] { 0, 7, 19, 24 })
        {
            var (packed, fromSql, arrayIsNull) = await ReadAsync(model, $"rec-{i}");
            Assert.True(arrayIsNull);
            Assert.Equal(width, packed[0]);
            Assert.Equal(1 + width * 512, packed.Length);
            var fromTool = PackedEmbeddings.Unpack(packed, $"rec-{i}");
            var expected = precision == EmbeddingPrecision.Fp32 ? Embedding(i) : Embedding(i).Select(v => (float)(Half)v).ToArray();
            Assert.Equal(expected.Select(BitConverter.SingleToInt32Bits), fromTool.Select(BitConverter.SingleToInt32Bits));
            Assert.Equal(expected.Select(BitConverter.SingleToInt32Bits), fromSql.Select(BitConverter.SingleToInt32Bits));
        }
    }

    [Fact]
    public async Task SqlReadsEverySingleAndHalfBitPatternClassExactly()
    {
        float[] singles = [0f, -0f, float.Epsilon, -float.Epsilon, 1.17549435e-38f, 1e-40f, float.MaxValue, float.MinValue, 1f, -2.5f, 0.1f, float.PositiveInfinity, float.NegativeInfinity];
        Half[] halves = [(Half)0f, (Half)(-0f), Half.Epsilon, (Half)6.1035156e-5f, (Half)3e-6f, Half.MaxValue, Half.MinValue, (Half)1f, (Half)(-0.333f), Half.PositiveInfinity, Half.NegativeInfinity];
        var packedSingles = new byte[PackedEmbeddings.Length(singles.Length, EmbeddingPrecision.Fp32)];
        PackedEmbeddings.Pack(singles, EmbeddingPrecision.Fp32, packedSingles);
        var packedHalves = new byte[1 + 2 * halves.Length];
        packedHalves[0] = 2;
        for (var i = 0; i < halves.Length; i++)
        {
            System.Buffers.Binary.BinaryPrimitives.WriteHalfLittleEndian(packedHalves.AsSpan(1 + 2 * i), halves[i]);
        }

        foreach (var (packed, expected) in new[] { (packedSingles, singles), (packedHalves, halves.Select(h => (float)h).ToArray()) })
        {
            await using var cmd = database.DataSource.CreateCommand("select score_embedding(null, @p)");
            cmd.Parameters.Add(new NpgsqlParameter("p", NpgsqlDbType.Bytea) { Value = packed });
            var fromSql = (float[])(await cmd.ExecuteScalarAsync())!;
            Assert.Equal(expected.Select(BitConverter.SingleToInt32Bits), fromSql.Select(BitConverter.SingleToInt32Bits));
            Assert.Equal(expected.Select(BitConverter.SingleToInt32Bits), PackedEmbeddings.Unpack(packed, "r").Select(BitConverter.SingleToInt32Bits));
        }

        await using var bad = database.DataSource.CreateCommand("select score_embedding(null, '\\x030000'::bytea)");
        var error = await Assert.ThrowsAsync<PostgresException>(() => bad.ExecuteScalarAsync());
        Assert.Contains("not a packed embedding", error.MessageText);
    }

    [Fact]
    public async Task ARowStoredBeforeTheMigrationKeepsItsArrayUntilAChangedSourceReplacesIt()
    {
        const string model = "packed-old";
        var store = new RunStore(database.DataSource);
        var first = await Runs.SubmitAsync(store, TestModels.Descriptor(model), "c", "p/", shardSize: 10);
        var old = Row(model, first, 1);
        await Runs.InsertPre0027RowAsync(database.DataSource, old);

        await using (var read = database.DataSource.CreateCommand($"select score_embedding(embedding, embedding_packed) from scores where model_id = '{model}'"))
        {
            Assert.Equal(old.Embedding, (float[])(await read.ExecuteScalarAsync())!);
        }

        var second = await Runs.SubmitAsync(store, TestModels.Descriptor(model), "c", "p/", shardSize: 10);
        Assert.Equal(1, await new ResultWriter(database.DataSource, embeddingPrecision: EmbeddingPrecision.Fp16).WriteScoresAsync([Row(model, second, 1, "\"v2\"")]));
        var (packed, fromSql, arrayIsNull) = await ReadAsync(model, "rec-1");
        Assert.True(arrayIsNull);
        Assert.Equal(2, packed[0]);
        Assert.Equal(Embedding(1).Select(v => (float)(Half)v), fromSql);

        // A row with no embedding at all is refused.
        await using var none = database.DataSource.CreateCommand(
            $"insert into scores (model_id, record_id, run_id, probabilities, windows_used, source_blob, source_etag, scored_at) " +
            $"values ('{model}', 'rec-none', '{second}', '{{0.5}}', 1, 'b', 'e', now())");
        var error = await Assert.ThrowsAsync<PostgresException>(() => none.ExecuteNonQueryAsync());
        Assert.Equal("scores_embedding_stored", error.ConstraintName);
    }
}
