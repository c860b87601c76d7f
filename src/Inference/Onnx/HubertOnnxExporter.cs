using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json;
using Google.Protobuf;
using HubertEcg.Inference.Model;
using HubertEcg.Inference.Onnx.Proto;

namespace HubertEcg.Inference.Onnx;

/// <summary>Options of an ONNX export.</summary>
public sealed record OnnxExportOptions
{
    /// <summary>Label codes in head order; required length = the head's outputs. Null: <c>label_0</c>, <c>label_1</c>, ...</summary>
    public IReadOnlyList<string>? LabelCodes { get; init; }

    /// <summary>The preprocessing profile the model expects its input prepared with.</summary>
    public string PreprocessingProfile { get; init; } = OnnxModelMetadata.DefaultPreprocessingProfile;
}

/// <summary>
/// Builds the ONNX graph of a HuBERT-ECG checkpoint with the semantics of transformers' HubertModel (eval mode):
/// conv feature encoder, feature projection, positional grouped conv (weight norm folded), post-LN or stable-LN
/// transformer encoder, mean over frames, and the optional linear classifier with sigmoid.
/// Input <c>input_values</c> float32 [batch, samples]; outputs <c>last_hidden_state</c> [batch, frames, hidden],
/// <c>embedding</c> [batch, hidden] and, with a head, <c>logits</c> and <c>probabilities</c> [batch, labels].
/// </summary>
public static class HubertOnnxExporter
{
    public const string InputName = "input_values";
    public const string LastHiddenStateName = "last_hidden_state";
    public const string EmbeddingName = "embedding";
    public const string LogitsName = "logits";
    public const string ProbabilitiesName = "probabilities";
    public const int OnnxOpset = 17;
    public const int IrVersion = 8;

