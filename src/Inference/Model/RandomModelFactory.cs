using System.Globalization;

namespace HubertEcg.Inference.Model;

/// <summary>
/// Random-weight HuBERT-ECG models for demos, benchmarks and tests (the real weights cannot be shipped). They follow
/// transformers' initialisation scales so activations stay in a realistic range, and are marked untrained.
/// </summary>
public static class RandomModelFactory
{
    /// <summary>Builds a random checkpoint; the same architecture, label count and seed give the same weights.</summary>
    public static HubertCheckpoint Create(HubertArchitecture architecture, int labels = 0, int seed = 1234, string? name = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(labels);
        architecture.Validate("random model architecture");
        var random = new Random(seed);
        var weights = new Dictionary<string, WeightTensor>(StringComparer.Ordinal);
        foreach (var (tensorName, shape) in HubertCheckpoint.ExpectedShapes(architecture, labels))
        {
            var tensor = WeightTensor.Zeros(shape);
            var data = tensor.Data;
            if (tensorName.EndsWith("norm.weight", StringComparison.Ordinal))
            {
                for (var i = 0; i < data.Length; i++)
                {
                    data[i] = 1f + (float)(0.1 * Normal(random));
                }
            }
            else if (tensorName.EndsWith(".bias", StringComparison.Ordinal))
            {
                for (var i = 0; i < data.Length; i++)
                {
                    data[i] = (float)(0.02 * Normal(random));
                }
            }
            else
            {
                // Convolutions: Kaiming normal over fan-in (transformers' init for the feature encoder and the
                // positional conv); linear layers: normal with initializer_range 0.02.
                var std = shape.Length == 3 ? Math.Sqrt(2.0 / (shape[1] * shape[2])) : 0.02;
                for (var i = 0; i < data.Length; i++)
                {
                    data[i] = (float)(std * Normal(random));
                }
            }

            weights[tensorName] = tensor;
        }

        var description = name ?? $"random-h{architecture.HiddenSize.ToString(CultureInfo.InvariantCulture)}-l{architecture.NumHiddenLayers.ToString(CultureInfo.InvariantCulture)}" + (labels > 0 ? $"-labels{labels.ToString(CultureInfo.InvariantCulture)}" : string.Empty);
        return new HubertCheckpoint(architecture, weights, description, $"random:seed={seed.ToString(CultureInfo.InvariantCulture)}", untrained: true);
    }

    /// <summary>A random model of a published size (small, base or large), optionally with a head.</summary>
    public static HubertCheckpoint CreateForSize(string size, int labels = 0, int seed = 1234) =>
        Create(HubertArchitecture.ForSize(size), labels, seed, $"hubert-ecg-{size.ToLowerInvariant()}-random" + (labels > 0 ? $"-{labels.ToString(CultureInfo.InvariantCulture)}" : string.Empty));

    /// <summary>
    /// Builds a random model and exports it to <paramref name="onnxPath"/> in one step (for tests and demos), e.g.
    /// <c>RandomModelFactory.ExportRandom(HubertArchitecture.Tiny(), path, labels: 164)</c>. Label codes default to
    /// <c>label_0</c>, <c>label_1</c>, ...; returns the exported model's descriptor.
    /// </summary>
    public static ModelDescriptor ExportRandom(
        HubertArchitecture architecture, string onnxPath, int labels = 0, int seed = 1234, IReadOnlyList<string>? labelCodes = null, ModelPrecision precision = ModelPrecision.Fp32) =>
        Onnx.HubertOnnxExporter.Export(Create(architecture, labels, seed), onnxPath, new Onnx.OnnxExportOptions { LabelCodes = labelCodes, Precision = precision });

    /// <summary>
    /// Writes <paramref name="checkpoint"/> as a Hugging Face folder (config.json + model.safetensors) with plain
    /// names (the positional conv weight as a plain <c>weight</c>), so it can be imported again.
    /// </summary>
    public static void WriteCheckpointFolder(HubertCheckpoint checkpoint, string directory, SafetensorsDType dtype = SafetensorsDType.F32)
    {
        Directory.CreateDirectory(directory);
        File.WriteAllText(Path.Combine(directory, HubertCheckpoint.ConfigFileName), checkpoint.Architecture.ToConfigJson());
        SafetensorsWriter.Write(Path.Combine(directory, HubertCheckpoint.WeightsFileName), checkpoint.Weights, dtype);
    }

    private static double Normal(Random random)
    {
        // Box-Muller.
        var u1 = 1.0 - random.NextDouble();
        var u2 = random.NextDouble();
        return Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2.0 * Math.PI * u2);
    }
}
