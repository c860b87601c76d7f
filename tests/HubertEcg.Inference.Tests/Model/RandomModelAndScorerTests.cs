using HubertEcg.Inference.Model;
using HubertEcg.Inference.Onnx;
using Xunit.Abstractions;

namespace HubertEcg.Inference.Tests.Model;

public sealed class RandomModelAndScorerTests(ITestOutputHelper output) : IDisposable
{
    private readonly TempDir _temp = new();

    public void Dispose() => _temp.Dispose();

    [Fact]
    public void TinyRandomModelWithHeadIsMarkedUntrainedAndScores()
    {
        var codes = LabelCatalog.LoadCodes(ModelTestSupport.LabelsCsv);
        Assert.Equal(164, codes.Count);
        var checkpoint = RandomModelFactory.Create(HubertArchitecture.Tiny(), labels: 164, seed: 11);
        Assert.True(checkpoint.Untrained);
        var path = _temp.File("tiny.onnx");
        var exported = HubertOnnxExporter.Export(checkpoint, path, new OnnxExportOptions { LabelCodes = codes });

        var descriptor = ModelDescriptor.FromOnnxFile(path);
        Assert.Equal(exported, descriptor with { LabelCodes = exported.LabelCodes });
        Assert.True(descriptor.Untrained);
        Assert.Equal(32, descriptor.HiddenSize);
        Assert.Equal(codes, descriptor.LabelCodes);
        Assert.Equal("hubert-ecg-2024", descriptor.PreprocessingProfile);
        Assert.Equal("random:seed=11", descriptor.SourceHash);
        Assert.Equal(32, HubertArchitecture.FromConfigJson(descriptor.ArchitectureJson, path).HiddenSize);

        using var scorer = new OnnxEcgScorer(path, new ScorerOptions { IntraOpThreads = 1 });
        Assert.Equal(descriptor, scorer.Model with { LabelCodes = descriptor.LabelCodes });
        var windows = ModelTestSupport.Input("tiny-pretrained");
        var embeddings = new float[4 * 32];
        var probabilities = new float[4 * 164];
        scorer.Score(windows, 4, embeddings, probabilities);
        Assert.All(probabilities, p => Assert.InRange(p, 0f, 1f));
        Assert.All(embeddings, e => Assert.True(float.IsFinite(e)));
        Assert.True(embeddings.Select(Math.Abs).Max() > 0);
        Assert.NotEqual(embeddings.AsSpan(0, 32).ToArray(), embeddings.AsSpan(32, 32).ToArray());
    }

    [Fact]
    public async Task ConcurrentScoreCallsGetTheirOwnBuffers()
    {
        var path = _temp.File("concurrent.onnx");
        HubertOnnxExporter.Export(RandomModelFactory.Create(HubertArchitecture.Tiny(), labels: 7, seed: 5), path);
        using var scorer = new OnnxEcgScorer(path, new ScorerOptions { IntraOpThreads = 1, MaxBatch = 2 });
        var input = ModelTestSupport.Input("tiny-pretrained");
        var expected = new List<float[]>();
        for (var w = 0; w < 4; w++)
        {
            expected.Add(scorer.Run(input.AsSpan(w * IEcgScorer.WindowLength, IEcgScorer.WindowLength), 1).Probabilities!);
        }

        // Each task scores a different window repeatedly; mixed-up buffers would hand one task another's result.
        var tasks = Enumerable.Range(0, 4).Select(w => Task.Run(() =>
        {
            var window = input.AsSpan(w * IEcgScorer.WindowLength, IEcgScorer.WindowLength).ToArray();
            var probabilities = new float[7];
            for (var i = 0; i < 20; i++)
            {
                scorer.Score(window, 1, new float[32], probabilities);
                Assert.Equal(expected[w], probabilities);
            }
        }));
        await Task.WhenAll(tasks);
    }

    [Fact]
    public void SteadyStateScoringAllocatesNoBuffers()
    {
        var path = _temp.File("alloc.onnx");
        RandomModelFactory.ExportRandom(HubertArchitecture.Tiny(), path, labels: 164);
        using var scorer = new OnnxEcgScorer(path, new ScorerOptions { IntraOpThreads = 1, MaxBatch = 4 });
        var windows = ModelTestSupport.Input("tiny-pretrained");
        var embeddings = new float[4 * 32];
        var probabilities = new float[4 * 164];
        scorer.Score(windows, 4, embeddings, probabilities);
        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 10; i++)
        {
            scorer.Score(windows, 4, embeddings, probabilities);
        }

