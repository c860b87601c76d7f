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
    public const string DefaultPreprocessingProfile = "hubert-ecg-2024";

    private const int ModelProtoMetadataField = 14;
    private const ulong MaxMetadataEntryBytes = 64 << 20;

    /// <summary>All metadata entries of an ONNX model file.</summary>
    public static IReadOnlyDictionary<string, string> Read(string path)
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
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
            while (stream.Position < length)
            {
                var tag = ReadVarint(stream, path);
                var field = (int)(tag >> 3);
                var wireType = (int)(tag & 7);
                switch (wireType)
                {
                    case 0:
                        ReadVarint(stream, path);
                        break;
                    case 1:
                        Skip(stream, 8, length, path);
                        break;
                    case 5:
                        Skip(stream, 4, length, path);
                        break;
                    case 2:
                        var size = ReadVarint(stream, path);
                        if (size > (ulong)(length - stream.Position))
                        {
                            throw new CheckpointFormatException(path, null, $"field {field} of {size} bytes runs past the end of the file: not an ONNX model or truncated");
                        }

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
                        }
                        else
                        {
                            stream.Seek((long)size, SeekOrigin.Current);
                        }

                        break;
                    default:
                        throw new CheckpointFormatException(path, null, $"unexpected protobuf wire type {wireType}: not an ONNX model");
                }
            }
        }

        return result;
    }

    /// <summary>The descriptor of an exported HuBERT-ECG model (model id, sizes, label codes, untrained flag).</summary>
    public static ModelDescriptor ReadDescriptor(string path)
    {
        var metadata = Read(path);
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

        return new ModelDescriptor(
            Get(ModelIdKey),
            Get(NameKey),
            Get(SourceHashKey),
            hidden,
            labels,
            Get(UntrainedKey) == "true",
            Get(ArchitectureKey),
            Get(PreprocessingProfileKey));
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
