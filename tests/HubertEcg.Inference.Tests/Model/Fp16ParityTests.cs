using System.Globalization;
using HubertEcg.Inference.Ecg.Synthetic;
using HubertEcg.Inference.Model;
using HubertEcg.Inference.Onnx;
using HubertEcg.Inference.Preprocessing;
using Xunit.Abstractions;

namespace HubertEcg.Inference.Tests.Model;

/// <summary>
/// fp16 exports against the fp32 export of the same checkpoint, on ONNX Runtime's CPU provider: the golden fixtures'
/// inputs, and 1,000 synthetic windows through the golden fine-tuned model (<c>tiny-sft-164</c>: the real golden
/// weights, small enough to score 1,000 windows on a CPU in a test). Measured figures go to the test output.
/// </summary>
public sealed class Fp16ParityTests(ITestOutputHelper output)
{
    private const double MaxProbabilityDifference = 5e-3;
    private const double MinEmbeddingCosine = 0.9999;

    [Theory]
    [InlineData("tiny-pretrained")]
    [InlineData("tiny-variant")]
    [InlineData("tiny-sft-164")]
    public void Fp16MatchesFp32OnTheGoldenInputs(string fixture)
    {
        using var temp = new TempDir();
        var (fp32, fp16) = ExportBoth(fixture, temp);
        var input = ModelTestSupport.Input(fixture);
        Compare(fixture + " golden input", fp32, fp16, input, input.Length / IEcgScorer.WindowLength);
    }

    [Fact]
    public void Fp16MatchesFp32OnAThousandSyntheticWindows()
    {
        using var temp = new TempDir();
        var (fp32, fp16) = ExportBoth("tiny-sft-164", temp);
        const int count = 1000;
        var windows = SyntheticWindows(count);
        Compare("tiny-sft-164, 1,000 synthetic windows", fp32, fp16, windows, count);
    }

    [Fact]
    public void Fp16ExportRecordsItsPrecisionAndHasItsOwnModelId()
    {
        using var temp = new TempDir();
        var (fp32, fp16) = ExportBoth("tiny-sft-164", temp);
        var d32 = OnnxModelMetadata.ReadDescriptor(fp32);
        var d16 = OnnxModelMetadata.ReadDescriptor(fp16);
        Assert.Equal(ModelPrecision.Fp32, d32.Precision);
        Assert.Equal(ModelPrecision.Fp16, d16.Precision);
        Assert.Equal("fp16", OnnxModelMetadata.Read(fp16)[OnnxModelMetadata.PrecisionKey]);

        // An fp32 export writes no precision entry, so its bytes and model id are what they were before fp16 existed.
        Assert.False(OnnxModelMetadata.Read(fp32).ContainsKey(OnnxModelMetadata.PrecisionKey));
        Assert.NotEqual(d32.ModelId, d16.ModelId);
        Assert.Equal(d32.LabelCodes, d16.LabelCodes);
        Assert.Equal(d32.SourceHash, d16.SourceHash);

        // Weights stored as halves: the file is a little over half the size.
        Assert.InRange(new FileInfo(fp16).Length, 0.45 * new FileInfo(fp32).Length, 0.65 * new FileInfo(fp32).Length);
    }

    [Fact]
    public void Fp16GraphKeepsInputsOutputsNormsSoftmaxAndSigmoidInFp32()
    {
        var checkpoint = HubertCheckpoint.Load(ModelTestSupport.Fixture("tiny-sft-164"));
        var model = HubertOnnxExporter.Build(checkpoint, new OnnxExportOptions { Precision = ModelPrecision.Fp16 });
        const int float32 = (int)Onnx.Proto.TensorProto.Types.DataType.Float;
        const int float16 = (int)Onnx.Proto.TensorProto.Types.DataType.Float16;
        var graph = model.Graph;
        Assert.All(graph.Input.Concat(graph.Output), v => Assert.Equal(float32, v.Type.TensorType.ElemType));

        var initializers = graph.Initializer.ToDictionary(t => t.Name, t => t.DataType, StringComparer.Ordinal);
        var producers = graph.Node.SelectMany(n => n.Output.Select(o => (o, n))).ToDictionary(p => p.o, p => p.n, StringComparer.Ordinal);
        var half = new Dictionary<string, bool>(StringComparer.Ordinal);

        // Every matrix product takes fp16 weights; every normalisation fp32 ones.
        foreach (var node in graph.Node.Where(n => n.OpType is "MatMul" or "Conv"))
        {
            foreach (var input in node.Input.Where(initializers.ContainsKey))
            {
                Assert.Equal(float16, initializers[input]);
            }
        }

        foreach (var node in graph.Node.Where(n => n.OpType is "LayerNormalization" or "InstanceNormalization"))
        {
            Assert.Equal(float32, initializers[node.Input[1]]);
            Assert.Equal(float32, initializers[node.Input[2]]);
        }

        // Normalisations, softmax and the sigmoid read fp32 values: a cast to float, or values never cast down.
        foreach (var node in graph.Node.Where(n => n.OpType is "LayerNormalization" or "InstanceNormalization" or "Softmax" or "Sigmoid"))
        {
            Assert.False(IsHalf(node.Input[0]), $"{node.OpType} {node.Name} reads an fp16 value");
        }

        Assert.Contains(graph.Node, n => n.OpType == "Cast");
        Assert.Equal(checkpoint.Architecture.NumHiddenLayers, graph.Node.Count(n => n.OpType == "Softmax"));

        // The ops that compute in fp16: exactly these, each of which the parity tests load and run on the CPU
        // provider (for every golden variant: group- and layer-norm feature encoders, post- and pre-LN, conv bias).
        var halfOps = graph.Node.Where(n => n.Output.Any(IsHalf)).Select(n => n.OpType).Distinct().Order(StringComparer.Ordinal);
        Assert.Equal(["Add", "Cast", "Conv", "Gelu", "MatMul", "Reshape", "Slice", "Split", "Transpose"], halfOps);

        // A value is fp16 when it comes from a cast to fp16 or from a node any of whose inputs is fp16 (casts to fp32 end it).
        bool IsHalf(string value)
        {
            if (half.TryGetValue(value, out var known))
            {
                return known;
            }

            bool result;
            if (initializers.TryGetValue(value, out var type))
            {
                result = type == float16;
            }
            else if (!producers.TryGetValue(value, out var node))
            {
                result = false;
            }
            else if (node.OpType == "Cast")
            {
                result = node.Attribute.Single(a => a.Name == "to").I == float16;
            }
            else
            {
                result = node.OpType is not ("LayerNormalization" or "InstanceNormalization") && node.Input.Any(IsHalf);
            }

            half[value] = result;
            return result;
        }
    }

