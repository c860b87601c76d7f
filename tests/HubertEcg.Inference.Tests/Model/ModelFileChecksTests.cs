using System.Diagnostics;
using HubertEcg.Inference.Model;
using HubertEcg.Inference.Onnx;
using HubertEcg.Testing;

namespace HubertEcg.Inference.Tests.Model;

/// <summary>
/// Issue 12: a model file is checked before it is believed: its size and first byte before anything is read, its
/// metadata's sizes against the graph's declared outputs.
/// </summary>
public sealed class ModelFileChecksTests : IDisposable
{
    private readonly TempDir _temp = new();

    public void Dispose() => _temp.Dispose();

    [Fact]
    public async Task A20GBSparseFileOfZerosIsRefusedFromItsSizeWithoutBeingScanned()
    {
        var path = _temp.File("zeros.onnx");
        ModelFiles.SparseZeros(path, 20L << 30);
        var clock = Stopwatch.StartNew();

        // Today's reader walked all 20 GB a byte at a time; the limit here is generous for a busy machine.
        var e = await Assert.ThrowsAsync<CheckpointFormatException>(
            () => Task.Run(() => ModelDescriptor.FromOnnxFile(path)).WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.Equal(path, e.File);
        Assert.Contains("the file is 21474836480 bytes, more than an ONNX model can be", e.Message, StringComparison.Ordinal);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), $"took {clock.Elapsed}");
    }

    [Fact]
    public void AFileOfZerosWithinTheSizeLimitIsRefusedAtItsFirstByte()
    {
        var path = _temp.File("zeros-small.onnx");
        ModelFiles.SparseZeros(path, 64L << 20);
        var e = Assert.Throws<CheckpointFormatException>(() => ModelDescriptor.FromOnnxFile(path));
        Assert.Contains("does not start with an ONNX model's ir_version field: not an ONNX model", e.Message, StringComparison.Ordinal);

        var empty = _temp.File("empty.onnx");
        File.WriteAllBytes(empty, []);
        e = Assert.Throws<CheckpointFormatException>(() => ModelDescriptor.FromOnnxFile(empty));
        Assert.Contains("the file is empty", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AModelWhoseMetadataClaimsHiddenSize2147483647IsRefusedWithTheGraphsWidth()
    {
        var honest = _temp.File("honest.onnx");
        var exported = HubertOnnxExporter.Export(RandomModelFactory.Create(HubertArchitecture.Tiny(), labels: 5, seed: 3), honest);
        Assert.Equal(exported.HiddenSize, ModelDescriptor.FromOnnxFile(honest).HiddenSize);

        var lying = _temp.File("lying.onnx");
        ModelFiles.WithMetadata(honest, lying, OnnxModelMetadata.HiddenSizeKey, "2147483647");
        var e = Assert.Throws<CheckpointFormatException>(() => ModelDescriptor.FromOnnxFile(lying));
        Assert.Equal(OnnxModelMetadata.HiddenSizeKey, e.Item);
        Assert.Contains(
            $"metadata entry says 2147483647, but the graph's 'embedding' output is {exported.HiddenSize} wide", e.Message, StringComparison.Ordinal);

        // The scorer reads the same descriptor, so a worker refuses it too, before sizing any buffer from it.
        Assert.Throws<CheckpointFormatException>(() => new OnnxEcgScorer(lying));
    }

    [Fact]
    public void AModelLyingAboutItsLabelCountIsRefused()
    {
        var honest = _temp.File("honest-labels.onnx");
        HubertOnnxExporter.Export(RandomModelFactory.Create(HubertArchitecture.Tiny(), labels: 5, seed: 4), honest, new OnnxExportOptions { LabelCodes = ["A", "B", "C", "D", "E"] });
        var lying = _temp.File("lying-labels.onnx");
        ModelFiles.WithMetadata(honest, lying, OnnxModelMetadata.LabelCodesKey, "[\"A\",\"B\",\"C\"]");
        var e = Assert.Throws<CheckpointFormatException>(() => ModelDescriptor.FromOnnxFile(lying));
        Assert.Equal(OnnxModelMetadata.LabelCodesKey, e.Item);
        Assert.Contains("metadata entry says 3, but the graph's 'probabilities' output is 5 wide", e.Message, StringComparison.Ordinal);
    }
}
