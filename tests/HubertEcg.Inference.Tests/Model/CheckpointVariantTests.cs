using HubertEcg.Inference.Model;
using HubertEcg.Inference.Onnx;

namespace HubertEcg.Inference.Tests.Model;

/// <summary>Name variants and storage dtypes import to the same weights.</summary>
public sealed class CheckpointVariantTests : IDisposable
{
    private readonly TempDir _temp = new();

    public void Dispose() => _temp.Dispose();

    [Fact]
    public void PlainPositionalWeightGivesTheSameModelAsWeightNormPairs()
    {
        // tiny-pretrained stores weight_g/weight_v; rewrite it with the folded plain weight and with the hubert_ecg. prefix.
        var original = HubertCheckpoint.Load(ModelTestSupport.Fixture("tiny-pretrained"));
        var plainDir = Path.Combine(_temp.Path, "plain");
        RandomModelFactory.WriteCheckpointFolder(original, plainDir);
        var prefixedDir = Path.Combine(_temp.Path, "prefixed");
        Directory.CreateDirectory(prefixedDir);
        File.Copy(Path.Combine(plainDir, "config.json"), Path.Combine(prefixedDir, "config.json"));
        SafetensorsWriter.Write(
            Path.Combine(prefixedDir, "model.safetensors"),
            original.Weights.Select(p => KeyValuePair.Create("hubert_ecg." + p.Key, p.Value)));

        foreach (var dir in new[] { plainDir, prefixedDir })
        {
            var reloaded = HubertCheckpoint.Load(dir);
            Assert.Equal(original.Weights.Keys.Order(), reloaded.Weights.Keys.Order());
            foreach (var (name, tensor) in original.Weights)
            {
                Assert.Equal(tensor.Shape, reloaded[name].Shape);
                Assert.Equal(tensor.Data, reloaded[name].Data);
            }
        }
    }

    [Fact]
    public void WeightNormIsFoldedOverDimensionTwo()
    {
        // v: 2 out x 1 in x 2 taps; tap 0 column (3, 4) has norm 5, tap 1 column (0, 2) has norm 2.
        float[] v = [3, 0, 4, 2];
        float[] g = [10, -1];
        var w = HubertCheckpoint.FoldWeightNorm(g, v, 2, 1, 2);
        Assert.Equal([6f, 0f, 8f, -1f], w);
    }

    [Theory]
    [InlineData(SafetensorsDType.F16)]
    [InlineData(SafetensorsDType.BF16)]
    [InlineData(SafetensorsDType.F64)]
    public void HalfPrecisionStorageConvertsToFloat32(SafetensorsDType dtype)
    {
        var original = RandomModelFactory.Create(HubertArchitecture.Tiny(), labels: 5, seed: 3);
        var dir = Path.Combine(_temp.Path, dtype.ToString());
        RandomModelFactory.WriteCheckpointFolder(original, dir, dtype);
        var reloaded = HubertCheckpoint.Load(dir);
        Assert.Equal(5, reloaded.LabelCount);
        foreach (var (name, tensor) in original.Weights)
        {
            var expected = tensor.Data.Select(x => dtype switch
            {
                SafetensorsDType.F16 => (float)(Half)x,
                SafetensorsDType.BF16 => BitConverter.Int32BitsToSingle(SafetensorsWriter.ToBFloat16(x) << 16),
                _ => x,
            });
            Assert.Equal(expected, reloaded[name].Data);
        }
    }

    [Fact]
    public void BFloat16RoundsToNearestEven()
    {
        Assert.Equal(0x3F80, SafetensorsWriter.ToBFloat16(1f));
        Assert.Equal(0x3F80, SafetensorsWriter.ToBFloat16(BitConverter.Int32BitsToSingle(0x3F808000)));
        Assert.Equal(0x3F82, SafetensorsWriter.ToBFloat16(BitConverter.Int32BitsToSingle(0x3F818000)));
        Assert.Equal(0x3F81, SafetensorsWriter.ToBFloat16(BitConverter.Int32BitsToSingle(0x3F808001)));
    }

    [Fact]
    public void FixtureArchitecturesAreReadFromConfig()
    {
        var variant = HubertArchitecture.FromConfigFile(Path.Combine(ModelTestSupport.Fixture("tiny-variant"), "config.json"));
        Assert.Equal(FeatureExtractorNorm.Layer, variant.FeatExtractNorm);
        Assert.True(variant.DoStableLayerNorm);
        Assert.True(variant.ConvBias);
        Assert.Equal(48, variant.HiddenSize);
        Assert.Equal(16, variant.NumConvPosEmbeddings);
        Assert.Equal(93, variant.FramesFor(6000));

        var roundTrip = HubertArchitecture.FromConfigJson(variant.ToConfigJson(), "round trip");
        Assert.Equal(variant.ToConfigJson(), roundTrip.ToConfigJson());

        var sft = HubertCheckpoint.Load(ModelTestSupport.Fixture("tiny-sft-164"));
        Assert.Equal(164, sft.LabelCount);
        Assert.Equal(sft.Weights.Values.Sum(w => (long)w.Data.Length), sft.Architecture.ParameterCount(sft.LabelCount));
    }

    [Fact]
    public void ExportedModelIdIsAContentHash()
    {
        var a = RandomModelFactory.Create(HubertArchitecture.Tiny(), seed: 1);
        var b = RandomModelFactory.Create(HubertArchitecture.Tiny(), seed: 2);
        var idA = HubertOnnxExporter.Export(a, Path.Combine(_temp.Path, "a.onnx")).ModelId;
        var idA2 = HubertOnnxExporter.Export(RandomModelFactory.Create(HubertArchitecture.Tiny(), seed: 1), Path.Combine(_temp.Path, "a2.onnx")).ModelId;
        var idB = HubertOnnxExporter.Export(b, Path.Combine(_temp.Path, "b.onnx")).ModelId;
        Assert.Equal(idA, idA2);
        Assert.NotEqual(idA, idB);
        Assert.Matches("^[0-9a-f]{64}$", idA);
    }
}
