using HubertEcg.Storage;

namespace HubertEcg.Unit.Tests.Storage;

public sealed class PackedEmbeddingsTests
{
    private static float[] Values(int n, int seed)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, n).Select(_ => (random.NextSingle() - 0.5f) * 8).ToArray();
    }

    [Fact]
    public void SinglePrecisionRoundTripsBitForBit()
    {
        float[] values = [.. Values(512, 1), 0f, -0f, float.Epsilon, -float.Epsilon, float.MaxValue, float.MinValue, 1e-40f];
        var packed = new byte[PackedEmbeddings.Length(values.Length, EmbeddingPrecision.Fp32)];
        Assert.Equal(1 + 4 * values.Length, PackedEmbeddings.Pack(values, EmbeddingPrecision.Fp32, packed));
        Assert.Equal(4, packed[0]);
        var back = PackedEmbeddings.Unpack(packed, "r1");
        Assert.Equal(values.Select(BitConverter.SingleToInt32Bits), back.Select(BitConverter.SingleToInt32Bits));
    }

    [Fact]
    public void HalfPrecisionRoundsEachValueToTheNearestHalf()
    {
        var values = Values(512, 2);
        var packed = new byte[PackedEmbeddings.Length(values.Length, EmbeddingPrecision.Fp32)];
        Assert.Equal(1 + 2 * values.Length, PackedEmbeddings.Pack(values, EmbeddingPrecision.Fp16, packed));
        Assert.Equal(2, packed[0]);
        var back = PackedEmbeddings.Unpack(packed.AsSpan(0, 1 + 2 * values.Length), "r2");
        Assert.Equal(values.Length, back.Length);
        for (var i = 0; i < values.Length; i++)
        {
            Assert.Equal((float)(Half)values[i], back[i]);
            Assert.True(Math.Abs(back[i] - values[i]) <= Math.Abs(values[i]) * Math.Pow(2, -11) + 3e-8, $"value {i}: {values[i]} stored as {back[i]}");
        }
    }

    [Fact]
    public void ARowBeyondHalfPrecisionsRangeIsStoredInSinglePrecision()
    {
        float[] values = [1f, 70000f, -2f];
        var packed = new byte[PackedEmbeddings.Length(values.Length, EmbeddingPrecision.Fp32)];
        Assert.Equal(13, PackedEmbeddings.Pack(values, EmbeddingPrecision.Fp16, packed));
        Assert.Equal(4, packed[0]);
        Assert.Equal(values, PackedEmbeddings.Unpack(packed, "r3"));
        float[] notANumber = [1f, float.NaN];
        Assert.Equal(9, PackedEmbeddings.Pack(notANumber, EmbeddingPrecision.Fp16, packed));
    }

    [Fact]
    public void AMalformedStoredEmbeddingNamesTheRecord()
    {
        var empty = Assert.Throws<InvalidDataException>(() => PackedEmbeddings.Unpack([], "rec-9"));
        Assert.Contains("rec-9", empty.Message);
        var width = Assert.Throws<InvalidDataException>(() => PackedEmbeddings.Unpack([3, 0, 0, 0], "rec-10"));
        Assert.Contains("rec-10", width.Message);
        Assert.Contains("width byte 3", width.Message);
        var ragged = Assert.Throws<InvalidDataException>(() => PackedEmbeddings.Unpack([4, 0, 0, 0], "rec-11"));
        Assert.Contains("4 bytes", ragged.Message);
    }

    [Theory]
    [InlineData("fp32", EmbeddingPrecision.Fp32)]
    [InlineData(" FP16 ", EmbeddingPrecision.Fp16)]
    public void PrecisionNamesParse(string text, EmbeddingPrecision expected) => Assert.Equal(expected, PackedEmbeddings.Parse(text));

    [Fact]
    public void AnUnknownPrecisionIsRefusedByTheOptionsAndTheParser()
    {
        var options = new PostgresOptions { ConnectionString = "Host=localhost", EmbeddingPrecision = "int8" };
        Assert.Contains(options.Problems(), p => p.Contains("Postgres:EmbeddingPrecision 'int8'", StringComparison.Ordinal));
        Assert.Contains("int8", Assert.Throws<ArgumentException>(() => PackedEmbeddings.Parse("int8")).Message);
        Assert.Empty(new PostgresOptions { ConnectionString = "Host=localhost", EmbeddingPrecision = "fp16" }.Problems());
    }
}
