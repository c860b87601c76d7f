namespace HubertEcg.Inference.Model;

/// <summary>
/// A checkpoint (config.json, model.safetensors) or an exported model file that cannot be used, with the file,
/// the tensor or field at fault (when there is one) and the reason.
/// </summary>
public sealed class CheckpointFormatException : Exception
{
    public CheckpointFormatException(string file, string? item, string reason, Exception? inner = null)
        : base(Format(file, item, reason), inner)
    {
        File = file;
        Item = item;
        Reason = reason;
    }

    /// <summary>The file at fault.</summary>
    public string File { get; }

    /// <summary>The tensor name or config field at fault, when the fault is about one.</summary>
    public string? Item { get; }

    public string Reason { get; }

    private static string Format(string file, string? item, string reason) =>
        item is null ? $"{file}: {reason}" : $"{file}: '{item}': {reason}";
}
