using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Microsoft.Win32.SafeHandles;

namespace HubertEcg.Inference.Model;

/// <summary>Element types of safetensors files that this project converts to float32.</summary>
public enum SafetensorsDType
{
    F32,
    F16,
    BF16,
    F64,
}

/// <summary>One tensor's entry in a safetensors header.</summary>
public sealed record SafetensorsEntry(string Name, string DType, IReadOnlyList<long> Shape, long Begin, long End)
{
    public long ElementCount => Shape.Aggregate(1L, (a, b) => a * b);
}

/// <summary>
/// Reads the safetensors format: an 8-byte little-endian header length, a JSON header mapping each tensor name
/// to its dtype, shape and byte range (relative to the end of the header), then raw little-endian data.
/// Every range is checked against the file's size when the file is opened.
/// </summary>
public sealed class SafetensorsFile : IDisposable
{
    /// <summary>Largest header accepted (the format's reference implementation uses the same 100 MB bound).</summary>
    public const long MaxHeaderBytes = 100_000_000;

    private static readonly Dictionary<string, int> ElementSizes = new(StringComparer.Ordinal)
    {
        ["BOOL"] = 1,
        ["U8"] = 1,
        ["I8"] = 1,
        ["F8_E5M2"] = 1,
        ["F8_E4M3"] = 1,
        ["I16"] = 2,
        ["U16"] = 2,
        ["F16"] = 2,
        ["BF16"] = 2,
        ["I32"] = 4,
        ["U32"] = 4,
        ["F32"] = 4,
        ["F64"] = 8,
        ["I64"] = 8,
        ["U64"] = 8,
    };

    private readonly SafeFileHandle _handle;
    private readonly long _dataStart;
    private readonly Dictionary<string, SafetensorsEntry> _entries;

    private SafetensorsFile(string path, SafeFileHandle handle, long dataStart, Dictionary<string, SafetensorsEntry> entries, IReadOnlyDictionary<string, string> metadata)
    {
        Path = path;
        _handle = handle;
        _dataStart = dataStart;
        _entries = entries;
        Metadata = metadata;
    }

    public string Path { get; }

    public IReadOnlyDictionary<string, string> Metadata { get; }

    public IEnumerable<string> Names => _entries.Keys;

    public IReadOnlyCollection<SafetensorsEntry> Entries => _entries.Values;

