using System.Globalization;
using System.Security.Cryptography;

namespace HubertEcg.Inference.Model;

/// <summary>A float32 tensor: its shape and its values in C order.</summary>
public sealed record WeightTensor(int[] Shape, float[] Data)
{
    public static WeightTensor Zeros(params int[] shape) => new(shape, new float[shape.Aggregate(1, (a, b) => a * b)]);
}

/// <summary>
/// A HuBERT-ECG model's weights under transformers' names without the <c>hubert_ecg.</c> prefix, with the positional
/// convolution's weight norm already folded into <c>encoder.pos_conv_embed.conv.weight</c>, plus an optional
/// <c>classifier</c> head applied to the frame-mean of the last hidden state.
/// </summary>
public sealed class HubertCheckpoint
{
    public const string PositionalConvWeight = "encoder.pos_conv_embed.conv.weight";
    public const string ClassifierWeight = "classifier.weight";
    public const string ClassifierBias = "classifier.bias";
    public const string ConfigFileName = "config.json";
    public const string WeightsFileName = "model.safetensors";
    private const string Prefix = "hubert_ecg.";

    private static readonly string[] IgnoredPrefixes = ["masked_spec_embed", "final_proj.", "label_embedding."];

    public HubertCheckpoint(HubertArchitecture architecture, IReadOnlyDictionary<string, WeightTensor> weights, string name, string sourceHash, bool untrained)
    {
        Architecture = architecture;
        Weights = weights;
        Name = name;
        SourceHash = sourceHash;
        Untrained = untrained;
        LabelCount = weights.TryGetValue(ClassifierWeight, out var head) ? head.Shape[0] : 0;
        var problems = ExpectedShapes(architecture, LabelCount)
            .Where(e => !weights.TryGetValue(e.Key, out var w) || !w.Shape.SequenceEqual(e.Value))
            .Select(e => e.Key)
            .ToList();
        if (problems.Count > 0)
        {
            throw new ArgumentException($"weights missing or misshapen for the architecture: {string.Join(", ", problems.Take(5))}", nameof(weights));
        }
    }

    public HubertArchitecture Architecture { get; }

    public IReadOnlyDictionary<string, WeightTensor> Weights { get; }

    /// <summary>A display name (the checkpoint folder's name, or the random model's description).</summary>
    public string Name { get; }

    /// <summary>Identifies the source: <c>sha256:&lt;hex&gt;</c> of config.json and model.safetensors, or the random recipe.</summary>
    public string SourceHash { get; }

    public bool Untrained { get; }

    /// <summary>Outputs of the classifier head, from <c>classifier.weight</c>'s shape; 0 when the checkpoint has no head.</summary>
    public int LabelCount { get; }

    public bool HasHead => LabelCount > 0;

    public WeightTensor this[string name] => Weights[name];

    /// <summary>Every tensor the architecture needs, with its shape (the classifier when <paramref name="labels"/> &gt; 0).</summary>
    public static IReadOnlyDictionary<string, int[]> ExpectedShapes(HubertArchitecture a, int labels)
    {
        var shapes = new Dictionary<string, int[]>(StringComparer.Ordinal);
        var inChannels = 1;
        for (var i = 0; i < a.ConvDim.Count; i++)
        {
            var p = $"feature_extractor.conv_layers.{i.ToString(CultureInfo.InvariantCulture)}.";
            shapes[p + "conv.weight"] = [a.ConvDim[i], inChannels, a.ConvKernel[i]];
            if (a.ConvBias)
            {
                shapes[p + "conv.bias"] = [a.ConvDim[i]];
            }

            if (a.FeatExtractNorm == FeatureExtractorNorm.Layer || i == 0)
            {
                shapes[p + "layer_norm.weight"] = [a.ConvDim[i]];
                shapes[p + "layer_norm.bias"] = [a.ConvDim[i]];
            }

            inChannels = a.ConvDim[i];
        }

        var h = a.HiddenSize;
        if (a.FeatProjLayerNorm)
        {
            shapes["feature_projection.layer_norm.weight"] = [inChannels];
            shapes["feature_projection.layer_norm.bias"] = [inChannels];
        }

        shapes["feature_projection.projection.weight"] = [h, inChannels];
        shapes["feature_projection.projection.bias"] = [h];
        shapes[PositionalConvWeight] = [h, h / a.NumConvPosEmbeddingGroups, a.NumConvPosEmbeddings];
        shapes["encoder.pos_conv_embed.conv.bias"] = [h];
        shapes["encoder.layer_norm.weight"] = [h];
        shapes["encoder.layer_norm.bias"] = [h];
        for (var l = 0; l < a.NumHiddenLayers; l++)
        {
            var p = $"encoder.layers.{l.ToString(CultureInfo.InvariantCulture)}.";
            foreach (var proj in new[] { "q_proj", "k_proj", "v_proj", "out_proj" })
            {
                shapes[$"{p}attention.{proj}.weight"] = [h, h];
                shapes[$"{p}attention.{proj}.bias"] = [h];
            }

            foreach (var norm in new[] { "layer_norm", "final_layer_norm" })
            {
                shapes[$"{p}{norm}.weight"] = [h];
                shapes[$"{p}{norm}.bias"] = [h];
            }

            shapes[p + "feed_forward.intermediate_dense.weight"] = [a.IntermediateSize, h];
            shapes[p + "feed_forward.intermediate_dense.bias"] = [a.IntermediateSize];
            shapes[p + "feed_forward.output_dense.weight"] = [h, a.IntermediateSize];
            shapes[p + "feed_forward.output_dense.bias"] = [h];
        }

        if (labels > 0)
        {
            shapes[ClassifierWeight] = [labels, h];
            shapes[ClassifierBias] = [labels];
        }

        return shapes;
    }

