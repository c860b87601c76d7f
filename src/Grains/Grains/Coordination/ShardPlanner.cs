using HubertEcg.Inference.Formats;

namespace HubertEcg.Grains.Coordination;

/// <summary>A shard the planner formed: a container blob, or the files of up to shard-size single records.</summary>
public sealed record PlannedShard(ShardKind Kind, IReadOnlyList<string> Blobs, int RecordCount);

/// <summary>One planning step's result: new shards, and the blobs held back for the next step.</summary>
public sealed record PlanStep(IReadOnlyList<PlannedShard> Shards, IReadOnlyList<string> Carry);

/// <summary>
/// Something a planning step would plan: a container blob, or a record named by its source blob, with the blobs it
/// is made of (the container alone, or the record's files).
/// </summary>
public sealed record PlanCandidate(string SourceBlob, bool IsContainer, IReadOnlyList<string> Files);

/// <summary>
/// Forms shards from a listing, one page at a time. What a blob is comes from the format registry: container blobs
/// (HDF5 shards, archives) are one shard each; single-record files are grouped into records (the files sharing a
/// path without extension), and <see cref="ShardSize"/> records make a shard. Files of no record format are ignored
/// unless they share a record's stem (annotation files travel with their record).
/// Because a record's files may straddle two listing pages, and a shard should be full, the planner carries the
/// last record and the records of an unfinished shard to the next step; the caller stores that carry with the
/// continuation token so that planning resumes exactly.
/// </summary>
public sealed class ShardPlanner
{
    private readonly FormatRegistry _formats;

    public ShardPlanner(FormatRegistry formats, int shardSize)
    {
        ArgumentNullException.ThrowIfNull(formats);
        ArgumentOutOfRangeException.ThrowIfLessThan(shardSize, 1);
        _formats = formats;
        ShardSize = shardSize;
    }

    public int ShardSize { get; }

    /// <summary>
    /// What <see cref="Plan"/> would plan from the same arguments: each container blob, and each record (by its
    /// source blob) whose files are all known. An incremental run asks which of them already have current scores
    /// and passes those to <see cref="Plan"/> to leave out.
    /// </summary>
    public IReadOnlyList<PlanCandidate> Candidates(IReadOnlyList<string> carry, IReadOnlyList<string> page, bool lastPage)
    {
        var (containers, records, _) = Group(carry, page, lastPage);
        return containers.Select(c => new PlanCandidate(c, true, [c]))
            .Concat(records.Select(r => new PlanCandidate(_formats.SourceBlob(r.Files), false, r.Files)))
            .ToList();
    }

    /// <summary>
    /// Plans <paramref name="carry"/> (from the previous step) followed by one listing <paramref name="page"/>.
    /// When <paramref name="lastPage"/> is true, everything is planned and the returned carry is empty. Containers
    /// and records whose source blob is in <paramref name="leaveOut"/> are left out (not planned, not carried).
    /// </summary>
    public PlanStep Plan(IReadOnlyList<string> carry, IReadOnlyList<string> page, bool lastPage, IReadOnlySet<string>? leaveOut = null)
    {
        var (containers, records, held) = Group(carry, page, lastPage);
        var shards = containers
            .Where(c => leaveOut is null || !leaveOut.Contains(c))
            .Select(c => new PlannedShard(ShardKind.Container, [c], 0))
            .ToList();
        if (leaveOut is not null)
        {
            records.RemoveAll(r => leaveOut.Contains(_formats.SourceBlob(r.Files)));
        }

        var index = 0;
        while (records.Count - index >= ShardSize || (lastPage && index < records.Count))
        {
            var take = Math.Min(ShardSize, records.Count - index);
            var slice = records.GetRange(index, take);
            shards.Add(new PlannedShard(ShardKind.Records, slice.SelectMany(g => g.Files).ToList(), take));
            index += take;
        }

        // An unfinished shard's records wait for the next page (they come before the held-back record).
        var carried = records.Skip(index).SelectMany(g => g.Files).Concat(held).ToList();
        return new PlanStep(shards, carried);
    }

    /// <summary>
    /// Sorts carry and page into container blobs, complete records (files grouped by the registry, in listing order)
    /// and the names held back for the next step.
    /// </summary>
    private (List<string> Containers, List<RecordFileGroup> Records, List<string> Held) Group(
        IReadOnlyList<string> carry, IReadOnlyList<string> page, bool lastPage)
    {
        var names = carry.Concat(page).Where(n => !n.EndsWith('/')).ToList();
        var containers = names.Where(_formats.IsContainer).ToList();
        var groups = _formats.Group(names);

        // Only groups holding a record file are records; the rest (README.txt, manifest.csv) are ignored.
        var records = groups.Where(_formats.IsRecord).ToList();

        var held = new List<string>();
        if (!lastPage && page.Count > 0)
        {
            // The last record of the page may have more files on the next page: hold it back, and any groups of
            // its stem that are not (yet) records.
            var lastStem = FormatRegistry.RecordStem(page[^1]);
            if (!_formats.IsContainer(page[^1]) && groups.FirstOrDefault(g => g.Stem == lastStem) is { } last)
            {
                held.AddRange(last.Files);
                records.RemoveAll(g => g.Stem == lastStem);
            }
        }
        else if (!lastPage)
        {
            // Nothing new listed: everything carried waits as it is.
            held.AddRange(carry);
            records.Clear();
        }

        return (containers, records, held);
    }
}
