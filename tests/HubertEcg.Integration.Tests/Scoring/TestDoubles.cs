using HubertEcg.Grains.Workers;
using HubertEcg.Inference.Ecg;
using HubertEcg.Inference.Model;

namespace HubertEcg.Integration.Tests.Scoring;

/// <summary>
/// A deterministic scorer for tests of the run machinery: the embedding and probabilities are simple functions of
/// each window's samples, so a test can recompute what a record's row must hold.
/// </summary>
public sealed class DeterministicScorer : IEcgScorer
{
    public const int Hidden = 16;

    public DeterministicScorer(string modelId = "test-model-deterministic")
    {
        Model = new ModelDescriptor(
            modelId, "deterministic test scorer", "none", Hidden, LabelCodes.Value, Untrained: true, "{\"kind\":\"test\"}", "hubert-ecg-2024");
    }

    public static Lazy<IReadOnlyList<string>> LabelCodes { get; } = new(() =>
        File.ReadAllLines(HubertEcg.Testing.RepoPaths.SharedFile("labels", "cardio-learning-164.csv"))
            .Skip(1)
            .Where(l => l.Length > 0)
            .Select(l => l.Split(',')[1])
            .ToList());

    public ModelDescriptor Model { get; }

    public int WindowsScored => _windows;

    private int _windows;

    public void Score(ReadOnlySpan<float> windows, int batch, Span<float> embeddings, Span<float> probabilities)
    {
        for (var b = 0; b < batch; b++)
        {
            var window = windows.Slice(b * IEcgScorer.WindowLength, IEcgScorer.WindowLength);
            var mean = 0.0;
            foreach (var v in window)
            {
                mean += v;
            }

            mean /= window.Length;
            for (var h = 0; h < Hidden; h++)
            {
                embeddings[(b * Hidden) + h] = (float)(mean * (h + 1));
            }

            var labels = Model.LabelCount;
            for (var l = 0; l < labels; l++)
            {
                probabilities[(b * labels) + l] = (float)(1 / (1 + Math.Exp(-(mean + (l * 0.01)))));
            }
        }

        Interlocked.Add(ref _windows, batch);
    }

    public void Dispose()
    {
    }
}

/// <summary>Hands out one shared scorer for any path and device.</summary>
public sealed class FixedScorerProvider(IEcgScorer scorer) : IScorerProvider
{
    public IEcgScorer Get(string modelPath, string device) => scorer;
}

/// <summary>
/// A stand-in for the preprocessing library in tests of the run machinery: non-overlapping 5 s windows of a 500 Hz
/// signal, flattened lead by lead and thinned to 6000 samples. Too short a signal is an <see cref="EcgFormatException"/>.
/// </summary>
public sealed class ThinningWindowPreparer : IWindowPreparer
{
    public float[] Prepare(EcgSignal signal, string profile, int maxWindows)
    {
        const int window = 2500;
        var count = Math.Min(maxWindows, signal.SampleCount / window);
        if (count == 0)
        {
            throw new EcgFormatException(signal.RecordId, $"{signal.SampleCount} samples is shorter than one 5 s window");
        }

        var output = new float[count * IEcgScorer.WindowLength];
        for (var w = 0; w < count; w++)
        {
            var o = w * IEcgScorer.WindowLength;
            for (var lead = 0; lead < 12; lead++)
            {
                for (var i = 0; i < window; i += 5)
                {
                    output[o++] = (float)signal.Leads[lead][(w * window) + i];
                }
            }
        }

        return output;
    }
}