    public static SafetensorsFile Open(string path)
    {
        SafeFileHandle handle;
        try
        {
            handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new CheckpointFormatException(path, null, $"cannot open the weights: {e.Message}", e);
        }

        try
        {
            var (dataStart, entries, metadata) = ReadHeader(path, handle);
            return new SafetensorsFile(path, handle, dataStart, entries, metadata);
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    public bool Contains(string name) => _entries.ContainsKey(name);

    public SafetensorsEntry Entry(string name) =>
        _entries.TryGetValue(name, out var entry) ? entry : throw new CheckpointFormatException(Path, name, "tensor is missing");

    /// <summary>Reads a tensor as float32 (F32, F16, BF16 or F64 data).</summary>
    public float[] ReadSingle(string name)
    {
        var entry = Entry(name);
        if (!Enum.TryParse<SafetensorsDType>(entry.DType, ignoreCase: false, out var dtype) || !Enum.IsDefined(dtype))
        {
            throw new CheckpointFormatException(Path, name, $"dtype {entry.DType} is not supported (expected F32, F16, BF16 or F64)");
        }

        if (entry.ElementCount > Array.MaxLength || entry.End - entry.Begin > Array.MaxLength)
        {
            throw new CheckpointFormatException(Path, name, $"tensor of {entry.ElementCount} elements is too large to load");
        }

        var count = (int)entry.ElementCount;
        var bytes = new byte[entry.End - entry.Begin];
        var read = 0;
        while (read < bytes.Length)
        {
            var n = RandomAccess.Read(_handle, bytes.AsSpan(read), _dataStart + entry.Begin + read);
            if (n == 0)
            {
                throw new CheckpointFormatException(Path, name, "the file ends inside the tensor's data");
            }

            read += n;
        }

        var result = new float[count];
        switch (dtype)
        {
            case SafetensorsDType.F32:
                for (var i = 0; i < count; i++)
                {
                    result[i] = BinaryPrimitives.ReadSingleLittleEndian(bytes.AsSpan(i * 4));
                }

                break;
            case SafetensorsDType.F16:
                for (var i = 0; i < count; i++)
                {
                    result[i] = (float)BinaryPrimitives.ReadHalfLittleEndian(bytes.AsSpan(i * 2));
                }

                break;
            case SafetensorsDType.BF16:
                for (var i = 0; i < count; i++)
                {
                    result[i] = BitConverter.Int32BitsToSingle(BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(i * 2)) << 16);
                }

                break;
            default:
                for (var i = 0; i < count; i++)
                {
                    result[i] = (float)BinaryPrimitives.ReadDoubleLittleEndian(bytes.AsSpan(i * 8));
                }

                break;
        }

        return result;
    }

    public void Dispose() => _handle.Dispose();

    private static (long DataStart, Dictionary<string, SafetensorsEntry> Entries, Dictionary<string, string> Metadata) ReadHeader(string path, SafeFileHandle handle)
    {
        var fileLength = RandomAccess.GetLength(handle);
        if (fileLength < 8)
        {
            throw new CheckpointFormatException(path, null, $"file of {fileLength} bytes is too short for a safetensors header");
        }

        Span<byte> prefix = stackalloc byte[8];
        RandomAccess.Read(handle, prefix, 0);
        var headerLength = BinaryPrimitives.ReadUInt64LittleEndian(prefix);
        if (headerLength > MaxHeaderBytes || (long)headerLength > fileLength - 8)
        {
            throw new CheckpointFormatException(path, null, $"header length {headerLength} does not fit in the file ({fileLength} bytes): the file is truncated or not safetensors");
        }

        var headerBytes = new byte[headerLength];
        var got = 0;
        while (got < headerBytes.Length)
        {
            var n = RandomAccess.Read(handle, headerBytes.AsSpan(got), 8 + got);
            if (n == 0)
            {
                throw new CheckpointFormatException(path, null, "the file ends inside its header");
            }

            got += n;
        }

        var dataStart = 8 + (long)headerLength;
        var dataLength = fileLength - dataStart;
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(headerBytes);
        }
        catch (JsonException e)
        {
            throw new CheckpointFormatException(path, null, $"header is not valid JSON: {e.Message}", e);
        }

        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
            {
                throw new CheckpointFormatException(path, null, "header JSON is not an object");
            }

            var entries = new Dictionary<string, SafetensorsEntry>(StringComparer.Ordinal);
            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var property in doc.RootElement.EnumerateObject())
            {
                if (property.Name == "__metadata__")
                {
                    if (property.Value.ValueKind == JsonValueKind.Object)
                    {
                        foreach (var m in property.Value.EnumerateObject())
                        {
                            metadata[m.Name] = m.Value.ValueKind == JsonValueKind.String ? m.Value.GetString()! : m.Value.GetRawText();
                        }
                    }

                    continue;
                }

                var entry = ParseEntry(path, property);
                if (entry.End > dataLength)
                {
                    throw new CheckpointFormatException(path, entry.Name, $"data offsets [{entry.Begin}, {entry.End}) run past the end of the file (data section holds {dataLength} bytes)");
                }

                entries[entry.Name] = entry;
            }

