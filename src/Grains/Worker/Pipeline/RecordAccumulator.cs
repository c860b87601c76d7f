using HubertEcg.Grains;

namespace HubertEcg.Worker.Pipeline;

/// <summary>
/// Sums (or takes the maximum of) one record's window outputs until all its windows are scored; the embedding is
/// always the mean. Only the score stage's aggregation touches it.
/// </summary>
internal sealed class RecordAccumulator(ShardWork work, RecordInput input, int windows, int hidden, int labels)
{
    private readonly float[] _embedding = new float[hidden];
    private readonly float[] _probabilities = new float[labels];
    private readonly bool _useMax = work.Lease.Settings.Aggregation == Aggregation.Max;
    private int _seen;

    public ShardWork Work => work;

    /// <summary>Adds one window's outputs; true when it was the record's last window.</summary>
    public bool Add(ReadOnlySpan<float> embedding, ReadOnlySpan<float> probabilities)
    {
        for (var i = 0; i < embedding.Length; i++)
        {
            _embedding[i] += embedding[i];
        }

        for (var i = 0; i < probabilities.Length; i++)
        {
            _probabilities[i] = !_useMax ? _probabilities[i] + probabilities[i]
                : _seen == 0 ? probabilities[i]
                : Math.Max(_probabilities[i], probabilities[i]);
        }

        return ++_seen == windows;
    }

    /// <summary>Counts a window whose outputs are not used (its shard was dropped); true when it was the last.</summary>
    public bool Skip() => ++_seen == windows;

    public ScoreRow ToRow()
    {
        var scale = 1f / windows;
        for (var i = 0; i < _embedding.Length; i++)
        {
            _embedding[i] *= scale;
        }

        if (!_useMax)
        {
            for (var i = 0; i < _probabilities.Length; i++)
            {
                _probabilities[i] *= scale;
            }
        }

        return new ScoreRow(
            work.Lease.Settings.ModelId, input.RecordId, work.Lease.RunId, _probabilities, _embedding, windows, input.SourceBlob, input.SourceETag, DateTime.UtcNow);
    }
}