    /// <summary>
    /// Imports a Hugging Face checkpoint folder (<c>config.json</c> + <c>model.safetensors</c>). Names may carry the
    /// <c>hubert_ecg.</c> prefix; the positional conv weight may be stored as <c>weight_g</c>/<c>weight_v</c>,
    /// <c>parametrizations.weight.original0</c>/<c>original1</c> or a plain <c>weight</c>; pretraining-only tensors
    /// are ignored; any other unexpected tensor is an error.
    /// </summary>
    public static HubertCheckpoint Load(string directory)
    {
        var configPath = Path.Combine(directory, ConfigFileName);
        var weightsPath = Path.Combine(directory, WeightsFileName);
        if (!Directory.Exists(directory))
        {
            throw new CheckpointFormatException(directory, null, "checkpoint folder does not exist");
        }

        if (!File.Exists(configPath))
        {
            throw new CheckpointFormatException(configPath, null, "checkpoint folder has no config.json");
        }

        if (!File.Exists(weightsPath))
        {
            throw new CheckpointFormatException(weightsPath, null, "checkpoint folder has no model.safetensors");
        }

        var architecture = HubertArchitecture.FromConfigFile(configPath);
        using var file = SafetensorsFile.Open(weightsPath);

        // Canonical name -> stored name.
        var stored = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var name in file.Names)
        {
            var canonical = name.StartsWith(Prefix, StringComparison.Ordinal) ? name[Prefix.Length..] : name;
            if (IgnoredPrefixes.Any(p => canonical.StartsWith(p, StringComparison.Ordinal)))
            {
                continue;
            }

            if (!stored.TryAdd(canonical, name))
            {
                throw new CheckpointFormatException(weightsPath, name, $"stored both with and without the '{Prefix}' prefix");
            }
        }

        var labels = 0;
        if (stored.TryGetValue(ClassifierWeight, out var headName))
        {
            var head = file.Entry(headName);
            if (head.Shape.Count != 2 || head.Shape[1] != architecture.HiddenSize || head.Shape[0] <= 0)
            {
                throw new CheckpointFormatException(weightsPath, headName, $"shape [{string.Join(", ", head.Shape)}] is not [labels, {architecture.HiddenSize}]");
            }

            labels = checked((int)head.Shape[0]);
        }
        else if (stored.Keys.Any(k => k.StartsWith("classifier.", StringComparison.Ordinal)))
        {
            var name = stored.First(k => k.Key.StartsWith("classifier.", StringComparison.Ordinal)).Value;
            throw new CheckpointFormatException(weightsPath, name, "only a single linear classifier (classifier.weight, classifier.bias) is supported");
        }

