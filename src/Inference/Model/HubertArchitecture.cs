using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace HubertEcg.Inference.Model;

/// <summary>How the convolutional feature encoder normalises: GroupNorm on the first layer only, or LayerNorm on every layer.</summary>
public enum FeatureExtractorNorm
{
    Group,
    Layer,
}

/// <summary>
/// The architecture of a HuBERT-ECG model (transformers' HubertModel), as read from a Hugging Face <c>config.json</c>.
/// Every size comes from the config; nothing here assumes a particular model size.
/// </summary>
public sealed record HubertArchitecture
{
    /// <summary>Activations the exporter can express (transformers' ACT2FN names).</summary>
    public static readonly IReadOnlyList<string> SupportedActivations = ["gelu"];

    public required IReadOnlyList<int> ConvDim { get; init; }

    public required IReadOnlyList<int> ConvKernel { get; init; }

    public required IReadOnlyList<int> ConvStride { get; init; }

    public required bool ConvBias { get; init; }

    public required FeatureExtractorNorm FeatExtractNorm { get; init; }

    public string FeatExtractActivation { get; init; } = "gelu";

    public required bool FeatProjLayerNorm { get; init; }

    public required bool DoStableLayerNorm { get; init; }

    public required int HiddenSize { get; init; }

    public required int NumHiddenLayers { get; init; }

    public required int NumAttentionHeads { get; init; }

    public required int IntermediateSize { get; init; }

    public required int NumConvPosEmbeddings { get; init; }

    public required int NumConvPosEmbeddingGroups { get; init; }

    public required double LayerNormEps { get; init; }

    public string HiddenAct { get; init; } = "gelu";

    public int HeadDim => HiddenSize / NumAttentionHeads;

    /// <summary>HuBERT-ECG small: 512 hidden, 8 layers, 8 heads, 2048 intermediate.</summary>
    public static HubertArchitecture Small => Published(512, 8, 8, 2048);

    /// <summary>HuBERT-ECG base: 768 hidden, 12 layers, 12 heads, 3072 intermediate.</summary>
    public static HubertArchitecture Base => Published(768, 12, 12, 3072);

    /// <summary>HuBERT-ECG large: 960 hidden, 16 layers, 12 heads, 3840 intermediate.</summary>
    public static HubertArchitecture Large => Published(960, 16, 12, 3840);

    /// <summary>The published size named <paramref name="size"/> (small, base or large).</summary>
    public static HubertArchitecture ForSize(string size) => size.ToLowerInvariant() switch
    {
        "small" => Small,
        "base" => Base,
        "large" => Large,
        _ => throw new ArgumentException($"unknown model size '{size}' (expected small, base or large)", nameof(size)),
    };

    /// <summary>
    /// A tiny architecture for tests and demos, shaped like the published ones (same conv kernels and strides, so
    /// 6000 samples give 93 frames) but with small widths.
    /// </summary>
    public static HubertArchitecture Tiny(
        int convChannels = 16,
        int hiddenSize = 32,
        int layers = 2,
        int heads = 4,
        int intermediateSize = 64,
        int posKernel = 16,
        int posGroups = 4) => new()
        {
            ConvDim = [convChannels, convChannels, convChannels, convChannels, convChannels],
            ConvKernel = [10, 3, 3, 2, 2],
            ConvStride = [4, 2, 2, 2, 2],
            ConvBias = false,
            FeatExtractNorm = FeatureExtractorNorm.Group,
            FeatProjLayerNorm = true,
            DoStableLayerNorm = false,
            HiddenSize = hiddenSize,
            NumHiddenLayers = layers,
            NumAttentionHeads = heads,
            IntermediateSize = intermediateSize,
            NumConvPosEmbeddings = posKernel,
            NumConvPosEmbeddingGroups = posGroups,
            LayerNormEps = 1e-5,
        };

    /// <summary>Frames the feature encoder yields for <paramref name="samples"/> input samples (93 for 6000).</summary>
    public int FramesFor(int samples)
    {
        var length = samples;
        for (var i = 0; i < ConvKernel.Count; i++)
        {
            length = ((length - ConvKernel[i]) / ConvStride[i]) + 1;
            if (length < 1)
            {
                throw new ArgumentException($"{samples} samples are too short for the feature encoder", nameof(samples));
            }
        }

        return length;
    }

    /// <summary>Number of parameters of the exported model (weight norm folded), with a head of <paramref name="labels"/> outputs (0: none).</summary>
    public long ParameterCount(int labels)
    {
        long total = 0;
        var inChannels = 1;
        for (var i = 0; i < ConvDim.Count; i++)
        {
            total += (long)ConvDim[i] * inChannels * ConvKernel[i];
            if (ConvBias)
            {
                total += ConvDim[i];
            }

            if (FeatExtractNorm == FeatureExtractorNorm.Layer || i == 0)
            {
                total += 2L * ConvDim[i];
            }

            inChannels = ConvDim[i];
        }

        if (FeatProjLayerNorm)
        {
            total += 2L * inChannels;
        }

        long h = HiddenSize;
        total += (inChannels * h) + h;
        total += (h * (h / NumConvPosEmbeddingGroups) * NumConvPosEmbeddings) + h;
        total += 2 * h;
        var perLayer = (4 * ((h * h) + h)) + (2 * 2 * h) + (h * IntermediateSize) + IntermediateSize + (IntermediateSize * h) + h;
        total += NumHiddenLayers * perLayer;
        if (labels > 0)
        {
            total += (labels * h) + labels;
        }

        return total;
    }

