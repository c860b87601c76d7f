using HubertEcg.Inference.IO;
using HubertEcg.Inference.Model;
using HubertEcg.Inference.Onnx;
using Xunit.Abstractions;

namespace HubertEcg.Inference.Tests.Model;

/// <summary>Export each golden checkpoint to ONNX, run it in ONNX Runtime and compare with the float64 PyTorch outputs.</summary>
public sealed class ParityTests(ITestOutputHelper output)
{
    private const double Tolerance = 1e-5;

    [Theory]
    [InlineData("tiny-pretrained")]
    [InlineData("tiny-variant")]
    [InlineData("tiny-sft-164")]
    public void ExportedModelMatchesGoldenOutputs(string fixture)
    {
        using var temp = new TempDir();
        var dir = ModelTestSupport.Fixture(fixture);
        var checkpoint = HubertCheckpoint.Load(dir);
        var codes = checkpoint.LabelCount == LabelCatalog.CardioLearningCount ? LabelCatalog.LoadCodes(ModelTestSupport.LabelsCsv) : null;
        var path = temp.File("model.onnx");
        var descriptor = HubertOnnxExporter.Export(checkpoint, path, new OnnxExportOptions { LabelCodes = codes });

        var input = Npy.Read(Path.Combine(dir, "input.npy"));
        var batch = input.Shape[0];
        using var scorer = new OnnxEcgScorer(path, new ScorerOptions { IntraOpThreads = 1 });
        var outputs = scorer.Run(input.ToSingle(), batch, hiddenStates: true);

        var golden = Npy.Read(Path.Combine(dir, "last_hidden_state.npy"));
        Assert.Equal([batch, outputs.Frames, checkpoint.Architecture.HiddenSize], golden.Shape);
        Check("last_hidden_state", outputs.LastHiddenState!, golden.Data);
        Check("embedding", outputs.Embedding, Npy.Read(Path.Combine(dir, "embedding.npy")).Data);

        var logitsPath = Path.Combine(dir, "logits.npy");
        Assert.Equal(File.Exists(logitsPath), descriptor.LabelCount > 0);
        if (File.Exists(logitsPath))
        {
            Check("logits", outputs.Logits!, Npy.Read(logitsPath).Data);
            Check("probabilities", outputs.Probabilities!, Npy.Read(Path.Combine(dir, "probabilities.npy")).Data);
            Assert.Equal(164, descriptor.LabelCount);
            Assert.Equal(LabelCatalog.LoadCodes(ModelTestSupport.LabelsCsv), descriptor.LabelCodes);
        }
        else
        {
            Assert.Null(outputs.Logits);
            Assert.Null(outputs.Probabilities);
        }
    }

    [Theory]
    [InlineData("tiny-pretrained")]
    [InlineData("tiny-sft-164")]
    public void ScoreWritesTheSameEmbeddingsAndProbabilitiesAsRun(string fixture)
    {
        using var temp = new TempDir();
        var path = temp.File("model.onnx");
        HubertOnnxExporter.Export(HubertCheckpoint.Load(ModelTestSupport.Fixture(fixture)), path);
        var input = ModelTestSupport.Input(fixture);
        var batch = input.Length / IEcgScorer.WindowLength;

        // MaxBatch 3 splits the 4 windows into runs of 3 and 1, exercising two pooled buffer sets.
        using var scorer = new OnnxEcgScorer(path, new ScorerOptions { IntraOpThreads = 1, MaxBatch = 3 });
        var reference = scorer.Run(input, batch);
        var embeddings = new float[batch * scorer.Model.HiddenSize];
        var probabilities = new float[batch * scorer.Model.LabelCount];
        for (var repeat = 0; repeat < 2; repeat++)
        {
            scorer.Score(input, batch, embeddings, probabilities);
            Assert.InRange(MaxAbsDiff(embeddings, reference.Embedding), 0, 1e-6);
            if (scorer.Model.LabelCount > 0)
            {
                Assert.InRange(MaxAbsDiff(probabilities, reference.Probabilities!), 0, 1e-6);
            }
        }

        Assert.Throws<ArgumentException>(() => scorer.Score(input.AsSpan(1), batch, embeddings, probabilities));
    }

    private void Check(string name, float[] ours, double[] golden)
    {
        var error = ModelTestSupport.RelativeError(ours, golden);
        output.WriteLine($"{name}: relative error {error:E2}");
        Assert.InRange(error, 0, Tolerance);
    }

    private static double MaxAbsDiff(float[] a, float[] b)
    {
        Assert.Equal(a.Length, b.Length);
        return a.Zip(b).Max(p => Math.Abs(p.First - p.Second));
    }
}