        var expected = ExpectedShapes(architecture, labels);
        var weights = new Dictionary<string, WeightTensor>(StringComparer.Ordinal);
        var used = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (name, shape) in expected)
        {
            if (name == PositionalConvWeight)
            {
                weights[name] = LoadPositionalWeight(file, stored, shape, used);
                continue;
            }

            if (!stored.TryGetValue(name, out var storedName))
            {
                throw new CheckpointFormatException(weightsPath, name, "tensor is missing");
            }

            weights[name] = Read(file, storedName, shape);
            used.Add(name);
        }

        var unexpected = stored.Keys.Where(k => !used.Contains(k)).Order(StringComparer.Ordinal).ToList();
        if (unexpected.Count > 0)
        {
            throw new CheckpointFormatException(weightsPath, stored[unexpected[0]], $"unexpected tensor for this architecture ({unexpected.Count} unexpected: {string.Join(", ", unexpected.Take(5))})");
        }

        var displayName = Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(directory)));
        return new HubertCheckpoint(architecture, weights, displayName, HashFiles(configPath, weightsPath), untrained: false);
    }

    /// <summary>Folds weight norm over dim 2 (<c>w = g * v / ||v||</c>, the norm taken over dims 0 and 1 for each kernel tap).</summary>
    public static float[] FoldWeightNorm(float[] g, float[] v, int outChannels, int inChannels, int kernel)
    {
        var result = new float[v.Length];
        for (var k = 0; k < kernel; k++)
        {
            double sum = 0;
            for (var o = 0; o < outChannels * inChannels; o++)
            {
                double x = v[(o * kernel) + k];
                sum += x * x;
            }

            var scale = g[k] / Math.Sqrt(sum);
            for (var o = 0; o < outChannels * inChannels; o++)
            {
                result[(o * kernel) + k] = (float)(v[(o * kernel) + k] * scale);
            }
        }

        return result;
    }

    private static WeightTensor LoadPositionalWeight(SafetensorsFile file, Dictionary<string, string> stored, int[] shape, HashSet<string> used)
    {
        const string Base = "encoder.pos_conv_embed.conv.";
        (string G, string V)[] pairs =
        [
            (Base + "weight_g", Base + "weight_v"),
            (Base + "parametrizations.weight.original0", Base + "parametrizations.weight.original1"),
        ];
        foreach (var (g, v) in pairs)
        {
            var hasG = stored.TryGetValue(g, out var gName);
            var hasV = stored.TryGetValue(v, out var vName);
            if (hasG && hasV)
            {
                var gData = Read(file, gName!, [1, 1, shape[2]]);
                var vData = Read(file, vName!, shape);
                used.Add(g);
                used.Add(v);
                return new WeightTensor(shape, FoldWeightNorm(gData.Data, vData.Data, shape[0], shape[1], shape[2]));
            }

            if (hasG != hasV)
            {
                throw new CheckpointFormatException(file.Path, hasG ? Prefixed(stored, v) : Prefixed(stored, g), $"tensor is missing (its weight-norm partner {(hasG ? gName : vName)} is present)");
            }
        }

        if (stored.TryGetValue(PositionalConvWeight, out var plain))
        {
            used.Add(PositionalConvWeight);
            return Read(file, plain, shape);
        }

        throw new CheckpointFormatException(file.Path, PositionalConvWeight, "tensor is missing (looked for weight_g/weight_v, parametrizations.weight.original0/original1 and weight)");
    }

    private static string Prefixed(Dictionary<string, string> stored, string canonical) =>
        stored.Values.Any(v => v.StartsWith(Prefix, StringComparison.Ordinal)) ? Prefix + canonical : canonical;

    private static WeightTensor Read(SafetensorsFile file, string storedName, int[] shape)
    {
        var entry = file.Entry(storedName);
        if (entry.Shape.Count != shape.Length || !entry.Shape.Select(d => d).SequenceEqual(shape.Select(d => (long)d)))
        {
            throw new CheckpointFormatException(file.Path, storedName, $"shape [{string.Join(", ", entry.Shape)}] does not match the config, expected [{string.Join(", ", shape)}]");
        }

        return new WeightTensor(shape, file.ReadSingle(storedName));
    }

    private static string HashFiles(params string[] paths)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = new byte[1 << 20];
        foreach (var path in paths)
        {
            using var stream = File.OpenRead(path);
            int n;
            while ((n = stream.Read(buffer)) > 0)
            {
                hash.AppendData(buffer, 0, n);
            }
        }

        return "sha256:" + Convert.ToHexStringLower(hash.GetHashAndReset());
    }
}
