using System.Globalization;
using System.Text.Json;
using HubertEcg.Inference.Model;
using HubertEcg.Inference.Onnx.Proto;

namespace HubertEcg.Inference.Onnx;

/// <summary>
/// The metadata an exported HuBERT-ECG ONNX file carries (ModelProto.metadata_props), and a reader that gets it
/// without loading the weights: it walks the file's top-level protobuf fields and seeks over the graph.
/// </summary>
public static class OnnxModelMetadata
{
    public const string ModelIdKey = "hubert_ecg.model_id";
    public const string NameKey = "hubert_ecg.name";
    public const string SourceHashKey = "hubert_ecg.source_hash";
    public const string ArchitectureKey = "hubert_ecg.architecture";
    public const string HiddenSizeKey = "hubert_ecg.hidden_size";
    public const string LabelCodesKey = "hubert_ecg.label_codes";
    public const string PreprocessingProfileKey = "hubert_ecg.preprocessing_profile";
    public const string UntrainedKey = "hubert_ecg.untrained";
    public const string ParameterCountKey = "hubert_ecg.parameter_count";
    public const string FramesKey = "hubert_ecg.frames_per_window";

    /// <summary>fp32 or fp16 (<see cref="ModelPrecision"/>); models exported before the entry existed are fp32.</summary>
    public const string PrecisionKey = "hubert_ecg.precision";
    public const string DefaultPreprocessingProfile = "hubert-ecg-2024";

    private const int ModelProtoMetadataField = 14;
    private const ulong MaxMetadataEntryBytes = 64 << 20;

    /// <summary>
    /// Largest model file read: 2 GiB, protobuf's limit for one message, so no ONNX file is larger (weights beyond it
    /// live in external data files). A larger file is refused from its size alone, before a byte is read.
    /// </summary>
    public const long MaxModelBytes = int.MaxValue;

    /// <summary>
    /// The first byte of every ONNX file: the tag of <c>ModelProto.ir_version</c> (field 1, varint), which ONNX
    /// serialisers write first; a file that starts otherwise (zeros, text, another format) is refused at once.
    /// </summary>
    private const int IrVersionTag = 0x08;

    private const int ModelProtoGraphField = 7;
    private const int GraphProtoOutputField = 12;
    private const ulong MaxValueInfoBytes = 1 << 20;

    /// <summary>All metadata entries of an ONNX model file.</summary>
    public static IReadOnlyDictionary<string, string> Read(string path) => Scan(path).Metadata;

