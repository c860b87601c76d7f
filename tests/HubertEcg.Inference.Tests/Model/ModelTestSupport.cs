using HubertEcg.Inference.IO;
using HubertEcg.Testing;

namespace HubertEcg.Inference.Tests.Model;

internal static class ModelTestSupport
{
    public static string Fixture(string name) => RepoPaths.SharedFile("golden", "model", name);

    public static string LabelsCsv => RepoPaths.SharedFile("labels", "cardio-learning-164.csv");

    /// <summary>||ours - expected|| / ||expected||, both flattened.</summary>
    public static double RelativeError(ReadOnlySpan<float> ours, double[] expected)
    {
        Assert.Equal(expected.Length, ours.Length);
        double diff = 0, norm = 0;
        for (var i = 0; i < expected.Length; i++)
        {
            var d = ours[i] - expected[i];
            diff += d * d;
            norm += expected[i] * expected[i];
        }

        Assert.True(norm > 0, "golden output is all zeros");
        return Math.Sqrt(diff / norm);
    }

    public static float[] Input(string fixture) => Npy.Read(Path.Combine(Fixture(fixture), "input.npy")).ToSingle();
}

/// <summary>A temporary folder removed at dispose.</summary>
internal sealed class TempDir : IDisposable
{
    public TempDir()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "hubert-model-tests-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public string File(string name) => System.IO.Path.Combine(Path, name);

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
            // Best effort: a file still mapped by a finalising session can linger until process exit.
        }
    }
}
