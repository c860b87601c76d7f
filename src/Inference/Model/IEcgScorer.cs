namespace HubertEcg.Inference.Model;

/// <summary>What a scoring model is: its identity (provenance carried by every result) and its output sizes.</summary>
public sealed record ModelDescriptor(
    string ModelId,
    string Name,
    string SourceHash,
    int HiddenSize,
    IReadOnlyList<string> LabelCodes,
    bool Untrained,
    string ArchitectureJson,
    string PreprocessingProfile,
    ModelPrecision Precision = ModelPrecision.Fp32)
{
    public int LabelCount => LabelCodes.Count;

    /// <summary>Reads the descriptor from an exported ONNX model's metadata, without loading its weights.</summary>
    public static ModelDescriptor FromOnnxFile(string path) => Onnx.OnnxModelMetadata.ReadDescriptor(path);
}

/// <summary>
/// Scores batches of 5 s windows (6000 float32 samples each). Implementations are long-lived and
/// thread-safe for concurrent <see cref="Score"/> calls unless stated otherwise.
/// </summary>
public interface IEcgScorer : IDisposable
{
    /// <summary>Samples per window the model takes (6000).</summary>
    const int WindowLength = 6000;

    ModelDescriptor Model { get; }

    /// <summary>
    /// Scores <paramref name="batch"/> windows laid out back to back in <paramref name="windows"/> (batch x 6000);
    /// writes batch x HiddenSize embeddings and, when the model has a head, batch x LabelCount probabilities.
    /// </summary>
    void Score(ReadOnlySpan<float> windows, int batch, Span<float> embeddings, Span<float> probabilities);
}
