using Google.Protobuf;
using HubertEcg.Inference.Onnx;
using HubertEcg.Inference.Onnx.Proto;

namespace HubertEcg.Testing;

/// <summary>Model files that lie or are not models at all, made from a real exported one, for the checks at the door.</summary>
public static class ModelFiles
{
    /// <summary>
    /// Copies the ONNX model <paramref name="source"/> to <paramref name="destination"/> with the metadata entry
    /// <paramref name="key"/> set to <paramref name="value"/> (the graph and weights unchanged): a model whose metadata
    /// lies, such as <see cref="OnnxModelMetadata.HiddenSizeKey"/> = 2147483647.
    /// </summary>
    public static void WithMetadata(string source, string destination, string key, string value)
    {
        var model = ModelProto.Parser.ParseFrom(File.ReadAllBytes(source));
        var entry = model.MetadataProps.FirstOrDefault(e => e.Key == key);
        if (entry is null)
        {
            model.MetadataProps.Add(new StringStringEntryProto { Key = key, Value = value });
        }
        else
        {
            entry.Value = value;
        }

        File.WriteAllBytes(destination, model.ToByteArray());
    }

    /// <summary>A sparse file of <paramref name="bytes"/> zeros (no disk used): what a wrong path or a damaged copy can give.</summary>
    public static void SparseZeros(string path, long bytes)
    {
        using var stream = new FileStream(path, FileMode.Create, FileAccess.Write);
        stream.SetLength(bytes);
    }
}
