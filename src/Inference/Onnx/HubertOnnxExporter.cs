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

    /// <summary>
    /// Precision of the weights and matrix products. <see cref="ModelPrecision.Fp16"/> keeps the model's inputs and
    /// outputs, the residual stream, the normalisations, softmax and the final sigmoid in fp32 (see
    /// <see cref="HubertOnnxExporter"/>).
    /// </summary>
    public ModelPrecision Precision { get; init; } = ModelPrecision.Fp32;
}

/// <summary>
/// Builds the ONNX graph of a HuBERT-ECG checkpoint with the semantics of transformers' HubertModel (eval mode):
/// conv feature encoder, feature projection, positional grouped conv (weight norm folded), post-LN or stable-LN
/// transformer encoder, mean over frames, and the optional linear classifier with sigmoid.
/// Input <c>input_values</c> float32 [batch, samples]; outputs <c>last_hidden_state</c> [batch, frames, hidden],
/// <c>embedding</c> [batch, hidden] and, with a head, <c>logits</c> and <c>probabilities</c> [batch, labels].
/// <para>
/// An fp16 export (<see cref="OnnxExportOptions.Precision"/>) stores every weight that feeds a matrix product (Conv,
/// MatMul) and its bias in fp16 and runs those products, the GELUs between them and the attention's reshapes in fp16.
/// Inputs and outputs stay fp32, and so do the residual stream (each block's output is cast up before it is added),
/// GroupNorm, every LayerNorm (their weights too), the attention softmax, the mean over frames and the final sigmoid:
/// Cast nodes sit at each boundary. ONNX Runtime's CPU provider has no fp16 kernel for some of these ops and runs
/// them in fp32 behind casts it inserts itself, so the model loads and runs on CPU as well.
/// </para>
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
            Graph = BuildGraph(checkpoint, options.Precision),
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

        // Only an fp16 model says so: an fp32 export stays byte for byte what it was before precisions existed, so
        // its model id (and the scores stored under it) carry over.
        if (options.Precision != ModelPrecision.Fp32)
        {
            metadata[OnnxModelMetadata.PrecisionKey] = ModelPrecisions.Name(options.Precision);
        }

        foreach (var (key, value) in metadata.OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            model.MetadataProps.Add(new StringStringEntryProto { Key = key, Value = value });
        }

        // The model id is the SHA-256 of the serialized model (graph, weights and the metadata above): an fp16 export
        // differs from the fp32 one in its weights, its graph and its precision entry, so its id differs too.
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

    private static GraphProto BuildGraph(HubertCheckpoint checkpoint, ModelPrecision precision)
    {
        var a = checkpoint.Architecture;
        var g = new Net(new OnnxGraphBuilder(), checkpoint, precision == ModelPrecision.Fp16);
        g.B.Graph.Name = "hubert_ecg";
        g.B.Graph.Input.Add(OnnxGraphBuilder.TensorInfo(InputName, "batch", "samples"));

        // Feature encoder: [B, L] -> [B, 1, L] -> conv stack -> [B, C, T].
        var x = g.B.Node("Unsqueeze", [InputName, g.B.Int64s("axes_1", 1)]);
        for (var i = 0; i < a.ConvDim.Count; i++)
        {
            var p = $"feature_extractor.conv_layers.{i.ToString(CultureInfo.InvariantCulture)}.";
            var convInputs = new List<string> { g.Product(p + "conv.weight") };
            if (a.ConvBias)
            {
                convInputs.Add(g.Product(p + "conv.bias"));
            }

            x = g.Low("Conv", [g.ToLow(x), .. convInputs], [OnnxGraphBuilder.Ints("kernel_shape", a.ConvKernel[i]), OnnxGraphBuilder.Ints("strides", a.ConvStride[i])]);
            if (a.FeatExtractNorm == FeatureExtractorNorm.Group && i == 0)
            {
                // GroupNorm with one group per channel is instance normalisation with a per-channel affine (fp32).
                x = g.B.Node("InstanceNormalization", [g.ToFloat(x), g.Float(p + "layer_norm.weight"), g.Float(p + "layer_norm.bias")], [OnnxGraphBuilder.Float("epsilon", 1e-5f)]);
            }
            else if (a.FeatExtractNorm == FeatureExtractorNorm.Layer)
            {
                x = g.Same("Transpose", x, [OnnxGraphBuilder.Ints("perm", 0, 2, 1)]);
                x = LayerNorm(g, x, p + "layer_norm", 1e-5f);
                x = g.B.Node("Transpose", [x], [OnnxGraphBuilder.Ints("perm", 0, 2, 1)]);
            }

            x = Activation(g, x);
        }

        // [B, C, T] -> [B, T, C]; feature projection.
        x = g.Same("Transpose", x, [OnnxGraphBuilder.Ints("perm", 0, 2, 1)]);
        if (a.FeatProjLayerNorm)
        {
            x = LayerNorm(g, x, "feature_projection.layer_norm", (float)a.LayerNormEps);
        }

        x = Linear(g, x, "feature_projection.projection");

        // Positional conv embedding: grouped conv with padding K/2, drop the last frame for an even kernel, activation.
        var pos = g.Same("Transpose", g.ToLow(x), [OnnxGraphBuilder.Ints("perm", 0, 2, 1)]);
        var k = a.NumConvPosEmbeddings;
        pos = g.Low(
            "Conv",
            [pos, g.Product(HubertCheckpoint.PositionalConvWeight), g.Product("encoder.pos_conv_embed.conv.bias")],
            [OnnxGraphBuilder.Ints("kernel_shape", k), OnnxGraphBuilder.Ints("pads", k / 2, k / 2), OnnxGraphBuilder.Int("group", a.NumConvPosEmbeddingGroups)]);
        if (k % 2 == 0)
        {
            pos = g.Same("Slice", pos, inputs: [g.B.Int64s("slice_starts", 0), g.B.Int64s("slice_ends", -1), g.B.Int64s("slice_axes", 2)]);
        }

        pos = Activation(g, pos);
        pos = g.Same("Transpose", pos, [OnnxGraphBuilder.Ints("perm", 0, 2, 1)]);

        // The residual stream stays fp32 from here on.
        x = g.B.Node("Add", [g.ToFloat(x), g.ToFloat(pos)]);

        var eps = (float)a.LayerNormEps;
        if (!a.DoStableLayerNorm)
        {
            x = LayerNorm(g, x, "encoder.layer_norm", eps);
        }

        var shapeHeads = g.B.Int64s("shape_heads", 0, 0, a.NumAttentionHeads, a.HeadDim);
        var shapeHidden = g.B.Int64s("shape_hidden", 0, 0, a.HiddenSize);
        var splitSizes = g.B.Int64s("split_qkv", a.HiddenSize, a.HiddenSize, a.HiddenSize);
        for (var l = 0; l < a.NumHiddenLayers; l++)
        {
            var p = $"encoder.layers.{l.ToString(CultureInfo.InvariantCulture)}.";
            if (a.DoStableLayerNorm)
            {
                var attention = Attention(g, a, LayerNorm(g, x, p + "layer_norm", eps), p, shapeHeads, shapeHidden, splitSizes);
                x = g.B.Node("Add", [x, g.ToFloat(attention)]);
                var ff = FeedForward(g, LayerNorm(g, x, p + "final_layer_norm", eps), p);
                x = g.B.Node("Add", [x, g.ToFloat(ff)]);
            }
            else
            {
                var attention = Attention(g, a, x, p, shapeHeads, shapeHidden, splitSizes);
                x = LayerNorm(g, g.B.Node("Add", [x, g.ToFloat(attention)]), p + "layer_norm", eps);
                var ff = FeedForward(g, x, p);
                x = LayerNorm(g, g.B.Node("Add", [x, g.ToFloat(ff)]), p + "final_layer_norm", eps);
            }
        }

        if (a.DoStableLayerNorm)
        {
            x = LayerNorm(g, x, "encoder.layer_norm", eps);
        }

        g.B.Node("Identity", [x], output: LastHiddenStateName);
        g.B.Node("ReduceMean", [LastHiddenStateName], [OnnxGraphBuilder.Ints("axes", 1), OnnxGraphBuilder.Int("keepdims", 0)], output: EmbeddingName);
        g.B.Graph.Output.Add(OnnxGraphBuilder.TensorInfo(LastHiddenStateName, "batch", "frames", a.HiddenSize));
        g.B.Graph.Output.Add(OnnxGraphBuilder.TensorInfo(EmbeddingName, "batch", a.HiddenSize));
        if (checkpoint.HasHead)
        {
            var logits = Linear(g, EmbeddingName, "classifier");
            g.B.Node("Identity", [g.ToFloat(logits)], output: LogitsName);
            g.B.Node("Sigmoid", [LogitsName], output: ProbabilitiesName);
            g.B.Graph.Output.Add(OnnxGraphBuilder.TensorInfo(LogitsName, "batch", checkpoint.LabelCount));
            g.B.Graph.Output.Add(OnnxGraphBuilder.TensorInfo(ProbabilitiesName, "batch", checkpoint.LabelCount));
        }

        return g.B.Graph;
    }

    /// <summary>GELU in the precision of its input.</summary>
    private static string Activation(Net g, string x) =>
        g.Same("Gelu", x, domain: OnnxGraphBuilder.MicrosoftDomain);

    /// <summary>LayerNorm in fp32 (input cast up when it is fp16), fp32 weights; the result is fp32.</summary>
    private static string LayerNorm(Net g, string x, string name, float epsilon) =>
        g.B.Node(
            "LayerNormalization",
            [g.ToFloat(x), g.Float(name + ".weight"), g.Float(name + ".bias")],
            [OnnxGraphBuilder.Int("axis", -1), OnnxGraphBuilder.Float("epsilon", epsilon)]);

    /// <summary>y = x W^T + b in the products' precision, with W stored transposed ([in, out]) so MatMul reads it directly.</summary>
    private static string Linear(Net g, string x, string name)
    {
        var w = g.Checkpoint[name + ".weight"];
        return g.Low("Add", [g.Low("MatMul", [g.ToLow(x), g.Product(name + ".weight_t", Transpose(w))]), g.Product(name + ".bias")]);
    }

    private static string FeedForward(Net g, string x, string p)
    {
        var h = Activation(g, Linear(g, x, p + "feed_forward.intermediate_dense"));
        return Linear(g, h, p + "feed_forward.output_dense");
    }

    /// <summary>
    /// Multi-head self-attention as in transformers (no mask): softmax((x Wq^T + bq) * d^-1/2 (x Wk^T + bk)^T) (x Wv^T + bv),
    /// then out_proj. Q, K and V come from one fused [hidden, 3 hidden] MatMul; the scale is folded into the Q weights.
    /// The softmax runs in fp32.
    /// </summary>
    private static string Attention(Net g, HubertArchitecture a, string x, string p, string shapeHeads, string shapeHidden, string splitSizes)
    {
        var c = g.Checkpoint;
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

        var qkv = g.Low("Add", [g.Low("MatMul", [g.ToLow(x), g.Product(p + "attention.qkv.weight_t", new WeightTensor([h, 3 * h], fused))]), g.Product(p + "attention.qkv.bias", new WeightTensor([3 * h], bias))]);
        var parts = g.B.NodeMulti("Split", [qkv, splitSizes], 3, [OnnxGraphBuilder.Int("axis", -1)]);
        foreach (var part in parts)
        {
            g.MarkLow(part);
        }

        var q = g.Same("Transpose", g.Same("Reshape", parts[0], inputs: [shapeHeads]), [OnnxGraphBuilder.Ints("perm", 0, 2, 1, 3)]);
        var kT = g.Same("Transpose", g.Same("Reshape", parts[1], inputs: [shapeHeads]), [OnnxGraphBuilder.Ints("perm", 0, 2, 3, 1)]);
        var v = g.Same("Transpose", g.Same("Reshape", parts[2], inputs: [shapeHeads]), [OnnxGraphBuilder.Ints("perm", 0, 2, 1, 3)]);
        var weights = g.B.Node("Softmax", [g.ToFloat(g.Low("MatMul", [q, kT]))], [OnnxGraphBuilder.Int("axis", -1)]);
        var context = g.Same("Transpose", g.Low("MatMul", [g.ToLow(weights), v]), [OnnxGraphBuilder.Ints("perm", 0, 2, 1, 3)]);
        context = g.Same("Reshape", context, inputs: [shapeHidden]);
        return Linear(g, context, p + "attention.out_proj");
    }

    /// <summary>
    /// The graph under construction with the precision of each value: fp32 unless a node was added as running in the
    /// products' precision (<see cref="Low"/>), which is fp16 in an fp16 export and fp32 otherwise. Casts between the
    /// two are added once per value.
    /// </summary>
    private sealed class Net(OnnxGraphBuilder builder, HubertCheckpoint checkpoint, bool half)
    {
        private readonly HashSet<string> _low = new(StringComparer.Ordinal);
        private readonly Dictionary<string, string> _casts = new(StringComparer.Ordinal);

        public OnnxGraphBuilder B { get; } = builder;

        public HubertCheckpoint Checkpoint { get; } = checkpoint;

        /// <summary>A weight feeding a matrix product (or its bias), stored in the products' precision.</summary>
        public string Product(string name) => Product(name, Checkpoint[name]);

        public string Product(string name, WeightTensor tensor) =>
            half ? B.WeightHalf(name, tensor.Shape, tensor.Data) : B.Weight(name, tensor);

        /// <summary>A weight kept in fp32 (normalisations).</summary>
        public string Float(string name) => B.Weight(name, Checkpoint[name]);

        /// <summary>A node that runs in the products' precision; its inputs must already be in it.</summary>
        public string Low(string op, IEnumerable<string> inputs, IEnumerable<AttributeProto>? attributes = null) =>
            MarkLow(B.Node(op, inputs, attributes));

        /// <summary>A node whose output has its first input's precision (transposes, reshapes, GELU).</summary>
        public string Same(string op, string x, IEnumerable<AttributeProto>? attributes = null, IEnumerable<string>? inputs = null, string domain = "")
        {
            var output = B.Node(op, [x, .. inputs ?? []], attributes, domain: domain);
            return _low.Contains(x) ? MarkLow(output) : output;
        }

        public string MarkLow(string value)
        {
            if (half)
            {
                _low.Add(value);
            }

            return value;
        }

        /// <summary><paramref name="x"/> in the products' precision (a Cast to fp16 in an fp16 export).</summary>
        public string ToLow(string x) => !half || _low.Contains(x) ? x : Cast(x, TensorProto.Types.DataType.Float16, low: true);

        /// <summary><paramref name="x"/> in fp32.</summary>
        public string ToFloat(string x) => _low.Contains(x) ? Cast(x, TensorProto.Types.DataType.Float, low: false) : x;

        private string Cast(string x, TensorProto.Types.DataType to, bool low)
        {
            if (!_casts.TryGetValue(x, out var cast))
            {
                cast = B.Node("Cast", [x], [OnnxGraphBuilder.Int("to", (int)to)]);
                if (low)
                {
                    _low.Add(cast);
                }

                _casts[x] = cast;
            }

            return cast;
        }
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