    /// <summary>
    /// The metadata entries and the graph's declared outputs of an ONNX model file, without loading its weights: the
    /// file's size and first byte are checked before anything else is read (see <see cref="MaxModelBytes"/>), then its
    /// top-level protobuf fields are walked, the graph's fields too, seeking over everything else.
    /// </summary>
    private static (Dictionary<string, string> Metadata, List<ValueInfoProto> Outputs) Scan(string path)
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        var outputs = new List<ValueInfoProto>();
        FileStream stream;
        try
        {
            stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 64 * 1024);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new CheckpointFormatException(path, null, $"cannot open the model: {e.Message}", e);
        }

        using (stream)
        {
            var length = stream.Length;
            if (length > MaxModelBytes)
            {
                throw new CheckpointFormatException(
                    path, null, $"the file is {length} bytes, more than an ONNX model can be ({MaxModelBytes} bytes, protobuf's limit): not an ONNX model");
            }

            var first = stream.ReadByte();
            if (first != IrVersionTag)
            {
                throw new CheckpointFormatException(
                    path, null, first < 0 ? "the file is empty: not an ONNX model" : "the file does not start with an ONNX model's ir_version field: not an ONNX model");
            }

            stream.Position = 0;
            WalkFields(stream, length, path, (field, size) =>
            {
                if (field == ModelProtoMetadataField)
                {
                    if (size > MaxMetadataEntryBytes)
                    {
                        throw new CheckpointFormatException(path, null, $"metadata entry of {size} bytes is implausibly large");
                    }

                    var bytes = new byte[size];
                    stream.ReadExactly(bytes);
                    var entry = StringStringEntryProto.Parser.ParseFrom(bytes);
                    result[entry.Key] = entry.Value;
                    return true;
                }

                if (field == ModelProtoGraphField)
                {
                    var end = stream.Position + (long)size;
                    WalkFields(stream, end, path, (graphField, graphSize) =>
                    {
                        if (graphField != GraphProtoOutputField)
                        {
                            return false;
                        }

                        if (graphSize > MaxValueInfoBytes)
                        {
                            throw new CheckpointFormatException(path, null, $"graph output description of {graphSize} bytes is implausibly large");
                        }

                        var bytes = new byte[graphSize];
                        stream.ReadExactly(bytes);
                        outputs.Add(ValueInfoProto.Parser.ParseFrom(bytes));
                        return true;
                    });
                    return true;
                }

                return false;
            });
        }

        return (result, outputs);
    }

    /// <summary>
    /// Walks the protobuf fields from the stream's position to <paramref name="end"/>. For each length-delimited field
    /// <paramref name="read"/> gets its number and size with the stream at its content: it reads the content and returns
    /// true, or returns false and the content is skipped. A field number 0 or a wire type protobuf does not have
    /// (what zeros or any non-protobuf bytes give at once) ends the walk with the reason.
    /// </summary>
    private static void WalkFields(Stream stream, long end, string path, Func<int, ulong, bool> read)
    {
        while (stream.Position < end)
        {
            var tag = ReadVarint(stream, path);
            var field = tag >> 3;
            var wireType = (int)(tag & 7);
            if (field == 0 || field > 536_870_911)
            {
                throw new CheckpointFormatException(path, null, $"protobuf field number {field} is invalid: not an ONNX model or corrupt");
            }

            switch (wireType)
            {
                case 0:
                    ReadVarint(stream, path);
                    break;
                case 1:
                    Skip(stream, 8, end, path);
                    break;
                case 5:
                    Skip(stream, 4, end, path);
                    break;
                case 2:
                    var size = ReadVarint(stream, path);
                    if (size > (ulong)(end - stream.Position))
                    {
                        throw new CheckpointFormatException(path, null, $"field {field} of {size} bytes runs past the end of its message: not an ONNX model or truncated");
                    }

                    var start = stream.Position;
                    if (!read((int)field, size))
                    {
                        stream.Seek(start + (long)size, SeekOrigin.Begin);
                    }

                    break;
                default:
                    throw new CheckpointFormatException(path, null, $"unexpected protobuf wire type {wireType}: not an ONNX model");
            }
        }
    }

    /// <summary>The descriptor of an exported HuBERT-ECG model (model id, sizes, label codes, untrained flag).</summary>
    /// <remarks>
    /// The sizes the metadata claims are checked against the graph's declared outputs (<c>embedding</c>: batch x
    /// hidden size; <c>probabilities</c>: batch x label count), so that a file whose metadata lies about them is refused
    /// here, before any worker sizes a buffer from them.
    /// </remarks>
    public static ModelDescriptor ReadDescriptor(string path)
    {
        var (metadata, outputs) = Scan(path);
        string Get(string key) => metadata.TryGetValue(key, out var value)
            ? value
            : throw new CheckpointFormatException(path, key, "metadata entry is missing: not a model exported by hubert-ecg");

        string[] labels;
        try
        {
            labels = JsonSerializer.Deserialize<string[]>(Get(LabelCodesKey)) ?? [];
        }
        catch (JsonException e)
        {
            throw new CheckpointFormatException(path, LabelCodesKey, "metadata entry is not a JSON list of strings", e);
        }

        if (!int.TryParse(Get(HiddenSizeKey), NumberStyles.None, CultureInfo.InvariantCulture, out var hidden) || hidden <= 0)
        {
            throw new CheckpointFormatException(path, HiddenSizeKey, "metadata entry is not a positive integer");
        }

        RequireOutputWidth(path, outputs, HubertOnnxExporter.EmbeddingName, HiddenSizeKey, hidden);
        if (labels.Length > 0)
        {
            RequireOutputWidth(path, outputs, HubertOnnxExporter.ProbabilitiesName, LabelCodesKey, labels.Length);
        }

        var precision = ModelPrecision.Fp32;
        if (metadata.TryGetValue(PrecisionKey, out var precisionText) && !ModelPrecisions.TryParse(precisionText, out precision))
        {
            throw new CheckpointFormatException(path, PrecisionKey, $"metadata entry '{precisionText}' is not a known precision ({string.Join(", ", ModelPrecisions.Names)})");
        }

        return new ModelDescriptor(
            Get(ModelIdKey),
            Get(NameKey),
            Get(SourceHashKey),
            hidden,
            labels,
            Get(UntrainedKey) == "true",
            Get(ArchitectureKey),
            Get(PreprocessingProfileKey),
            precision);
    }

    /// <summary>
    /// Requires the graph output <paramref name="output"/> to be a (batch, <paramref name="expected"/>) tensor, the
    /// width the metadata entry <paramref name="key"/> claims.
    /// </summary>
    private static void RequireOutputWidth(string path, List<ValueInfoProto> outputs, string output, string key, int expected)
    {
        var info = outputs.FirstOrDefault(o => string.Equals(o.Name, output, StringComparison.Ordinal))
            ?? throw new CheckpointFormatException(path, key, $"the graph has no '{output}' output to check the metadata's {expected} against");
        var dims = info.Type?.TensorType?.Shape?.Dim;
        if (dims is not { Count: 2 } || dims[1].ValueCase != TensorShapeProto.Types.Dimension.ValueOneofCase.DimValue)
        {
            throw new CheckpointFormatException(path, key, $"the graph's '{output}' output is not declared as (batch, width): cannot check the metadata's {expected}");
        }

        if (dims[1].DimValue != expected)
        {
            throw new CheckpointFormatException(
                path, key, $"metadata entry says {expected}, but the graph's '{output}' output is {dims[1].DimValue} wide: the metadata does not describe this model");
        }
    }

    private static ulong ReadVarint(Stream stream, string path)
    {
        ulong result = 0;
        for (var shift = 0; shift < 64; shift += 7)
        {
            var b = stream.ReadByte();
            if (b < 0)
            {
                throw new CheckpointFormatException(path, null, "the file ends inside a protobuf field: not an ONNX model or truncated");
            }

            result |= (ulong)(b & 0x7F) << shift;
            if ((b & 0x80) == 0)
            {
                return result;
            }
        }

        throw new CheckpointFormatException(path, null, "malformed protobuf varint: not an ONNX model");
    }

    private static void Skip(Stream stream, int count, long length, string path)
    {
        if (stream.Position + count > length)
        {
            throw new CheckpointFormatException(path, null, "the file ends inside a protobuf field: not an ONNX model or truncated");
        }

        stream.Seek(count, SeekOrigin.Current);
    }
}
