using System.Buffers.Binary;
using System.Text;
using System.Text.Json.Nodes;
using HubertEcg.Inference.Model;

namespace HubertEcg.Inference.Tests.Model;

/// <summary>Broken checkpoints fail with a <see cref="CheckpointFormatException"/> naming the file and the tensor or field.</summary>
public sealed class CheckpointErrorTests : IDisposable
{
    private const string Fixture = "tiny-pretrained";
    private readonly TempDir _temp = new();

    public void Dispose() => _temp.Dispose();

    [Fact]
    public void MissingTensorIsNamed()
    {
        var dir = WithHeader(h => h.Remove("encoder.layers.1.attention.k_proj.weight"));
        var e = Assert.Throws<CheckpointFormatException>(() => HubertCheckpoint.Load(dir));
        AssertNames(e, Weights(dir), "encoder.layers.1.attention.k_proj.weight", "missing");
    }

    [Fact]
    public void MissingWeightNormPartnerIsNamed()
    {
        var dir = WithHeader(h => h.Remove("encoder.pos_conv_embed.conv.weight_v"));
        var e = Assert.Throws<CheckpointFormatException>(() => HubertCheckpoint.Load(dir));
        AssertNames(e, Weights(dir), "encoder.pos_conv_embed.conv.weight_v", "missing");
    }

    [Fact]
    public void WrongShapeIsNamed()
    {
        // Same number of values, so the byte range stays consistent; only the shape disagrees with config.json.
        var dir = WithHeader(h => h["feature_projection.projection.weight"]!["shape"] = new JsonArray(16, 32));
        var e = Assert.Throws<CheckpointFormatException>(() => HubertCheckpoint.Load(dir));
        AssertNames(e, Weights(dir), "feature_projection.projection.weight", "[32, 16]");
    }

    [Fact]
    public void UnsupportedDtypeIsNamed()
    {
        var dir = WithHeader(h => h["encoder.layers.0.feed_forward.output_dense.weight"]!["dtype"] = "I32");
        var e = Assert.Throws<CheckpointFormatException>(() => HubertCheckpoint.Load(dir));
        AssertNames(e, Weights(dir), "encoder.layers.0.feed_forward.output_dense.weight", "dtype I32 is not supported");
    }

