namespace HubertEcg.Inference.Model;

/// <summary>Precision of an exported model's weights and matrix products (its inputs and outputs are fp32 either way).</summary>
public enum ModelPrecision
{
    Fp32,
    Fp16,
}

/// <summary>The names of <see cref="ModelPrecision"/> as written in model metadata, the <c>models</c> table and on the command line.</summary>
public static class ModelPrecisions
{
    public static IReadOnlyList<string> Names { get; } = ["fp32", "fp16"];

    public static string Name(ModelPrecision precision) => precision switch
    {
        ModelPrecision.Fp32 => "fp32",
        ModelPrecision.Fp16 => "fp16",
        _ => throw new ArgumentOutOfRangeException(nameof(precision), precision, "unknown model precision"),
    };

    public static bool TryParse(string? text, out ModelPrecision precision)
    {
        switch (text?.Trim().ToLowerInvariant())
        {
            case "fp32":
                precision = ModelPrecision.Fp32;
                return true;
            case "fp16":
                precision = ModelPrecision.Fp16;
                return true;
            default:
                precision = default;
                return false;
        }
    }

    /// <summary>Parses <paramref name="text"/>; throws <see cref="ArgumentException"/> naming the value and the known names otherwise.</summary>
    public static ModelPrecision Parse(string? text) =>
        TryParse(text, out var precision)
            ? precision
            : throw new ArgumentException($"unknown precision '{text}' (known: {string.Join(", ", Names)})");
}