            return (dataStart, entries, metadata);
        }
    }

    private static SafetensorsEntry ParseEntry(string path, JsonProperty property)
    {
        var name = property.Name;
        var value = property.Value;
        if (value.ValueKind != JsonValueKind.Object
            || !value.TryGetProperty("dtype", out var dtypeElement) || dtypeElement.ValueKind != JsonValueKind.String
            || !value.TryGetProperty("shape", out var shapeElement) || shapeElement.ValueKind != JsonValueKind.Array
            || !value.TryGetProperty("data_offsets", out var offsetsElement) || offsetsElement.ValueKind != JsonValueKind.Array)
        {
            throw new CheckpointFormatException(path, name, "header entry needs dtype (string), shape (list) and data_offsets (list)");
        }

        var dtype = dtypeElement.GetString()!;
        var shape = new List<long>();
        foreach (var d in shapeElement.EnumerateArray())
        {
            if (d.ValueKind != JsonValueKind.Number || !d.TryGetInt64(out var v) || v < 0)
            {
                throw new CheckpointFormatException(path, name, $"shape {shapeElement.GetRawText()} is not a list of non-negative integers");
            }

            shape.Add(v);
        }

        var offsets = offsetsElement.EnumerateArray().ToArray();
        if (offsets.Length != 2 || !offsets[0].TryGetInt64(out var begin) || !offsets[1].TryGetInt64(out var end) || begin < 0 || end < begin)
        {
            throw new CheckpointFormatException(path, name, $"data_offsets {offsetsElement.GetRawText()} is not a [begin, end] pair with 0 <= begin <= end");
        }

        long count = 1;
        foreach (var d in shape)
        {
            count = d == 0 ? 0 : (count > long.MaxValue / d ? throw new CheckpointFormatException(path, name, "shape is too large") : count * d);
        }

        if (ElementSizes.TryGetValue(dtype, out var size) && count * size != end - begin)
        {
            throw new CheckpointFormatException(path, name, $"shape [{string.Join(", ", shape)}] of {dtype} needs {count * size} bytes but data_offsets span {end - begin}");
        }

        return new SafetensorsEntry(name, dtype, shape, begin, end);
    }
}

/// <summary>Writes safetensors files (used for random checkpoints and for tests).</summary>
public static class SafetensorsWriter
{
    public static void Write(string path, IEnumerable<KeyValuePair<string, WeightTensor>> tensors, SafetensorsDType dtype = SafetensorsDType.F32)
    {
        var list = tensors.OrderBy(t => t.Key, StringComparer.Ordinal).ToList();
        var elementSize = dtype switch
        {
            SafetensorsDType.F32 => 4,
            SafetensorsDType.F64 => 8,
            _ => 2,
        };
        var header = new StringBuilder("{\"__metadata__\":{\"format\":\"pt\"}");
        long offset = 0;
        foreach (var (name, tensor) in list)
        {
            var bytes = (long)tensor.Data.Length * elementSize;
            header.Append(CultureInfo.InvariantCulture, $",{JsonSerializer.Serialize(name)}:{{\"dtype\":\"{dtype}\",\"shape\":[{string.Join(",", tensor.Shape)}],\"data_offsets\":[{offset},{offset + bytes}]}}");
            offset += bytes;
        }

        header.Append('}');
        while ((header.Length + 8) % 8 != 0)
        {
            header.Append(' ');
        }

        using var stream = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20);
        var headerBytes = Encoding.UTF8.GetBytes(header.ToString());
        Span<byte> prefix = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(prefix, (ulong)headerBytes.Length);
        stream.Write(prefix);
        stream.Write(headerBytes);
        var buffer = new byte[64 * 1024];
        foreach (var (_, tensor) in list)
        {
            var data = tensor.Data;
            var perChunk = buffer.Length / elementSize;
            for (var start = 0; start < data.Length; start += perChunk)
            {
                var n = Math.Min(perChunk, data.Length - start);
                for (var i = 0; i < n; i++)
                {
                    var span = buffer.AsSpan(i * elementSize);
                    var v = data[start + i];
                    switch (dtype)
                    {
                        case SafetensorsDType.F32:
                            BinaryPrimitives.WriteSingleLittleEndian(span, v);
                            break;
                        case SafetensorsDType.F64:
                            BinaryPrimitives.WriteDoubleLittleEndian(span, v);
                            break;
                        case SafetensorsDType.F16:
                            BinaryPrimitives.WriteHalfLittleEndian(span, (Half)v);
                            break;
                        default:
                            BinaryPrimitives.WriteUInt16LittleEndian(span, ToBFloat16(v));
                            break;
                    }
                }

                stream.Write(buffer, 0, n * elementSize);
            }
        }
    }

    /// <summary>float32 to bfloat16 with round-to-nearest-even (NaN kept NaN).</summary>
    public static ushort ToBFloat16(float value)
    {
        var bits = BitConverter.SingleToUInt32Bits(value);
        if (float.IsNaN(value))
        {
            return (ushort)((bits >> 16) | 0x40);
        }

        var rounding = 0x7FFFu + ((bits >> 16) & 1);
        return (ushort)((bits + rounding) >> 16);
    }
}