    /// <summary>Checks that the sizes are consistent; <paramref name="source"/> names the file for the message.</summary>
    public void Validate(string source)
    {
        void Fail(string field, string reason) => throw new CheckpointFormatException(source, field, reason);

        if (ConvDim.Count == 0)
        {
            Fail("conv_dim", "must hold at least one layer");
        }

        if (ConvKernel.Count != ConvDim.Count)
        {
            Fail("conv_kernel", $"has {ConvKernel.Count} entries but conv_dim has {ConvDim.Count}");
        }

        if (ConvStride.Count != ConvDim.Count)
        {
            Fail("conv_stride", $"has {ConvStride.Count} entries but conv_dim has {ConvDim.Count}");
        }

        if (ConvDim.Concat(ConvKernel).Concat(ConvStride).Any(v => v <= 0))
        {
            Fail("conv_dim", "conv_dim, conv_kernel and conv_stride must be positive");
        }

        if (HiddenSize <= 0 || NumHiddenLayers < 0 || NumAttentionHeads <= 0 || IntermediateSize <= 0)
        {
            Fail("hidden_size", "hidden_size, num_attention_heads and intermediate_size must be positive, num_hidden_layers not negative");
        }

        if (HiddenSize % NumAttentionHeads != 0)
        {
            Fail("num_attention_heads", $"hidden_size {HiddenSize} is not divisible by {NumAttentionHeads} heads");
        }

        if (NumConvPosEmbeddings <= 0 || NumConvPosEmbeddingGroups <= 0 || HiddenSize % NumConvPosEmbeddingGroups != 0)
        {
            Fail("num_conv_pos_embedding_groups", $"hidden_size {HiddenSize} must be divisible by {NumConvPosEmbeddingGroups} positional conv groups, kernel {NumConvPosEmbeddings} positive");
        }

        if (!(LayerNormEps > 0))
        {
            Fail("layer_norm_eps", "must be positive");
        }

        if (!SupportedActivations.Contains(HiddenAct))
        {
            Fail("hidden_act", $"'{HiddenAct}' is not supported (supported: {string.Join(", ", SupportedActivations)})");
        }

        if (!SupportedActivations.Contains(FeatExtractActivation))
        {
            Fail("feat_extract_activation", $"'{FeatExtractActivation}' is not supported (supported: {string.Join(", ", SupportedActivations)})");
        }
    }

    /// <summary>Reads a Hugging Face <c>config.json</c>.</summary>
    public static HubertArchitecture FromConfigFile(string path)
    {
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new CheckpointFormatException(path, null, $"cannot read the config: {e.Message}", e);
        }

