using HubertEcg.Worker;

namespace HubertEcg.Unit.Tests.Worker;

/// <summary>Which records an incremental run leaves out.</summary>
public sealed class ScoreIndexIncrementalFilterTests
{
    [Fact]
    public async Task OnlyRecordsWhoseStoredScoreCameFromTheSameBlobVersionAreLeftOut()
    {
        var index = new FixedScoreIndex(new Dictionary<string, ScoredSource>
        {
            ["same"] = new("c/same.npy", "e1"),
            ["changed"] = new("c/changed.npy", "old"),
            ["moved"] = new("c/elsewhere.npy", "e3"),
            ["unversioned"] = new("c/unversioned.npy", ""),
        });
        RecordInput Record(string id, string etag) => new(id, $"c/{id}.npy", etag, () => throw new InvalidOperationException());
        var records = new[] { Record("new", "e0"), Record("same", "e1"), Record("changed", "e2"), Record("moved", "e3"), Record("unversioned", "") };

        var left = await new ScoreIndexIncrementalFilter(index).LeaveOutCurrentAsync(records, "m", CancellationToken.None);

        Assert.Equal(["new", "changed", "moved", "unversioned"], left.Select(r => r.RecordId));
        Assert.Equal("m", index.ModelId);
        Assert.Equal(records.Select(r => r.SourceBlob), index.Blobs);
    }

    private sealed class FixedScoreIndex(Dictionary<string, ScoredSource> stored) : IScoreIndex
    {
        public string? ModelId { get; private set; }

        public IReadOnlyCollection<string> Blobs { get; private set; } = [];

        public Task<IReadOnlyDictionary<string, ScoredSource>> ScoredRecordsAsync(string modelId, IReadOnlyCollection<string> blobs, CancellationToken cancellationToken = default)
        {
            ModelId = modelId;
            Blobs = blobs;
            return Task.FromResult<IReadOnlyDictionary<string, ScoredSource>>(stored);
        }
    }
}
