using HubertEcg.Inference.IO;
using HubertEcg.Testing;

namespace HubertEcg.Inference.Tests;

public sealed class NpyTests
{
    [Fact]
    public void ReadsSharedFixture()
    {
        var input = Npy.Read(RepoPaths.SharedFile("golden", "model", "tiny-pretrained", "input.npy"));
        Assert.Equal([4, 6000], input.Shape);
        Assert.Equal(NpyDType.Float32, input.DType);
        Assert.Contains(input.Data, v => v != 0);
    }

    [Fact]
    public void Float32RoundTrips()
    {
        var path = Path.Combine(Path.GetTempPath(), Guid.NewGuid() + ".npy");
        try
        {
            float[] data = [1.5f, -2f, float.NaN, 3.25f, 0f, 1e-30f];
            Npy.WriteFloat32(path, data, 2, 3);
            var back = Npy.Read(path);
            Assert.Equal([2, 3], back.Shape);
            Assert.Equal(data, back.ToSingle());
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void TruncatedFileIsAClearError()
    {
        var path = Path.Combine(Path.GetTempPath(), Guid.NewGuid() + ".npy");
        try
        {
            Npy.WriteFloat64(path, new double[100], 10, 10);
            var bytes = File.ReadAllBytes(path);
            File.WriteAllBytes(path, bytes[..^16]);
            var e = Assert.Throws<InvalidDataException>(() => Npy.Read(path));
            Assert.Contains(path, e.Message, StringComparison.Ordinal);
            Assert.Contains("needs 800", e.Message, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(path);
        }
    }
}