    /// <summary>Builds the model, metadata and model id included.</summary>
    public static ModelProto Build(HubertCheckpoint checkpoint, OnnxExportOptions? options = null)
    {
        options ??= new OnnxExportOptions();
        var labelCodes = options.LabelCodes
            ?? Enumerable.Range(0, checkpoint.LabelCount).Select(i => "label_" + i.ToString(CultureInfo.InvariantCulture)).ToList();
        if (labelCodes.Count != checkpoint.LabelCount)
        {
            throw new ArgumentException($"{labelCodes.Count} label codes given for a head of {checkpoint.LabelCount} outputs", nameof(options));
        }

        var model = new ModelProto
        {
            IrVersion = IrVersion,
            ProducerName = "hubert-ecg",
            ProducerVersion = typeof(HubertOnnxExporter).Assembly.GetName().Version?.ToString() ?? "0",
            Domain = "hubert-ecg",
            ModelVersion = 1,
            DocString = $"HuBERT-ECG ({checkpoint.Name})",
            Graph = BuildGraph(checkpoint),
        };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = string.Empty, Version = OnnxOpset });
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = OnnxGraphBuilder.MicrosoftDomain, Version = 1 });

        var metadata = new Dictionary<string, string>
        {
            [OnnxModelMetadata.NameKey] = checkpoint.Name,
            [OnnxModelMetadata.SourceHashKey] = checkpoint.SourceHash,
            [OnnxModelMetadata.ArchitectureKey] = checkpoint.Architecture.ToConfigJson(indented: false),
            [OnnxModelMetadata.HiddenSizeKey] = checkpoint.Architecture.HiddenSize.ToString(CultureInfo.InvariantCulture),
            [OnnxModelMetadata.LabelCodesKey] = JsonSerializer.Serialize(labelCodes),
            [OnnxModelMetadata.PreprocessingProfileKey] = options.PreprocessingProfile,
            [OnnxModelMetadata.UntrainedKey] = checkpoint.Untrained ? "true" : "false",
            [OnnxModelMetadata.ParameterCountKey] = checkpoint.Architecture.ParameterCount(checkpoint.LabelCount).ToString(CultureInfo.InvariantCulture),
            [OnnxModelMetadata.FramesKey] = checkpoint.Architecture.FramesFor(IEcgScorer.WindowLength).ToString(CultureInfo.InvariantCulture),
        };
        foreach (var (key, value) in metadata.OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            model.MetadataProps.Add(new StringStringEntryProto { Key = key, Value = value });
        }

        // The model id is the SHA-256 of the serialized model (graph, weights and the metadata above).
        using (var hashing = new HashingStream())
        {
            model.WriteTo(hashing);
            model.MetadataProps.Add(new StringStringEntryProto { Key = OnnxModelMetadata.ModelIdKey, Value = hashing.HexDigest() });
        }

        return model;
    }

    /// <summary>Builds the model and writes it to <paramref name="path"/>; returns the descriptor read back from the metadata.</summary>
    public static ModelDescriptor Export(HubertCheckpoint checkpoint, string path, OnnxExportOptions? options = null)
    {
        var model = Build(checkpoint, options);
        var directory = Path.GetDirectoryName(Path.GetFullPath(path));
        if (!string.IsNullOrEmpty(directory))
        {
            Directory.CreateDirectory(directory);
        }

        using (var stream = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20))
        {
            model.WriteTo(stream);
        }

        return OnnxModelMetadata.ReadDescriptor(path);
    }

    private static GraphProto BuildGraph(HubertCheckpoint checkpoint)
    {
        var a = checkpoint.Architecture;
        var g = new OnnxGraphBuilder();
        g.Graph.Name = "hubert_ecg";
        g.Graph.Input.Add(OnnxGraphBuilder.TensorInfo(InputName, "batch", "samples"));

        // Feature encoder: [B, L] -> [B, 1, L] -> conv stack -> [B, C, T].
        var x = g.Node("Unsqueeze", [InputName, g.Int64s("axes_1", 1)]);
        for (var i = 0; i < a.ConvDim.Count; i++)
        {
            var p = $"feature_extractor.conv_layers.{i.ToString(CultureInfo.InvariantCulture)}.";
            var convInputs = new List<string> { g.Weight(p + "conv.weight", checkpoint[p + "conv.weight"]) };
            if (a.ConvBias)
            {
                convInputs.Add(g.Weight(p + "conv.bias", checkpoint[p + "conv.bias"]));
            }

            x = g.Node("Conv", [x, .. convInputs], [OnnxGraphBuilder.Ints("kernel_shape", a.ConvKernel[i]), OnnxGraphBuilder.Ints("strides", a.ConvStride[i])]);
            if (a.FeatExtractNorm == FeatureExtractorNorm.Group && i == 0)
            {
                // GroupNorm with one group per channel is instance normalisation with a per-channel affine.
                x = g.Node("InstanceNormalization", [x, g.Weight(p + "layer_norm.weight", checkpoint[p + "layer_norm.weight"]), g.Weight(p + "layer_norm.bias", checkpoint[p + "layer_norm.bias"])], [OnnxGraphBuilder.Float("epsilon", 1e-5f)]);
            }
            else if (a.FeatExtractNorm == FeatureExtractorNorm.Layer)
            {
                x = g.Node("Transpose", [x], [OnnxGraphBuilder.Ints("perm", 0, 2, 1)]);
                x = LayerNorm(g, checkpoint, x, p + "layer_norm", 1e-5f);
                x = g.Node("Transpose", [x], [OnnxGraphBuilder.Ints("perm", 0, 2, 1)]);
            }

            x = Activation(g, x);
        }

        // [B, C, T] -> [B, T, C]; feature projection.
        x = g.Node("Transpose", [x], [OnnxGraphBuilder.Ints("perm", 0, 2, 1)]);
        if (a.FeatProjLayerNorm)
        {
            x = LayerNorm(g, checkpoint, x, "feature_projection.layer_norm", (float)a.LayerNormEps);
        }

        x = Linear(g, checkpoint, x, "feature_projection.projection");

        // Positional conv embedding: grouped conv with padding K/2, drop the last frame for an even kernel, activation.
        var pos = g.Node("Transpose", [x], [OnnxGraphBuilder.Ints("perm", 0, 2, 1)]);
        var k = a.NumConvPosEmbeddings;
        pos = g.Node(
            "Conv",
            [pos, g.Weight(HubertCheckpoint.PositionalConvWeight, checkpoint[HubertCheckpoint.PositionalConvWeight]), g.Weight("encoder.pos_conv_embed.conv.bias", checkpoint["encoder.pos_conv_embed.conv.bias"])],
            [OnnxGraphBuilder.Ints("kernel_shape", k), OnnxGraphBuilder.Ints("pads", k / 2, k / 2), OnnxGraphBuilder.Int("group", a.NumConvPosEmbeddingGroups)]);
        if (k % 2 == 0)
        {
            pos = g.Node("Slice", [pos, g.Int64s("slice_starts", 0), g.Int64s("slice_ends", -1), g.Int64s("slice_axes", 2)]);
        }

        pos = Activation(g, pos);
        pos = g.Node("Transpose", [pos], [OnnxGraphBuilder.Ints("perm", 0, 2, 1)]);
        x = g.Node("Add", [x, pos]);

        var eps = (float)a.LayerNormEps;
        if (!a.DoStableLayerNorm)
        {
            x = LayerNorm(g, checkpoint, x, "encoder.layer_norm", eps);
        }

        var shapeHeads = g.Int64s("shape_heads", 0, 0, a.NumAttentionHeads, a.HeadDim);
        var shapeHidden = g.Int64s("shape_hidden", 0, 0, a.HiddenSize);
        var splitSizes = g.Int64s("split_qkv", a.HiddenSize, a.HiddenSize, a.HiddenSize);
        for (var l = 0; l < a.NumHiddenLayers; l++)
        {
            var p = $"encoder.layers.{l.ToString(CultureInfo.InvariantCulture)}.";
            if (a.DoStableLayerNorm)
            {
                var attention = Attention(g, checkpoint, a, LayerNorm(g, checkpoint, x, p + "layer_norm", eps), p, shapeHeads, shapeHidden, splitSizes);
                x = g.Node("Add", [x, attention]);
                var ff = FeedForward(g, checkpoint, LayerNorm(g, checkpoint, x, p + "final_layer_norm", eps), p);
                x = g.Node("Add", [x, ff]);
            }
            else
            {
                var attention = Attention(g, checkpoint, a, x, p, shapeHeads, shapeHidden, splitSizes);
                x = LayerNorm(g, checkpoint, g.Node("Add", [x, attention]), p + "layer_norm", eps);
                var ff = FeedForward(g, checkpoint, x, p);
                x = LayerNorm(g, checkpoint, g.Node("Add", [x, ff]), p + "final_layer_norm", eps);
            }
        }

        if (a.DoStableLayerNorm)
        {
            x = LayerNorm(g, checkpoint, x, "encoder.layer_norm", eps);
        }

        g.Node("Identity", [x], output: LastHiddenStateName);
        g.Node("ReduceMean", [LastHiddenStateName], [OnnxGraphBuilder.Ints("axes", 1), OnnxGraphBuilder.Int("keepdims", 0)], output: EmbeddingName);
        g.Graph.Output.Add(OnnxGraphBuilder.TensorInfo(LastHiddenStateName, "batch", "frames", a.HiddenSize));
        g.Graph.Output.Add(OnnxGraphBuilder.TensorInfo(EmbeddingName, "batch", a.HiddenSize));
        if (checkpoint.HasHead)
        {
            var logits = Linear(g, checkpoint, EmbeddingName, "classifier");
            g.Node("Identity", [logits], output: LogitsName);
            g.Node("Sigmoid", [LogitsName], output: ProbabilitiesName);
            g.Graph.Output.Add(OnnxGraphBuilder.TensorInfo(LogitsName, "batch", checkpoint.LabelCount));
            g.Graph.Output.Add(OnnxGraphBuilder.TensorInfo(ProbabilitiesName, "batch", checkpoint.LabelCount));
        }

        return g.Graph;
    }

    private static string Activation(OnnxGraphBuilder g, string x) =>
        g.Node("Gelu", [x], domain: OnnxGraphBuilder.MicrosoftDomain);

    private static string LayerNorm(OnnxGraphBuilder g, HubertCheckpoint c, string x, string name, float epsilon) =>
        g.Node(
            "LayerNormalization",
            [x, g.Weight(name + ".weight", c[name + ".weight"]), g.Weight(name + ".bias", c[name + ".bias"])],
            [OnnxGraphBuilder.Int("axis", -1), OnnxGraphBuilder.Float("epsilon", epsilon)]);

    /// <summary>y = x W^T + b, with W stored transposed ([in, out]) so MatMul reads it directly.</summary>
    private static string Linear(OnnxGraphBuilder g, HubertCheckpoint c, string x, string name)
    {
        var w = c[name + ".weight"];
        return g.Node("Add", [g.Node("MatMul", [x, g.Weight(name + ".weight_t", Transpose(w))]), g.Weight(name + ".bias", c[name + ".bias"])]);
    }

    private static string FeedForward(OnnxGraphBuilder g, HubertCheckpoint c, string x, string p)
    {
        var h = Activation(g, Linear(g, c, x, p + "feed_forward.intermediate_dense"));
        return Linear(g, c, h, p + "feed_forward.output_dense");
    }

    /// <summary>
    /// Multi-head self-attention as in transformers (no mask): softmax((x Wq^T + bq) * d^-1/2 (x Wk^T + bk)^T) (x Wv^T + bv),
    /// then out_proj. Q, K and V come from one fused [hidden, 3 hidden] MatMul; the scale is folded into the Q weights.
    /// </summary>
    private static string Attention(OnnxGraphBuilder g, HubertCheckpoint c, HubertArchitecture a, string x, string p, string shapeHeads, string shapeHidden, string splitSizes)
    {
        var h = a.HiddenSize;
        var scale = 1.0 / Math.Sqrt(a.HeadDim);
        var wq = c[p + "attention.q_proj.weight"].Data;
        var wk = c[p + "attention.k_proj.weight"].Data;
        var wv = c[p + "attention.v_proj.weight"].Data;
        var fused = new float[h * 3 * h];
        for (var i = 0; i < h; i++)
        {
            for (var j = 0; j < h; j++)
            {
                var row = i * 3 * h;
                fused[row + j] = (float)(wq[(j * h) + i] * scale);
                fused[row + h + j] = wk[(j * h) + i];
                fused[row + (2 * h) + j] = wv[(j * h) + i];
            }
        }

        var bias = new float[3 * h];
        var bq = c[p + "attention.q_proj.bias"].Data;
        for (var j = 0; j < h; j++)
        {
            bias[j] = (float)(bq[j] * scale);
        }

        c[p + "attention.k_proj.bias"].Data.CopyTo(bias, h);
        c[p + "attention.v_proj.bias"].Data.CopyTo(bias, 2 * h);

        var qkv = g.Node("Add", [g.Node("MatMul", [x, g.Weight(p + "attention.qkv.weight_t", [h, 3 * h], fused)]), g.Weight(p + "attention.qkv.bias", [3 * h], bias)]);
        var parts = g.NodeMulti("Split", [qkv, splitSizes], 3, [OnnxGraphBuilder.Int("axis", -1)]);
        var q = g.Node("Transpose", [g.Node("Reshape", [parts[0], shapeHeads])], [OnnxGraphBuilder.Ints("perm", 0, 2, 1, 3)]);
        var kT = g.Node("Transpose", [g.Node("Reshape", [parts[1], shapeHeads])], [OnnxGraphBuilder.Ints("perm", 0, 2, 3, 1)]);
        var v = g.Node("Transpose", [g.Node("Reshape", [parts[2], shapeHeads])], [OnnxGraphBuilder.Ints("perm", 0, 2, 1, 3)]);
        var weights = g.Node("Softmax", [g.Node("MatMul", [q, kT])], [OnnxGraphBuilder.Int("axis", -1)]);
        var context = g.Node("Transpose", [g.Node("MatMul", [weights, v])], [OnnxGraphBuilder.Ints("perm", 0, 2, 1, 3)]);
        context = g.Node("Reshape", [context, shapeHidden]);
        return Linear(g, c, context, p + "attention.out_proj");
    }

    private static WeightTensor Transpose(WeightTensor w)
    {
        int rows = w.Shape[0], cols = w.Shape[1];
        var data = new float[w.Data.Length];
        for (var r = 0; r < rows; r++)
        {
            for (var col = 0; col < cols; col++)
            {
                data[(col * rows) + r] = w.Data[(r * cols) + col];
            }
        }

        return new WeightTensor([cols, rows], data);
    }

    /// <summary>A write-only stream that hashes what is written to it.</summary>
    private sealed class HashingStream : Stream
    {
        private readonly IncrementalHash _hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);

        public override bool CanRead => false;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public string HexDigest() => Convert.ToHexStringLower(_hash.GetHashAndReset());

        public override void Flush()
        {
        }

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => _hash.AppendData(buffer, offset, count);

        public override void Write(ReadOnlySpan<byte> buffer) => _hash.AppendData(buffer);

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                _hash.Dispose();
            }

            base.Dispose(disposing);
        }
    }
}
