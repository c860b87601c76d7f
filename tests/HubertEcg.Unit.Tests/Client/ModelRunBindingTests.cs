using HubertEcg.Client.Commands;
using HubertEcg.Inference.IO;
using HubertEcg.Inference.Model;
using HubertEcg.Inference.Onnx;
using HubertEcg.Testing;

namespace HubertEcg.Unit.Tests.Client;

/// <summary>
/// <c>model run --io-binding on</c>: the device check's parity rows for the worker path (fixed-shape batches bound in
/// device memory, copies by ONNX Runtime; CUDA graphs on a GPU) run through it. On the CPU provider its outputs must
/// be the plain run's, bit for bit, every time of <c>--repeat</c>.
/// </summary>
public sealed class ModelRunBindingTests : IDisposable
{
    private readonly string _folder = Path.Combine(Path.GetTempPath(), $"model-run-binding-{Guid.NewGuid():N}");

    public ModelRunBindingTests() => Directory.CreateDirectory(_folder);

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    [Theory]
    [InlineData("device")]
    [InlineData("host")]
    public void BoundRunsWriteThePlainRunsOutputs(string memory)
    {
        var model = Path.Combine(_folder, "model.onnx");
        HubertOnnxExporter.Export(HubertCheckpoint.Load(RepoPaths.SharedFile("golden", "model", "tiny-sft-164")), model);
        // Five windows: a run padded to the fixed shape 8.
        const int batch = 5;
        var windows = new float[batch * IEcgScorer.WindowLength];
        var random = new Random(11);
        for (var i = 0; i < windows.Length; i++)
        {
            windows[i] = (float)((random.NextDouble() * 2) - 1);
        }

        var input = Path.Combine(_folder, "input.npy");
        Npy.WriteFloat32(input, windows, batch, IEcgScorer.WindowLength);
        Assert.Equal(0, Run("model", "run", "--model", model, "--input", input, "--out", Path.Combine(_folder, "plain"), "--threads", "1"));
        Assert.Equal(0, Run(
            "model", "run", "--model", model, "--input", input, "--out", Path.Combine(_folder, "bound"), "--threads", "1",
            "--io-binding", "on", "--io-binding-memory", memory, "--repeat", "3"));

        foreach (var name in new[] { "embedding", "probabilities" })
        {
            Assert.Equal(
                Npy.Read(Path.Combine(_folder, "plain", name + ".npy")).ToSingle(),
                Npy.Read(Path.Combine(_folder, "bound", name + ".npy")).ToSingle());
        }

        Assert.True(File.Exists(Path.Combine(_folder, "plain", "logits.npy")));
        Assert.False(File.Exists(Path.Combine(_folder, "bound", "logits.npy")));
    }

    [Fact]
    public void RepeatWithoutBindingIsRefused()
    {
        var error = new StringWriter();
        var saved = Console.Error;
        Console.SetError(error);
        try
        {
            Assert.Equal(1, Run("model", "run", "--model", "m.onnx", "--input", Path.Combine(_folder, "none.npy"), "--out", _folder, "--repeat", "2"));
        }
        finally
        {
            Console.SetError(saved);
        }

        Assert.Equal("error: --repeat must be at least 1, and more than 1 only with --io-binding on", error.ToString().Trim());
    }

    private static int Run(params string[] args) => Cli.BuildRoot().Parse(args).Invoke();
}
