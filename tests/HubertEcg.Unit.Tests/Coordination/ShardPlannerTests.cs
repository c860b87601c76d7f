using HubertEcg.Grains;
using HubertEcg.Grains.Coordination;
using HubertEcg.Inference.Formats;

namespace HubertEcg.Unit.Tests.Coordination;

public sealed class ShardPlannerTests
{
    [Fact]
    public void ContainersAreOneShardEachAndRecordFilesAreGroupedByRecord()
    {
        var planner = new ShardPlanner(FormatRegistry.Default, shardSize: 2);
        var step = planner.Plan(
            [],
            ["a/code15-part0.hdf5", "a/r1.dat", "a/r1.hea", "a/r2.hea", "a/r2.mat", "a/r3.npy", "a/notes.txt", "b/archive.tar.gz"],
            lastPage: true);

        Assert.Equal(
            [
                (ShardKind.Container, "a/code15-part0.hdf5", 0),
                (ShardKind.Container, "b/archive.tar.gz", 0),
                (ShardKind.Records, "a/r1.dat|a/r1.hea|a/r2.hea|a/r2.mat", 2),
                (ShardKind.Records, "a/r3.npy", 1),
            ],
            step.Shards.Select(s => (s.Kind, string.Join('|', s.Blobs), s.RecordCount)));
        Assert.Empty(step.Carry);
    }

    [Fact]
    public void ARecordStraddlingTwoPagesStaysWhole()
    {
        var planner = new ShardPlanner(FormatRegistry.Default, shardSize: 2);
        var first = planner.Plan([], ["p/r1.dat", "p/r1.hea", "p/r2.dat"], lastPage: false);

        // r1 alone is not a full shard and r2's header may be on the next page: both wait.
        Assert.Empty(first.Shards);
        Assert.Equal(["p/r1.dat", "p/r1.hea", "p/r2.dat"], first.Carry);

        var second = planner.Plan(first.Carry, ["p/r2.hea", "p/r3.npy"], lastPage: true);
        Assert.Equal(
            ["p/r1.dat|p/r1.hea|p/r2.dat|p/r2.hea", "p/r3.npy"],
            second.Shards.Select(s => string.Join('|', s.Blobs)));
        Assert.Equal([2, 1], second.Shards.Select(s => s.RecordCount));
        Assert.Empty(second.Carry);
    }

    [Fact]
    public void PagingGivesTheSameShardsAsOneListing()
    {
        var names = Enumerable.Range(0, 53)
            .SelectMany(i => new[] { $"c/{i:D3}.dat", $"c/{i:D3}.hea" })
            .Append("c/x.zip")
            .Order(StringComparer.Ordinal)
            .ToList();
        var whole = new ShardPlanner(FormatRegistry.Default, 10).Plan([], names, lastPage: true).Shards;

        var paged = new List<PlannedShard>();
        IReadOnlyList<string> carry = [];
        for (var i = 0; i < names.Count; i += 7)
        {
            var page = names.Skip(i).Take(7).ToList();
            var step = new ShardPlanner(FormatRegistry.Default, 10).Plan(carry, page, lastPage: i + 7 >= names.Count);
            paged.AddRange(step.Shards);
            carry = step.Carry;
        }

        Assert.Empty(carry);
        Assert.Equal(
            whole.Select(s => string.Join('|', s.Blobs)).Order(StringComparer.Ordinal),
            paged.Select(s => string.Join('|', s.Blobs)).Order(StringComparer.Ordinal));
        Assert.Equal(53, paged.Sum(s => s.RecordCount));
        Assert.All(paged.Where(s => s.Kind == ShardKind.Records).SkipLast(1), s => Assert.Equal(10, s.RecordCount));
    }

    [Fact]
    public void LeftOutRecordsAndContainersAreNeitherPlannedNorCarriedAndShardsStayFull()
    {
        var planner = new ShardPlanner(FormatRegistry.Default, shardSize: 2);
        var page = new[] { "p/a.h5", "p/b.h5", "p/r1.dat", "p/r1.hea", "p/r2.npy", "p/r3.npy", "p/r4.npy", "p/r5.dat" };

        // The held-back last record (r5, its header may follow) is no candidate yet; a record's candidate is its
        // header, else its only file.
        var candidates = planner.Candidates([], page, lastPage: false);
        Assert.Equal(
            [("p/a.h5", true), ("p/b.h5", true), ("p/r1.hea", false), ("p/r2.npy", false), ("p/r3.npy", false), ("p/r4.npy", false)],
            candidates.Select(c => (c.SourceBlob, c.IsContainer)));
        Assert.Equal(["p/a.h5", "p/b.h5", "p/r1.dat|p/r1.hea", "p/r2.npy", "p/r3.npy", "p/r4.npy"], candidates.Select(c => string.Join('|', c.Files)));

        var step = planner.Plan([], page, lastPage: false, leaveOut: new HashSet<string>(StringComparer.Ordinal) { "p/a.h5", "p/r1.hea", "p/r3.npy" });
        Assert.Equal(
            ["p/b.h5", "p/r2.npy|p/r4.npy"],
            step.Shards.Select(s => string.Join('|', s.Blobs)));
        Assert.Equal(["p/r5.dat"], step.Carry);
    }

    [Fact]
    public void ShardSizeMustBePositive()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new ShardPlanner(FormatRegistry.Default, 0));
    }
}
