using System.Buffers.Binary;
using System.Text;
using HubertEcg.Worker;

namespace HubertEcg.Storage;

/// <summary>
/// Score rows in Postgres' binary COPY format, for <c>copy scores (model_id, record_id, run_id, probabilities,
/// embedding_packed, windows_used, source_blob, source_etag, scored_at) from stdin (format binary)</c>: the file
/// header, then per row the field count and each field as its length and its bytes in the type's binary form (text
/// as UTF-8, uuid in network byte order, <c>real[]</c> as <see cref="RealArrays"/> encodes it, the packed embedding as
/// bytea, int4 and timestamptz big-endian), then the trailer. A row is encoded in one pass into a caller's buffer and
/// the buffer sent as it fills: Npgsql's binary importer, which writes each field through an awaited call with its
/// own checks, cost the writer about as much CPU per row as encoding it.
/// </summary>
internal static class ScoreCopyRows
{
    private const short Fields = 9;

    // Microseconds from 0001-01-01 to 2000-01-01, the epoch of timestamptz's binary form.
    private static readonly long PostgresEpochTicks = new DateTime(2000, 1, 1, 0, 0, 0, DateTimeKind.Utc).Ticks;

    // As Npgsql encodes text: UTF-8 without a byte order mark, refusing a string that is not valid UTF-16.
    private static readonly UTF8Encoding Utf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>Bytes of the header: the signature, the flags and the header extension's length (both 0).</summary>
    public const int HeaderLength = 19;

    /// <summary>Bytes of the trailer (a field count of -1).</summary>
    public const int TrailerLength = 2;

    public static int WriteHeader(Span<byte> destination)
    {
        // The 11-byte signature holds the byte 0xff, which a UTF-8 literal cannot: written byte by byte.
        ReadOnlySpan<byte> signature = [(byte)'P', (byte)'G', (byte)'C', (byte)'O', (byte)'P', (byte)'Y', (byte)'\n', 0xff, (byte)'\r', (byte)'\n', 0];
        signature.CopyTo(destination);
        BinaryPrimitives.WriteInt32BigEndian(destination[11..], 0);
        BinaryPrimitives.WriteInt32BigEndian(destination[15..], 0);
        return HeaderLength;
    }

    public static int WriteTrailer(Span<byte> destination)
    {
        BinaryPrimitives.WriteInt16BigEndian(destination, -1);
        return TrailerLength;
    }

    /// <summary>The most bytes <see cref="WriteRow"/> can write for <paramref name="row"/>.</summary>
    public static int MaxLength(ScoreRow row) =>
        2 + 9 * 4
        + Utf8.GetMaxByteCount(row.ModelId.Length) + Utf8.GetMaxByteCount(row.RecordId.Length)
        + 16
        + RealArrays.EncodedLength(row.Probabilities.Length)
        + PackedEmbeddings.Length(row.Embedding.Length, EmbeddingPrecision.Fp32)
        + 4
        + Utf8.GetMaxByteCount(row.SourceBlob.Length) + Utf8.GetMaxByteCount(row.SourceETag.Length)
        + 8;

    /// <summary>
    /// Encodes <paramref name="row"/> into <paramref name="destination"/> (at least <see cref="MaxLength"/> bytes);
    /// returns the bytes written. A text field that is not valid UTF-16 is refused naming the record.
    /// </summary>
    public static int WriteRow(ScoreRow row, EmbeddingPrecision precision, Span<byte> destination)
    {
        BinaryPrimitives.WriteInt16BigEndian(destination, Fields);
        var at = 2;
        at += Text(row.ModelId, row, "model id", destination[at..]);
        at += Text(row.RecordId, row, "record id", destination[at..]);

        BinaryPrimitives.WriteInt32BigEndian(destination[at..], 16);
        if (!row.RunId.TryWriteBytes(destination[(at + 4)..], bigEndian: true, out var written) || written != 16)
        {
            throw new InvalidOperationException($"record {row.RecordId}: the run id did not encode in 16 bytes");
        }

        at += 20;
        at += Field(RealArrays.Encode(row.Probabilities, destination[(at + 4)..]), destination[at..]);
        at += Field(PackedEmbeddings.Pack(row.Embedding, precision, destination[(at + 4)..]), destination[at..]);

        BinaryPrimitives.WriteInt32BigEndian(destination[at..], 4);
        BinaryPrimitives.WriteInt32BigEndian(destination[(at + 4)..], row.WindowsUsed);
        at += 8;
        at += Text(row.SourceBlob, row, "source blob", destination[at..]);
        at += Text(row.SourceETag, row, "source ETag", destination[at..]);

        BinaryPrimitives.WriteInt32BigEndian(destination[at..], 8);
        BinaryPrimitives.WriteInt64BigEndian(destination[(at + 4)..], Timestamp(row.ScoredAt));
        return at + 12;
    }

    /// <summary>
    /// A timestamptz's binary form: microseconds since 2000-01-01 UTC, the time taken as UTC whatever its kind (as the
    /// writer always stored it); the largest and smallest <see cref="DateTime"/> as infinity, as Npgsql writes them.
    /// </summary>
    public static long Timestamp(DateTime value) =>
        value == DateTime.MaxValue ? long.MaxValue
        : value == DateTime.MinValue ? long.MinValue
        : (value.Ticks - PostgresEpochTicks) / TimeSpan.TicksPerMicrosecond;

    // A field's length before its bytes, which the caller has written after the 4 bytes of the length.
    private static int Field(int length, Span<byte> destination)
    {
        BinaryPrimitives.WriteInt32BigEndian(destination, length);
        return 4 + length;
    }

    private static int Text(string value, ScoreRow row, string what, Span<byte> destination)
    {
        int length;
        try
        {
            length = Utf8.GetBytes(value, destination[4..]);
        }
        catch (EncoderFallbackException)
        {
            throw new ArgumentException($"record {PostgresText.Printable(row.RecordId)}: the {what} is not valid text (a lone UTF-16 surrogate)");
        }

        return Field(length, destination);
    }
}
