using HubertEcg.Inference.Model;

namespace HubertEcg.Worker.Pipeline;

/// <summary>
/// Windows on their way to the model, each with the record it belongs to, and the model's outputs for them once
/// scored. A worker keeps a few and reuses them (window and output buffers grow to the largest batch and stay), so
/// that nothing is allocated per window.
/// </summary>
internal sealed class Batch
{
    public float[] Windows { get; private set; } = [];

    /// <summary>Count x the model's hidden size, written by the score stage.</summary>
    public float[] Embeddings { get; private set; } = [];

    /// <summary>Count x the model's label count, written by the score stage.</summary>
    public float[] Probabilities { get; private set; } = [];

    public List<RecordAccumulator> Slots { get; } = [];

    public IEcgScorer? Scorer { get; private set; }

    public int Capacity { get; private set; }

    public int Count => Slots.Count;

    /// <summary>Why the model failed on this batch; null when it scored.</summary>
    public string? Error { get; set; }

    public Batch Start(IEcgScorer scorer, int capacity)
    {
        Scorer = scorer;
        Capacity = capacity;
        // Checked: the capacity is bounded by RunSettingsRules before a shard gets here, and an overflow must never wrap.
        var length = checked(capacity * IEcgScorer.WindowLength);
        if (Windows.Length < length)
        {
            Windows = new float[length];
        }

        return this;
    }

    public void Add(ReadOnlySpan<float> window, RecordAccumulator accumulator)
    {
        window.CopyTo(Windows.AsSpan(Slots.Count * IEcgScorer.WindowLength));
        Slots.Add(accumulator);
    }

    /// <summary>Makes room for the model's outputs of this batch (kept from one use to the next).</summary>
    public void EnsureOutputs(int hidden, int labels)
    {
        if (Embeddings.Length < checked(Count * hidden) || Probabilities.Length < checked(Count * labels))
        {
            Embeddings = new float[checked(Capacity * hidden)];
            Probabilities = new float[checked(Capacity * labels)];
        }
    }

    public void Clear()
    {
        Slots.Clear();
        Scorer = null;
        Error = null;
    }
}
