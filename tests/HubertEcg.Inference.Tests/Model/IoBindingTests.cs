using HubertEcg.Inference.Model;
using HubertEcg.Inference.Onnx;

namespace HubertEcg.Inference.Tests.Model;

/// <summary>
/// The I/O-binding path of <see cref="OnnxEcgScorer"/> (fixed-shape, padded batches bound once and run with
/// RunWithBinding) on the CPU provider, against the path without binding.
/// </summary>
public sealed class IoBindingTests
{
    [Theory]
    [InlineData(ModelPrecision.Fp32)]
    [InlineData(ModelPrecision.Fp16)]
    public void BoundScoringGivesTheSameOutputsAsUnboundIncludingAPaddedLastBatch(ModelPrecision precision)
    {
        using var temp = new TempDir();
        var path = temp.File("model.onnx");
        var checkpoint = HubertCheckpoint.Load(ModelTestSupport.Fixture("tiny-sft-164"));
        HubertOnnxExporter.Export(checkpoint, path, new OnnxExportOptions { Precision = precision });

        // 11 windows at MaxBatch 8: one full run of 8, then 3 windows padded to a run of 4.
        const int batch = 11;
        var windows = Fp16ParityTests.SyntheticWindows(batch);
        using var unbound = new OnnxEcgScorer(path, new ScorerOptions { IntraOpThreads = 1, MaxBatch = 8, IoBinding = false });
        using var bound = new OnnxEcgScorer(path, new ScorerOptions { IntraOpThreads = 1, MaxBatch = 8, IoBinding = true });
        Assert.False(unbound.Options.UsesIoBinding);
        Assert.True(bound.Options.UsesIoBinding);
        Assert.Equal("GC-pinned managed memory", bound.BindingMemory);

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

    [Fact]
    public void ConcurrentCallersEachBindTheirOwnBuffers()
    {
        using var temp = new TempDir();
        var path = temp.File("model.onnx");
        HubertOnnxExporter.Export(HubertCheckpoint.Load(ModelTestSupport.Fixture("tiny-sft-164")), path);
        const int batch = 6;
        var windows = Fp16ParityTests.SyntheticWindows(batch * 4);
        using var unbound = new OnnxEcgScorer(path, new ScorerOptions { IntraOpThreads = 1, MaxBatch = 8, IoBinding = false });
        using var bound = new OnnxEcgScorer(path, new ScorerOptions { IntraOpThreads = 1, MaxBatch = 8, IoBinding = true });

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
