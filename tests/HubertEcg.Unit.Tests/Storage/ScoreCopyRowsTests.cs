using System.Buffers.Binary;
using System.Text;
using HubertEcg.Storage;
using HubertEcg.Worker;

namespace HubertEcg.Unit.Tests.Storage;

/// <summary>
/// The score rows' binary COPY encoding, decoded here field by field as Postgres' COPY reads it (the round trip
/// through a server is in the result writer's integration tests).
/// </summary>
public sealed class ScoreCopyRowsTests
{
    private static ScoreRow Row(string recordId = "rec-1", int labels = 164, int hidden = 512) => new(
        new string('f', 64),
        recordId,
        Guid.Parse("0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"),
        Enumerable.Range(0, labels).Select(i => i / 200f - 0.1f).ToArray(),
        Enumerable.Range(0, hidden).Select(i => MathF.Sin(i)).ToArray(),
        3,
        "cohort/ä/rec-1.hea",
        "\"0x8DC1234\"",
        new DateTime(2026, 12, 6, 8, 30, 15, DateTimeKind.Utc).AddTicks(1_234_567));

    [Fact]
    public void TheHeaderIsTheBinaryCopySignatureWithNoFlagsAndTheTrailerEndsTheRows()
    {
        var header = new byte[ScoreCopyRows.HeaderLength];
        Assert.Equal(19, ScoreCopyRows.WriteHeader(header));
        Assert.Equal(new byte[] { 0x50, 0x47, 0x43, 0x4f, 0x50, 0x59, 0x0a, 0xff, 0x0d, 0x0a, 0x00, 0, 0, 0, 0, 0, 0, 0, 0 }, header);
        var trailer = new byte[2];
        Assert.Equal(2, ScoreCopyRows.WriteTrailer(trailer));
        Assert.Equal(new byte[] { 0xff, 0xff }, trailer);
    }

    [Theory]
    [InlineData(EmbeddingPrecision.Fp32)]
    [InlineData(EmbeddingPrecision.Fp16)]
    public void ARowIsItsNineFieldsInTheirBinaryForms(EmbeddingPrecision precision)
    {
        var row = Row("récord-é1");
        var buffer = new byte[ScoreCopyRows.MaxLength(row)];
        var length = ScoreCopyRows.WriteRow(row, precision, buffer);
        var fields = Fields(buffer.AsSpan(0, length));

        Assert.Equal(9, fields.Count);
        Assert.Equal(row.ModelId, Encoding.UTF8.GetString(fields[0]));
        Assert.Equal(row.RecordId, Encoding.UTF8.GetString(fields[1]));
        // uuid in network order: the bytes in the order of the text form's hex digits.
        Assert.Equal(Convert.FromHexString(row.RunId.ToString("N")), fields[2]);

        var array = fields[3];
        Assert.Equal(1, BinaryPrimitives.ReadInt32BigEndian(array));
        Assert.Equal(0, BinaryPrimitives.ReadInt32BigEndian(array.AsSpan(4)));
        Assert.Equal(700, BinaryPrimitives.ReadInt32BigEndian(array.AsSpan(8)));
        Assert.Equal(row.Probabilities.Length, BinaryPrimitives.ReadInt32BigEndian(array.AsSpan(12)));
        Assert.Equal(1, BinaryPrimitives.ReadInt32BigEndian(array.AsSpan(16)));
        for (var i = 0; i < row.Probabilities.Length; i++)
        {
            Assert.Equal(4, BinaryPrimitives.ReadInt32BigEndian(array.AsSpan(20 + 8 * i)));
            Assert.Equal(row.Probabilities[i], BinaryPrimitives.ReadSingleBigEndian(array.AsSpan(24 + 8 * i)));
        }

        var packed = new byte[PackedEmbeddings.Length(row.Embedding.Length, EmbeddingPrecision.Fp32)];
        Assert.Equal(packed.AsSpan(0, PackedEmbeddings.Pack(row.Embedding, precision, packed)).ToArray(), fields[4]);
        Assert.Equal(3, BinaryPrimitives.ReadInt32BigEndian(fields[5]));
        Assert.Equal(row.SourceBlob, Encoding.UTF8.GetString(fields[6]));
        Assert.Equal(row.SourceETag, Encoding.UTF8.GetString(fields[7]));
        // Microseconds since 2000-01-01 UTC, the ticks below a microsecond dropped.
        var micros = BinaryPrimitives.ReadInt64BigEndian(fields[8]);
        Assert.Equal(new DateTime(2026, 12, 6, 8, 30, 15, 123, 456, DateTimeKind.Utc), new DateTime(2000, 1, 1, 0, 0, 0, DateTimeKind.Utc).AddTicks(micros * 10));
    }

    [Fact]
    public void TheBoundHoldsForRowsOfAnyShape()
    {
        var random = new Random(7);
        for (var i = 0; i < 200; i++)
        {
            var id = new string(Enumerable.Range(0, random.Next(0, 80)).Select(_ => (char)random.Next(0x20, 0xd7ff)).ToArray());
            var row = Row(id, random.Next(0, 300), random.Next(0, 1100));
            var buffer = new byte[ScoreCopyRows.MaxLength(row)];
            var length = ScoreCopyRows.WriteRow(row, EmbeddingPrecision.Fp32, buffer);
            Assert.Equal(length, Fields(buffer.AsSpan(0, length)).Sum(f => 4 + f.Length) + 2);
        }
    }

    [Fact]
    public void NoProbabilitiesIsTheEmptyArray()
    {
        var row = Row(labels: 0);
        var buffer = new byte[ScoreCopyRows.MaxLength(row)];
        var fields = Fields(buffer.AsSpan(0, ScoreCopyRows.WriteRow(row, EmbeddingPrecision.Fp32, buffer)));
        Assert.Equal(new byte[] { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0xbc }, fields[3]);
    }

    [Fact]
    public void TextThatIsNotValidUtf16IsRefusedNamingTheRecord()
    {
        var row = Row("rec-77") with { SourceBlob = "cohort/\ud800.dat" };
        var error = Assert.Throws<ArgumentException>(() => ScoreCopyRows.WriteRow(row, EmbeddingPrecision.Fp32, new byte[ScoreCopyRows.MaxLength(row)]));
        Assert.Contains("record rec-77", error.Message);
        Assert.Contains("source blob", error.Message);
    }

    [Fact]
    public void TheExtremesOfDateTimeAreInfinity()
    {
        Assert.Equal(long.MaxValue, ScoreCopyRows.Timestamp(DateTime.MaxValue));
        Assert.Equal(long.MinValue, ScoreCopyRows.Timestamp(DateTime.MinValue));
        Assert.Equal(0, ScoreCopyRows.Timestamp(new DateTime(2000, 1, 1, 0, 0, 0, DateTimeKind.Utc)));
        Assert.Equal(-1, ScoreCopyRows.Timestamp(new DateTime(1999, 12, 31, 23, 59, 59, 999, 999, DateTimeKind.Utc)));
    }

    // A row as COPY reads it: a field count, then each field's length (never -1 here: no nulls) and bytes.
    private static List<byte[]> Fields(ReadOnlySpan<byte> row)
    {
        var count = BinaryPrimitives.ReadInt16BigEndian(row);
        var at = 2;
        var fields = new List<byte[]>();
        for (var i = 0; i < count; i++)
        {
            var length = BinaryPrimitives.ReadInt32BigEndian(row[at..]);
            Assert.True(length >= 0, $"field {i} has length {length}");
            fields.Add(row.Slice(at + 4, length).ToArray());
            at += 4 + length;
        }

        Assert.Equal(row.Length, at);
        return fields;
    }
}
