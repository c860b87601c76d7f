using HubertEcg.Inference.Model;
using HubertEcg.Inference.Onnx;

namespace HubertEcg.Inference.Tests.Model;

/// <summary>
/// The I/O-binding path of <see cref="OnnxEcgScorer"/> (fixed-shape, padded batches bound once and run with
/// RunWithBinding) on the CPU provider, against the path without binding: with tensors bound in host memory, and in the
/// provider's device memory (the GPU default), where each batch is copied in and its outputs out by ONNX Runtime
/// through the copy model's session (on the CPU provider the device memory is host memory and the copies CPU copies).
/// </summary>
public sealed class IoBindingTests
{
    [Theory]
    [InlineData(ModelPrecision.Fp32, BoundMemory.Host)]
    [InlineData(ModelPrecision.Fp16, BoundMemory.Host)]
    [InlineData(ModelPrecision.Fp32, BoundMemory.Device)]
    [InlineData(ModelPrecision.Fp16, BoundMemory.Device)]
    public void BoundScoringGivesTheSameOutputsAsUnboundIncludingAPaddedLastBatch(ModelPrecision precision, BoundMemory memory)
    {
        using var temp = new TempDir();
        var path = temp.File("model.onnx");
        var checkpoint = HubertCheckpoint.Load(ModelTestSupport.Fixture("tiny-sft-164"));
        HubertOnnxExporter.Export(checkpoint, path, new OnnxExportOptions { Precision = precision });

        // 11 windows at MaxBatch 8: one full run of 8, then 3 windows padded to a run of 4.
        const int batch = 11;
        var windows = Fp16ParityTests.SyntheticWindows(batch);
        using var unbound = new OnnxEcgScorer(path, new ScorerOptions { IntraOpThreads = 1, MaxBatch = 8, IoBinding = false });
        using var bound = new OnnxEcgScorer(path, new ScorerOptions { IntraOpThreads = 1, MaxBatch = 8, IoBinding = true, BindingMemory = memory });
        Assert.False(unbound.Options.UsesIoBinding);
        Assert.True(bound.Options.UsesIoBinding);
        Assert.Equal(
            memory == BoundMemory.Host ? "GC-pinned managed memory" : "CPU provider device memory (host memory), copied from and to GC-pinned managed memory by ONNX Runtime",
            bound.BindingDescription);

        var (e0, p0) = Score(unbound, windows, batch);
        for (var repeat = 0; repeat < 3; repeat++)
        {
            // Repeats reuse the bound sets; the padded rows of the short run must not leak into the outputs.
            var (e1, p1) = Score(bound, windows, batch);
            Assert.Equal(e0, e1);
            Assert.Equal(p0, p1);
        }

        // A lone short batch (3 windows padded to 4) after the full ones, and a single window (shape 1).
        var (e3, p3) = Score(bound, windows.AsSpan(0, 3 * IEcgScorer.WindowLength).ToArray(), 3);
        Assert.Equal(e0.AsSpan(0, 3 * bound.Model.HiddenSize).ToArray(), e3);
        Assert.Equal(p0.AsSpan(0, 3 * bound.Model.LabelCount).ToArray(), p3);
        // ONNX Runtime's CPU kernels round a batch of one slightly differently (about 5e-7) from larger batches, with
        // or without binding, so the single window is compared with the unbound scorer's run of that one window.
        var single = windows.AsSpan(8 * IEcgScorer.WindowLength, IEcgScorer.WindowLength).ToArray();
        var (e5, p5) = Score(unbound, single, 1);
        var (e6, p6) = Score(bound, single, 1);
        Assert.Equal(e5, e6);
        Assert.Equal(p5, p6);
    }

    [Theory]
    [InlineData(BoundMemory.Host)]
    [InlineData(BoundMemory.Device)]
    public void ConcurrentCallersEachBindTheirOwnBuffers(BoundMemory memory)
    {
        using var temp = new TempDir();
        var path = temp.File("model.onnx");
        HubertOnnxExporter.Export(HubertCheckpoint.Load(ModelTestSupport.Fixture("tiny-sft-164")), path);
        const int batch = 6;
        var windows = Fp16ParityTests.SyntheticWindows(batch * 4);
        using var unbound = new OnnxEcgScorer(path, new ScorerOptions { IntraOpThreads = 1, MaxBatch = 8, IoBinding = false });
        using var bound = new OnnxEcgScorer(path, new ScorerOptions { IntraOpThreads = 1, MaxBatch = 8, IoBinding = true, BindingMemory = memory });

        // Four callers, each its own slice of windows, several rounds at once on the shared session.
        var expected = Enumerable.Range(0, 4).Select(c => Score(unbound, Slice(windows, c, batch), batch)).ToArray();
        var results = new (float[] E, float[] P)[4][];
        Parallel.For(0, 4, new ParallelOptions { MaxDegreeOfParallelism = 4 }, c =>
        {
            results[c] = Enumerable.Range(0, 5).Select(_ => Score(bound, Slice(windows, c, batch), batch)).ToArray();
        });

        for (var c = 0; c < 4; c++)
        {
            foreach (var (e, p) in results[c])
            {
                Assert.Equal(expected[c].E, e);
                Assert.Equal(expected[c].P, p);
            }
        }
    }