        // One batch's buffers alone are 4 x 6000 x 4 bytes = 96 KB; what is left per call is ONNX Runtime's
        // managed wrapper marshalling names and handles.
        var perCall = (GC.GetAllocatedBytesForCurrentThread() - before) / 10;
        output.WriteLine($"allocated per Score call: {perCall} bytes");
        Assert.InRange(perCall, 0, 2048);
    }

    [Fact]
    public void ModelWithoutHeadHasNoLabels()
    {
        var path = _temp.File("nohead.onnx");
        var exported = RandomModelFactory.ExportRandom(HubertArchitecture.Tiny(layers: 1) with { DoStableLayerNorm = true, FeatExtractNorm = FeatureExtractorNorm.Layer }, path);
        Assert.True(exported.Untrained);
        using var scorer = new OnnxEcgScorer(path);
        Assert.Equal(0, scorer.Model.LabelCount);
        var windows = new float[2 * IEcgScorer.WindowLength];
        windows[5] = 1;
        var embeddings = new float[2 * 32];
        scorer.Score(windows, 2, embeddings, []);
        var outputs = scorer.Run(windows, 2, hiddenStates: true);
        Assert.Null(outputs.Probabilities);
        Assert.Equal(2 * 93 * 32, outputs.LastHiddenState!.Length);
        Assert.Equal(outputs.Embedding, embeddings);
    }

    [Theory]
    [InlineData(15, true, true, 2)]
    [InlineData(16, false, false, 1)]
    [InlineData(7, true, false, 0)]
    public void ArchitectureVariantsExportAndRun(int posKernel, bool convBias, bool featProjLayerNorm, int layers)
    {
        var architecture = HubertArchitecture.Tiny(layers: layers, posKernel: posKernel) with { ConvBias = convBias, FeatProjLayerNorm = featProjLayerNorm };
        var path = _temp.File($"variant-{posKernel}.onnx");
        RandomModelFactory.ExportRandom(architecture, path, labels: 3);
        using var scorer = new OnnxEcgScorer(path, new ScorerOptions { IntraOpThreads = 1 });
        var outputs = scorer.Run(ModelTestSupport.Input("tiny-pretrained"), 4, hiddenStates: true);

        // SamePad drops a frame only for even kernels, so every variant keeps 93 frames.
        Assert.Equal(93, outputs.Frames);
        Assert.Equal(4 * 93 * 32, outputs.LastHiddenState!.Length);
        Assert.All(outputs.Probabilities!, p => Assert.InRange(p, 0f, 1f));
        Assert.Equal(architecture.ParameterCount(3), RandomModelFactory.Create(architecture, 3).Weights.Values.Sum(w => (long)w.Data.Length));
    }

    [Fact]
    public void PublishedSizesHaveTheirShapes()
    {
        Assert.Equal(93, HubertArchitecture.Small.FramesFor(6000));
        Assert.Equal((512, 8, 8, 2048), (HubertArchitecture.Small.HiddenSize, HubertArchitecture.Small.NumHiddenLayers, HubertArchitecture.Small.NumAttentionHeads, HubertArchitecture.Small.IntermediateSize));
        Assert.Equal((768, 12, 12, 3072), (HubertArchitecture.Base.HiddenSize, HubertArchitecture.Base.NumHiddenLayers, HubertArchitecture.Base.NumAttentionHeads, HubertArchitecture.Base.IntermediateSize));
        Assert.Equal((960, 16, 12, 3840), (HubertArchitecture.Large.HiddenSize, HubertArchitecture.Large.NumHiddenLayers, HubertArchitecture.Large.NumAttentionHeads, HubertArchitecture.Large.IntermediateSize));
        Assert.True(HubertArchitecture.Small.ParameterCount(0) < HubertArchitecture.Base.ParameterCount(0));
        Assert.True(HubertArchitecture.Base.ParameterCount(164) < HubertArchitecture.Large.ParameterCount(164));
        Assert.Throws<ArgumentException>(() => HubertArchitecture.ForSize("huge"));
    }

    [Fact]
    public void NonModelFilesAreRejectedWithTheirPath()
    {
        var path = _temp.File("not-a-model.onnx");
        File.WriteAllText(path, "hello, this is not protobuf at all \u00ff\u00ff\u00ff");
        var e = Assert.Throws<CheckpointFormatException>(() => ModelDescriptor.FromOnnxFile(path));
        Assert.Equal(path, e.File);

        var foreign = _temp.File("foreign.onnx");
        var model = new HubertEcg.Inference.Onnx.Proto.ModelProto { IrVersion = 8, ProducerName = "elsewhere" };
        File.WriteAllBytes(foreign, Google.Protobuf.MessageExtensions.ToByteArray(model));
        e = Assert.Throws<CheckpointFormatException>(() => ModelDescriptor.FromOnnxFile(foreign));
        Assert.Contains("not a model exported by hubert-ecg", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ProfilerTraceIsSummarisedByOperator()
    {
        var path = _temp.File("tiny.onnx");
        HubertOnnxExporter.Export(RandomModelFactory.Create(HubertArchitecture.Tiny()), path);
        string trace;
        using (var scorer = new OnnxEcgScorer(path, new ScorerOptions { IntraOpThreads = 1, ProfilePrefix = _temp.File("profile") }))
        {
            scorer.Score(new float[IEcgScorer.WindowLength], 1, new float[32], []);
            trace = scorer.EndProfiling();
        }

        Assert.StartsWith(_temp.File("profile"), Path.GetFullPath(trace), StringComparison.Ordinal);
        var ops = OrtProfileSummary.ByOperator(trace);
        Assert.Contains(ops, o => o.OpType == "Conv" && o.Calls > 0);
        Assert.Contains(ops, o => o.OpType == "MatMul");
    }
}
