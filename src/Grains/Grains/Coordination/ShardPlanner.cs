using HubertEcg.Storage;

namespace HubertEcg.Grains.Coordination;

/// <summary>A shard the planner formed: a container blob, or the files of up to shard-size single records.</summary>
public sealed record PlannedShard(string Kind, IReadOnlyList<string> Blobs, int RecordCount);

/// <summary>One planning step's result: new shards, and the blobs held back for the next step.</summary>
public sealed record PlanStep(IReadOnlyList<PlannedShard> Shards, IReadOnlyList<string> Carry);

/// <summary>
/// Something a planning step would plan: a container blob, or a record named by its source blob, with the blobs it
/// is made of (the container alone, or the record's files).
/// </summary>
public sealed record PlanCandidate(string SourceBlob, bool IsContainer, IReadOnlyList<string> Files);

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
    /// The source blob of a record made of <paramref name="files"/> (in planning order): its WFDB header if it has one,
    /// else its first file. It is the blob its score row names.
    /// </summary>
    public static string SourceBlob(IReadOnlyList<string> files) =>
        files.FirstOrDefault(f => f.EndsWith(".hea", StringComparison.OrdinalIgnoreCase)) ?? files[0];

    /// <summary>
    /// The version of a record made of <paramref name="files"/> (blob name and ETag), stored with its score: the ETag of
    /// a one-file record, and for a record of several files (WFDB header and signal, Challenge header and
    /// <c>.mat</c>) their ETags in the order of the blob names, joined by <c>+</c>, so that rewriting any of them
    /// (a signal file without its header too) makes the record change. Empty when an ETag is unknown.
    /// </summary>
    public static string SourceETag(IEnumerable<(string Blob, string ETag)> files)
    {
        var ordered = files.OrderBy(f => f.Blob, StringComparer.Ordinal).ToList();
        return ordered.Count == 0 || ordered.Any(f => f.ETag.Length == 0) ? "" : string.Join('+', ordered.Select(f => f.ETag));
    }

    /// <summary>
    /// What <see cref="Plan"/> would plan from the same arguments: each container blob, and each record (by its
    /// source blob) whose files are all known. An incremental run asks which of them already have current scores
    /// and passes those to <see cref="Plan"/> to leave out.
    /// </summary>
    public IReadOnlyList<PlanCandidate> Candidates(IReadOnlyList<string> carry, IReadOnlyList<string> page, bool lastPage)
    {
        var (containers, records, _) = Group(carry, page, lastPage);
        return containers.Select(c => new PlanCandidate(c, true, [c]))
            .Concat(records.Select(r => new PlanCandidate(SourceBlob(r.Files), false, r.Files)))
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
            .Select(c => new PlannedShard(ShardKinds.Container, [c], 0))
            .ToList();
        if (leaveOut is not null)
        {
            records.RemoveAll(r => leaveOut.Contains(SourceBlob(r.Files)));
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

    /// <summary>
    /// Sorts carry and page into container blobs, complete records (files grouped by stem, in listing order) and the
    /// names held back for the next step.
    /// </summary>
    private static (List<string> Containers, List<(string Stem, List<string> Files)> Records, List<string> Held) Group(
        IReadOnlyList<string> carry, IReadOnlyList<string> page, bool lastPage)
    {
        var containers = new List<string>();
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
                containers.Add(name);
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
            // Nothing new listed: everything carried waits as it is.
            held.AddRange(carry);
            records.Clear();
        }

        return (containers, records, held);
    }
}