    [Theory]
    [InlineData(1, 32, 1)]
    [InlineData(3, 32, 4)]
    [InlineData(17, 32, 32)]
    [InlineData(32, 32, 32)]
    [InlineData(5, 6, 6)]
    [InlineData(64, 48, 48)]
    public void BoundShapesArePowersOfTwoUpToTheMaximum(int windows, int maxBatch, int shape) =>
        Assert.Equal(shape, OnnxEcgScorer.BoundShape(windows, maxBatch));

    [Fact]
    public void BindingDefaultsOnForCudaAndOffForTheCpu()
    {
        Assert.False(new ScorerOptions().UsesIoBinding);
        Assert.True(new ScorerOptions { Provider = ExecutionProviderKind.Cuda }.UsesIoBinding);
        Assert.False(new ScorerOptions { Provider = ExecutionProviderKind.Cuda, IoBinding = false }.UsesIoBinding);
        Assert.True(new ScorerOptions { IoBinding = true }.UsesIoBinding);
    }

    [Fact]
    public void DeviceBindingDefaultsOnForCudaAndHostForTheCpu()
    {
        Assert.Equal(BoundMemory.Host, new ScorerOptions().EffectiveBindingMemory);
        Assert.Equal(BoundMemory.Device, new ScorerOptions { Provider = ExecutionProviderKind.Cuda }.EffectiveBindingMemory);
        Assert.Equal(BoundMemory.Host, new ScorerOptions { Provider = ExecutionProviderKind.Cuda, BindingMemory = BoundMemory.Host }.EffectiveBindingMemory);
        Assert.Equal(BoundMemory.Device, new ScorerOptions { BindingMemory = BoundMemory.Device }.EffectiveBindingMemory);
    }

    [Fact]
    public void CudaGraphsAreRefusedWithoutDeviceBindingInOneLine()
    {
        var graphs = new CudaProviderSettings { EnableCudaGraph = true };
        Assert.Empty(new ScorerOptions { Provider = ExecutionProviderKind.Cuda, Cuda = graphs }.Problems());
        Assert.True(new ScorerOptions { Provider = ExecutionProviderKind.Cuda, Cuda = graphs }.UsesCudaGraph);
        Assert.Equal(
            [ScorerOptions.CudaGraphNeedsDeviceBinding],
            new ScorerOptions { Provider = ExecutionProviderKind.Cuda, Cuda = graphs, BindingMemory = BoundMemory.Host }.Problems());
        Assert.Equal(
            [ScorerOptions.CudaGraphNeedsDeviceBinding],
            new ScorerOptions { Provider = ExecutionProviderKind.Cuda, Cuda = graphs, IoBinding = false }.Problems());

        // The CPU provider takes no CUDA settings: they are ignored there, graphs included.
        Assert.False(new ScorerOptions { Cuda = graphs, IoBinding = false }.UsesCudaGraph);
        Assert.Empty(new ScorerOptions { Cuda = graphs, IoBinding = false }.Problems());

        // The scorer checks its options before it opens anything (this build may have no CUDA at all).
        var e = Assert.Throws<ArgumentException>(() => new OnnxEcgScorer(
            "/nonexistent/model.onnx", new ScorerOptions { Provider = ExecutionProviderKind.Cuda, Cuda = graphs, IoBinding = false }));
        Assert.Equal($"scorer options: {ScorerOptions.CudaGraphNeedsDeviceBinding} (Parameter 'options')", e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void TheCopyModelCopiesEveryBitBetweenBoundTensors()
    {
        // Values a careless copy would change: signed zero, NaN payloads, subnormals, infinities.
        float[] values =
        [
            -0f, 0f, float.NaN, BitConverter.Int32BitsToSingle(0x7FC00001), BitConverter.Int32BitsToSingle(1),
            float.PositiveInfinity, float.NegativeInfinity, float.MaxValue, -1.5f, 3.25e-20f, 7f, -7f,
        ];
        using var session = new Microsoft.ML.OnnxRuntime.InferenceSession(OnnxCopyModel.Bytes);
        var target = new float[values.Length];
        using var from = Microsoft.ML.OnnxRuntime.OrtValue.CreateTensorValueFromMemory(values, [3, 4]);
        using var to = Microsoft.ML.OnnxRuntime.OrtValue.CreateTensorValueFromMemory(target, [3, 4]);
        using var binding = session.CreateIoBinding();
        using var runOptions = new Microsoft.ML.OnnxRuntime.RunOptions();
        binding.BindInput(OnnxCopyModel.InputName, from);
        binding.BindOutput(OnnxCopyModel.OutputName, to);
        for (var round = 0; round < 3; round++)
        {
            Array.Clear(target);
            session.RunWithBinding(runOptions, binding);
            Assert.Equal(values.Select(BitConverter.SingleToInt32Bits), target.Select(BitConverter.SingleToInt32Bits));
            values[11] = round;
        }
    }

    private static float[] Slice(float[] windows, int caller, int batch) =>
        windows.AsSpan(caller * batch * IEcgScorer.WindowLength, batch * IEcgScorer.WindowLength).ToArray();

    private static (float[] E, float[] P) Score(OnnxEcgScorer scorer, float[] windows, int batch)
    {
        var e = new float[batch * scorer.Model.HiddenSize];
        var p = new float[batch * scorer.Model.LabelCount];
        scorer.Score(windows, batch, e, p);
        return (e, p);
    }
}