        return FromConfigJson(text, path);
    }

    /// <summary>Parses config JSON (Hugging Face field names); <paramref name="source"/> names the file in errors.</summary>
    public static HubertArchitecture FromConfigJson(string json, string source)
    {
        JsonObject root;
        try
        {
            root = JsonNode.Parse(json) as JsonObject ?? throw new CheckpointFormatException(source, null, "the config is not a JSON object");
        }
        catch (JsonException e)
        {
            throw new CheckpointFormatException(source, null, $"the config is not valid JSON: {e.Message}", e);
        }

        var norm = Text(root, "feat_extract_norm", source);
        var arch = new HubertArchitecture
        {
            ConvDim = IntList(root, "conv_dim", source),
            ConvKernel = IntList(root, "conv_kernel", source),
            ConvStride = IntList(root, "conv_stride", source),
            ConvBias = Bool(root, "conv_bias", source),
            FeatExtractNorm = norm switch
            {
                "group" => FeatureExtractorNorm.Group,
                "layer" => FeatureExtractorNorm.Layer,
                _ => throw new CheckpointFormatException(source, "feat_extract_norm", $"'{norm}' is not supported (expected group or layer)"),
            },
            FeatExtractActivation = root.ContainsKey("feat_extract_activation") ? Text(root, "feat_extract_activation", source) : "gelu",
            FeatProjLayerNorm = Bool(root, "feat_proj_layer_norm", source),
            DoStableLayerNorm = Bool(root, "do_stable_layer_norm", source),
            HiddenSize = Int(root, "hidden_size", source),
            NumHiddenLayers = Int(root, "num_hidden_layers", source),
            NumAttentionHeads = Int(root, "num_attention_heads", source),
            IntermediateSize = Int(root, "intermediate_size", source),
            NumConvPosEmbeddings = Int(root, "num_conv_pos_embeddings", source),
            NumConvPosEmbeddingGroups = Int(root, "num_conv_pos_embedding_groups", source),
            LayerNormEps = Number(root, "layer_norm_eps", source),
            HiddenAct = Text(root, "hidden_act", source),
        };
        if (root.ContainsKey("conv_pos_batch_norm") && Bool(root, "conv_pos_batch_norm", source))
        {
            throw new CheckpointFormatException(source, "conv_pos_batch_norm", "a batch-normalised positional convolution is not supported");
        }

        arch.Validate(source);
        return arch;
    }

    /// <summary>This architecture as Hugging Face config JSON (the fields this project reads, with their transformers names).</summary>
    public string ToConfigJson(bool indented = true)
    {
        var root = new JsonObject
        {
            ["model_type"] = "hubert_ecg",
            ["conv_dim"] = new JsonArray([.. ConvDim.Select(v => (JsonNode)v)]),
            ["conv_kernel"] = new JsonArray([.. ConvKernel.Select(v => (JsonNode)v)]),
            ["conv_stride"] = new JsonArray([.. ConvStride.Select(v => (JsonNode)v)]),
            ["conv_bias"] = ConvBias,
            ["feat_extract_norm"] = FeatExtractNorm == FeatureExtractorNorm.Group ? "group" : "layer",
            ["feat_extract_activation"] = FeatExtractActivation,
            ["feat_proj_layer_norm"] = FeatProjLayerNorm,
            ["do_stable_layer_norm"] = DoStableLayerNorm,
            ["hidden_size"] = HiddenSize,
            ["num_hidden_layers"] = NumHiddenLayers,
            ["num_attention_heads"] = NumAttentionHeads,
            ["intermediate_size"] = IntermediateSize,
            ["num_conv_pos_embeddings"] = NumConvPosEmbeddings,
            ["num_conv_pos_embedding_groups"] = NumConvPosEmbeddingGroups,
            ["layer_norm_eps"] = LayerNormEps,
            ["hidden_act"] = HiddenAct,
        };
        return root.ToJsonString(new JsonSerializerOptions { WriteIndented = indented });
    }

    private static JsonNode Field(JsonObject root, string name, string source) =>
        root.TryGetPropertyValue(name, out var node) && node is not null
            ? node
            : throw new CheckpointFormatException(source, name, "required field is missing from the config");

    private static int Int(JsonObject root, string name, string source)
    {
        var node = Field(root, name, source);
        return node is JsonValue v && v.TryGetValue<int>(out var i)
            ? i
            : throw new CheckpointFormatException(source, name, $"expected an integer, got {node.ToJsonString()}");
    }

    private static double Number(JsonObject root, string name, string source)
    {
        var node = Field(root, name, source);
        return node is JsonValue v && v.TryGetValue<double>(out var d)
            ? d
            : throw new CheckpointFormatException(source, name, $"expected a number, got {node.ToJsonString()}");
    }

    private static bool Bool(JsonObject root, string name, string source)
    {
        var node = Field(root, name, source);
        return node is JsonValue v && v.TryGetValue<bool>(out var b)
            ? b
            : throw new CheckpointFormatException(source, name, $"expected true or false, got {node.ToJsonString()}");
    }

    private static string Text(JsonObject root, string name, string source)
    {
        var node = Field(root, name, source);
        return node is JsonValue v && v.TryGetValue<string>(out var s)
            ? s
            : throw new CheckpointFormatException(source, name, $"expected a string, got {node.ToJsonString()}");
    }

    private static int[] IntList(JsonObject root, string name, string source)
    {
        var node = Field(root, name, source);
        if (node is not JsonArray array)
        {
            throw new CheckpointFormatException(source, name, $"expected a list of integers, got {node.ToJsonString()}");
        }

        var result = new int[array.Count];
        for (var i = 0; i < array.Count; i++)
        {
            result[i] = array[i] is JsonValue v && v.TryGetValue<int>(out var x)
                ? x
                : throw new CheckpointFormatException(source, name, $"entry {i.ToString(CultureInfo.InvariantCulture)} is not an integer");
        }

        return result;
    }

    private static HubertArchitecture Published(int hidden, int layers, int heads, int intermediate) => new()
    {
        ConvDim = [512, 512, 512, 512, 512],
        ConvKernel = [10, 3, 3, 2, 2],
        ConvStride = [4, 2, 2, 2, 2],
        ConvBias = false,
        FeatExtractNorm = FeatureExtractorNorm.Group,
        FeatProjLayerNorm = true,
        DoStableLayerNorm = false,
        HiddenSize = hidden,
        NumHiddenLayers = layers,
        NumAttentionHeads = heads,
        IntermediateSize = intermediate,
        NumConvPosEmbeddings = 128,
        NumConvPosEmbeddingGroups = 16,
        LayerNormEps = 1e-5,
    };
}