    [Fact]
    public void AnUnknownPrecisionInTheMetadataIsRefusedNamingTheEntry()
    {
        using var temp = new TempDir();
        var model = HubertOnnxExporter.Build(HubertCheckpoint.Load(ModelTestSupport.Fixture("tiny-pretrained")), new OnnxExportOptions { Precision = ModelPrecision.Fp16 });
        model.MetadataProps.Single(p => p.Key == OnnxModelMetadata.PrecisionKey).Value = "bf16";
        var path = temp.File("bf16.onnx");
        using (var stream = File.Create(path))
        {
            Google.Protobuf.MessageExtensions.WriteTo(model, stream);
        }

        var error = Assert.Throws<CheckpointFormatException>(() => OnnxModelMetadata.ReadDescriptor(path));
        Assert.Contains(OnnxModelMetadata.PrecisionKey, error.Message, StringComparison.Ordinal);
        Assert.Contains("'bf16' is not a known precision (fp32, fp16)", error.Message, StringComparison.Ordinal);
    }

    private static (string Fp32, string Fp16) ExportBoth(string fixture, TempDir temp)
    {
        var checkpoint = HubertCheckpoint.Load(ModelTestSupport.Fixture(fixture));
        var codes = checkpoint.LabelCount == LabelCatalog.CardioLearningCount ? LabelCatalog.LoadCodes(ModelTestSupport.LabelsCsv) : null;
        var fp32 = temp.File(fixture + "-fp32.onnx");
        var fp16 = temp.File(fixture + "-fp16.onnx");
        HubertOnnxExporter.Export(checkpoint, fp32, new OnnxExportOptions { LabelCodes = codes });
        HubertOnnxExporter.Export(checkpoint, fp16, new OnnxExportOptions { LabelCodes = codes, Precision = ModelPrecision.Fp16 });
        return (fp32, fp16);
    }

    /// <summary>One preprocessed 5 s window from each of <paramref name="count"/> synthetic 12-lead ECGs (seeds 1..count).</summary>
    internal static float[] SyntheticWindows(int count)
    {
        var preprocessor = new EcgPreprocessor(new EcgPreprocessorOptions { MaxWindows = 1 });
        var windows = new float[count * IEcgScorer.WindowLength];
        for (var i = 0; i < count; i++)
        {
            var signal = SyntheticEcg.Generate("synthetic-" + i.ToString(CultureInfo.InvariantCulture), seed: i + 1, samplingRate: 500, seconds: 5);
            Assert.Equal(1, preprocessor.Preprocess(signal, windows.AsSpan(i * IEcgScorer.WindowLength, IEcgScorer.WindowLength)));
        }

        return windows;
    }

    private void Compare(string what, string fp32Path, string fp16Path, float[] windows, int batch)
    {
        using var fp32 = new OnnxEcgScorer(fp32Path, new ScorerOptions { IntraOpThreads = 1 });
        using var fp16 = new OnnxEcgScorer(fp16Path, new ScorerOptions { IntraOpThreads = 1 });
        var hidden = fp32.Model.HiddenSize;
        var labels = fp32.Model.LabelCount;
        float[] e32 = new float[batch * hidden], e16 = new float[batch * hidden];
        float[] p32 = new float[batch * labels], p16 = new float[batch * labels];
        fp32.Score(windows, batch, e32, p32);
        fp16.Score(windows, batch, e16, p16);

        var minCosine = double.MaxValue;
        for (var i = 0; i < batch; i++)
        {
            minCosine = Math.Min(minCosine, Cosine(e32.AsSpan(i * hidden, hidden), e16.AsSpan(i * hidden, hidden)));
        }

        var maxProbability = 0.0;
        for (var i = 0; i < p32.Length; i++)
        {
            maxProbability = Math.Max(maxProbability, Math.Abs(p32[i] - p16[i]));
        }

        var line = string.Create(
            CultureInfo.InvariantCulture,
            $"fp16 vs fp32, {what} ({batch} windows): smallest embedding cosine {minCosine:F7}, largest probability difference {(labels > 0 ? maxProbability.ToString("E2", CultureInfo.InvariantCulture) : "n/a (no head)")}");
        output.WriteLine(line);
        Console.WriteLine(line);
        Assert.InRange(minCosine, MinEmbeddingCosine, 1.0000001);
        Assert.InRange(maxProbability, 0, MaxProbabilityDifference);
    }

    private static double Cosine(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        double dot = 0, na = 0, nb = 0;
        for (var i = 0; i < a.Length; i++)
        {
            dot += (double)a[i] * b[i];
            na += (double)a[i] * a[i];
            nb += (double)b[i] * b[i];
        }

        return dot / Math.Sqrt(na * nb);
    }
}