    [Fact]
    public void TruncatedFileIsReported()
    {
        var dir = Copy();
        var path = Weights(dir);
        var bytes = File.ReadAllBytes(path);
        File.WriteAllBytes(path, bytes[..(bytes.Length / 2)]);
        var e = Assert.Throws<CheckpointFormatException>(() => HubertCheckpoint.Load(dir));
        Assert.Equal(path, e.File);
        Assert.NotNull(e.Item);
        Assert.Contains("past the end of the file", e.Message, StringComparison.Ordinal);

        File.WriteAllBytes(path, bytes[..100]);
        e = Assert.Throws<CheckpointFormatException>(() => HubertCheckpoint.Load(dir));
        Assert.Equal(path, e.File);
        Assert.Contains("truncated", e.Message, StringComparison.Ordinal);

        File.WriteAllBytes(path, bytes[..5]);
        e = Assert.Throws<CheckpointFormatException>(() => HubertCheckpoint.Load(dir));
        Assert.Contains("too short", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void CorruptHeaderJsonIsReported()
    {
        var dir = Copy();
        var path = Weights(dir);
        var bytes = File.ReadAllBytes(path);
        var headerLength = (int)BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        Encoding.ASCII.GetBytes("{\"encoder.layer_norm.bias\": {\"dtype\": [").CopyTo(bytes, 8);
        File.WriteAllBytes(path, bytes);
        var e = Assert.Throws<CheckpointFormatException>(() => HubertCheckpoint.Load(dir));
        Assert.Equal(path, e.File);
        Assert.Contains("not valid JSON", e.Message, StringComparison.Ordinal);
        Assert.True(headerLength > 40);
    }

    [Fact]
    public void OffsetsPastTheEndAreNamed()
    {
        var length = new FileInfo(Weights(ModelTestSupport.Fixture(Fixture))).Length;
        var dir = WithHeader(h => h["encoder.layer_norm.bias"]!["data_offsets"] = new JsonArray(length, length + (32 * 4)));
        var e = Assert.Throws<CheckpointFormatException>(() => HubertCheckpoint.Load(dir));
        AssertNames(e, Weights(dir), "encoder.layer_norm.bias", "past the end of the file");
    }

    [Fact]
    public void OffsetsThatDisagreeWithTheShapeAreNamed()
    {
        var dir = WithHeader(h => h["encoder.layer_norm.bias"]!["data_offsets"] = new JsonArray(0, 4));
        var e = Assert.Throws<CheckpointFormatException>(() => HubertCheckpoint.Load(dir));
        AssertNames(e, Weights(dir), "encoder.layer_norm.bias", "needs 128 bytes");
    }

    [Fact]
    public void UnexpectedTensorIsNamed()
    {
        var dir = WithHeader(h => h["encoder.extra.weight"] = h["encoder.layer_norm.bias"]!.DeepClone());
        var e = Assert.Throws<CheckpointFormatException>(() => HubertCheckpoint.Load(dir));
        AssertNames(e, Weights(dir), "encoder.extra.weight", "unexpected tensor");
    }

    [Theory]
    [InlineData("hidden_size")]
    [InlineData("conv_kernel")]
    [InlineData("do_stable_layer_norm")]
    [InlineData("layer_norm_eps")]
    public void ConfigMissingAFieldIsNamed(string field)
    {
        var dir = Copy();
        var configPath = Path.Combine(dir, "config.json");
        var config = JsonNode.Parse(File.ReadAllText(configPath))!.AsObject();
        config.Remove(field);
        File.WriteAllText(configPath, config.ToJsonString());
        var e = Assert.Throws<CheckpointFormatException>(() => HubertCheckpoint.Load(dir));
        Assert.Equal(configPath, e.File);
        Assert.Equal(field, e.Item);
        Assert.Contains("missing", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ConfigWithBadValuesIsNamed()
    {
        var dir = Copy();
        var configPath = Path.Combine(dir, "config.json");
        var config = JsonNode.Parse(File.ReadAllText(configPath))!.AsObject();
        config["num_attention_heads"] = 5;
        File.WriteAllText(configPath, config.ToJsonString());
        var e = Assert.Throws<CheckpointFormatException>(() => HubertCheckpoint.Load(dir));
        Assert.Equal("num_attention_heads", e.Item);

        File.WriteAllText(configPath, "{\"hidden_size\": ");
        e = Assert.Throws<CheckpointFormatException>(() => HubertCheckpoint.Load(dir));
        Assert.Contains("not valid JSON", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void MissingFilesAreReported()
    {
        var dir = Copy();
        File.Delete(Weights(dir));
        var e = Assert.Throws<CheckpointFormatException>(() => HubertCheckpoint.Load(dir));
        Assert.Contains("model.safetensors", e.Message, StringComparison.Ordinal);
        Assert.Throws<CheckpointFormatException>(() => HubertCheckpoint.Load(Path.Combine(dir, "nope")));
    }

    private static void AssertNames(CheckpointFormatException e, string file, string tensor, string reason)
    {
        Assert.Equal(file, e.File);
        Assert.Equal(tensor, e.Item);
        Assert.Contains(file, e.Message, StringComparison.Ordinal);
        Assert.Contains(tensor, e.Message, StringComparison.Ordinal);
        Assert.Contains(reason, e.Message, StringComparison.Ordinal);
    }

    private static string Weights(string dir) => Path.Combine(dir, "model.safetensors");

    private string Copy()
    {
        var dir = Path.Combine(_temp.Path, Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        foreach (var name in new[] { "config.json", "model.safetensors" })
        {
            File.Copy(Path.Combine(ModelTestSupport.Fixture(Fixture), name), Path.Combine(dir, name));
        }

        return dir;
    }

    /// <summary>A copy of the fixture whose safetensors header is edited by <paramref name="edit"/> (data bytes unchanged).</summary>
    private string WithHeader(Action<JsonObject> edit)
    {
        var dir = Copy();
        var path = Weights(dir);
        var bytes = File.ReadAllBytes(path);
        var headerLength = (int)BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        var header = JsonNode.Parse(bytes.AsSpan(8, headerLength))!.AsObject();
        edit(header);
        var newHeader = Encoding.UTF8.GetBytes(header.ToJsonString());
        var output = new byte[8 + newHeader.Length + (bytes.Length - 8 - headerLength)];
        BinaryPrimitives.WriteUInt64LittleEndian(output, (ulong)newHeader.Length);
        newHeader.CopyTo(output, 8);
        bytes.AsSpan(8 + headerLength).CopyTo(output.AsSpan(8 + newHeader.Length));
        File.WriteAllBytes(path, output);
        return dir;
    }
}
