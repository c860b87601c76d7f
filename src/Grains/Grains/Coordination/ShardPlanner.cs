using HubertEcg.Storage;

namespace HubertEcg.Grains.Coordination;

/// <summary>A shard the planner formed: a container blob, or the files of up to shard-size single records.</summary>
public sealed record PlannedShard(string Kind, IReadOnlyList<string> Blobs, int RecordCount);

/// <summary>One planning step's result: new shards, and the blobs held back for the next step.</summary>
public sealed record PlanStep(IReadOnlyList<PlannedShard> Shards, IReadOnlyList<string> Carry);

/// <summary>
/// Forms shards from a listing, one page at a time. Container blobs (<c>.h5</c>, <c>.hdf5</c>, <c>.tar</c>,
/// <c>.tar.gz</c>, <c>.tgz</c>, <c>.zip</c>) are one shard each. Single-record files are grouped by record: the files
/// sharing a path without extension (WFDB <c>.hea</c> + <c>.dat</c>, Challenge <c>.hea</c> + <c>.mat</c>, a lone
/// <c>.npy</c>) are one record, and <see cref="ShardSize"/> records make a shard. Files whose extension names no
/// record format are ignored unless they share a record's stem (annotation files travel with their record).
/// Because a record's files may straddle two listing pages, and a shard should be full, the planner carries the
/// last record and the records of an unfinished shard to the next step; the caller stores that carry with the
/// continuation token so that planning resumes exactly.
/// </summary>
public sealed class ShardPlanner
{
    private static readonly string[] ContainerSuffixes = [".h5", ".hdf5", ".tar", ".tar.gz", ".tgz", ".zip"];
    private static readonly HashSet<string> RecordExtensions = new(StringComparer.OrdinalIgnoreCase) { ".hea", ".dat", ".mat", ".npy" };

    public ShardPlanner(int shardSize)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(shardSize, 1);
        ShardSize = shardSize;
    }

    public int ShardSize { get; }

    public static bool IsContainer(string blobName) =>
        ContainerSuffixes.Any(s => blobName.EndsWith(s, StringComparison.OrdinalIgnoreCase));

    /// <summary>True when the file's extension names a record format (<c>.hea</c>, <c>.dat</c>, <c>.mat</c>, <c>.npy</c>).</summary>
    public static bool IsRecordFile(string name) => RecordExtensions.Contains(Path.GetExtension(name));

    /// <summary>The record a single-record file belongs to: its path without the last extension.</summary>
    public static string RecordStem(string blobName)
    {
        var slash = blobName.LastIndexOf('/');
        var dot = blobName.LastIndexOf('.');
        return dot > slash + 1 ? blobName[..dot] : blobName;
    }

    /// <summary>
    /// Plans <paramref name="carry"/> (from the previous step) followed by one listing <paramref name="page"/>.
    /// When <paramref name="lastPage"/> is true, everything is planned and the returned carry is empty.
    /// </summary>
    public PlanStep Plan(IReadOnlyList<string> carry, IReadOnlyList<string> page, bool lastPage)
    {
        var shards = new List<PlannedShard>();
        var groups = new List<(string Stem, List<string> Files)>();
        var byStem = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        foreach (var name in carry.Concat(page))
        {
            if (name.EndsWith('/'))
            {
                continue;
            }

            if (IsContainer(name))
            {
                shards.Add(new PlannedShard(ShardKinds.Container, [name], 0));
                continue;
            }

            var stem = RecordStem(name);
            if (!byStem.TryGetValue(stem, out var files))
            {
                files = [];
                byStem[stem] = files;
                groups.Add((stem, files));
            }

            if (!files.Contains(name, StringComparer.Ordinal))
            {
                files.Add(name);
            }
        }

        // Only groups holding a record file are records; the rest (README.txt, manifest.csv) are ignored.
        var records = groups.Where(g => g.Files.Any(f => RecordExtensions.Contains(Path.GetExtension(f)))).ToList();

        var held = new List<string>();
        if (!lastPage && page.Count > 0)
        {
            // The last record of the page may have more files on the next page: hold it back, and any groups of
            // its stem that are not (yet) records.
            var lastStem = RecordStem(page[^1]);
            if (!IsContainer(page[^1]) && byStem.TryGetValue(lastStem, out var lastFiles))
            {
                held.AddRange(lastFiles);
                records.RemoveAll(g => g.Stem == lastStem);
            }
        }
        else if (!lastPage)
        {
            held.AddRange(carry);
            return new PlanStep(shards, held);
        }

        var index = 0;
        while (records.Count - index >= ShardSize || (lastPage && index < records.Count))
        {
            var take = Math.Min(ShardSize, records.Count - index);
            var slice = records.GetRange(index, take);
            shards.Add(new PlannedShard(ShardKinds.Records, slice.SelectMany(g => g.Files).ToList(), take));
            index += take;
        }

        // An unfinished shard's records wait for the next page (they come before the held-back record).
        var carried = records.Skip(index).SelectMany(g => g.Files).Concat(held).ToList();
        return new PlanStep(shards, carried);
    }
}
