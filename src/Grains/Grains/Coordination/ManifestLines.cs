using System.Globalization;
using System.Text;
using HubertEcg.Inference.Formats;
using HubertEcg.Worker;

namespace HubertEcg.Grains.Coordination;

/// <summary>
/// Reads a run's manifest (one blob name per line, relative to the input container; blank lines and lines starting
/// with <c>#</c> are ignored; UTF-8, an optional byte order mark, LF or CRLF) chunk by chunk. A chunk is parsed up to
/// its last line end so that a line cut by the chunk boundary is read whole by the next step; the position saved
/// between steps is the byte offset of the first unread line and the manifest's ETag, so that planning resumes
/// exactly and a manifest replaced mid-planning is noticed. Each entry is resolved inside the run's container
/// (<see cref="Resolve"/>): aliases of one blob (<c>/x</c>, <c>a/./x</c>, <c>b/../x</c>) become its one name, and an entry
/// that cannot name a blob of the container (a <c>..</c> that climbs out of it, a URL, a NUL) is quarantined with the
/// reason, as is a line longer than a chunk; the run goes on.
/// </summary>
public static class ManifestLines
{
    private static readonly byte[] Utf8Bom = [0xEF, 0xBB, 0xBF];

    /// <summary>
    /// The names on the whole lines of <paramref name="chunk"/>, and how many bytes those lines take. When
    /// <paramref name="atEnd"/> is true the chunk ends the manifest and its last line needs no line end. A chunk
    /// without a line end that is not at the end consumes nothing (its line is longer than the chunk).
    /// </summary>
    public static (List<string> Names, int Consumed) Parse(ReadOnlySpan<byte> chunk, bool startOfManifest, bool atEnd)
    {
        var consumed = atEnd ? chunk.Length : chunk.LastIndexOf((byte)'\n') + 1;
        var names = new List<string>();
        var text = chunk[..consumed];
        if (startOfManifest && text.StartsWith(Utf8Bom))
        {
            text = text[Utf8Bom.Length..];
        }

        while (!text.IsEmpty)
        {
            var end = text.IndexOf((byte)'\n');
            var line = end < 0 ? text : text[..end];
            text = end < 0 ? [] : text[(end + 1)..];
            var name = Encoding.UTF8.GetString(line).Trim();
            if (name.Length > 0 && !name.StartsWith('#'))
            {
                names.Add(name);
            }
        }

        return (names, consumed);
    }

    /// <summary>
    /// Leaves out the duplicate entries of one planning step's <paramref name="names"/>: a name listed before in this
    /// step or carried from the previous one, and an entry whose record was read in an earlier step
    /// (<paramref name="seenBefore"/>, by <see cref="FormatRegistry.RecordKey"/>) unless that record is still carried, unplanned (a
    /// record's files may straddle two chunks). Returns the names to plan, the duplicates, and the keys first read
    /// in this step, to be remembered with it.
    /// </summary>
    public static ManifestStep Deduplicate(FormatRegistry formats, IReadOnlyList<string> names, IReadOnlyList<string> carry, IReadOnlySet<string> seenBefore)
    {
        ArgumentNullException.ThrowIfNull(formats);
        var listed = carry.ToHashSet(StringComparer.Ordinal);
        var carried = carry.Select(formats.RecordKey).OfType<string>().ToHashSet(StringComparer.Ordinal);
        var keep = new List<string>();
        var duplicates = new List<string>();
        var fresh = new List<string>();
        var freshSet = new HashSet<string>(StringComparer.Ordinal);
        foreach (var name in names)
        {
            var key = formats.RecordKey(name);
            if (!listed.Add(name) || (key is not null && seenBefore.Contains(key) && !carried.Contains(key)))
            {
                duplicates.Add(name);
                continue;
            }

            keep.Add(name);
            if (key is not null && !seenBefore.Contains(key) && freshSet.Add(key))
            {
                fresh.Add(key);
            }
        }

        return new ManifestStep(keep, duplicates, fresh);
    }

    /// <summary>
    /// Resolves a manifest entry to the blob it names inside the run's container, as blob storage would (it removes
    /// <c>.</c> segments and folds <c>..</c> into the segment before it when it builds the blob's URL, and turns
    /// <c>\</c> into <c>/</c>): backslashes become slashes, leading slashes are dropped, <c>.</c> segments removed and
    /// <c>..</c> folded, so that every alias of a blob is one name and so one record. An entry that cannot name a blob
    /// of the container is rejected with the reason: a NUL or other character PostgreSQL cannot store, a URL
    /// (<c>scheme://</c>), a <c>..</c> that climbs above the container's root (which would read another container),
    /// or nothing left to name.
    /// </summary>
    public static ManifestEntry Resolve(string entry)
    {
        ArgumentNullException.ThrowIfNull(entry);
        if (PostgresText.Problem(entry) is { } problem)
        {
            return ManifestEntry.Rejected(entry, problem);
        }

        var scheme = entry.IndexOf("://", StringComparison.Ordinal);
        if (scheme > 0 && entry[..scheme].All(c => char.IsAsciiLetterOrDigit(c) || c is '+' or '-' or '.'))
        {
            return ManifestEntry.Rejected(entry, "is a URL; a manifest names blobs of its own container by their path");
        }

        var segments = new List<string>();
        var rest = entry.Replace('\\', '/').TrimStart('/');
        foreach (var segment in rest.Split('/'))
        {
            if (segment == ".")
            {
                continue;
            }

            if (segment == "..")
            {
                if (segments.Count == 0)
                {
                    return ManifestEntry.Rejected(entry, "climbs out of the run's container ('..' above its root)");
                }

                segments.RemoveAt(segments.Count - 1);
                continue;
            }

            segments.Add(segment);
        }

        // "x/." and "x/.." name the folder, as a trailing slash does.
        var last = rest.Split('/')[^1];
        var name = string.Join('/', segments) + (last is "." or ".." && segments.Count > 0 ? "/" : "");
        return name.Length == 0 || name.All(c => c == '/')
            ? ManifestEntry.Rejected(entry, "names no blob (nothing is left of it once '.' and '..' are resolved)")
            : ManifestEntry.Accepted(name);
    }

    /// <summary>
    /// The quarantine row's record id for a rejected entry (or the start of an over-long line): the entry as written,
    /// in a form PostgreSQL can store and index (<see cref="PostgresText.StorableKey"/>).
    /// </summary>
    public static string RejectedRecordId(string entry) => PostgresText.StorableKey(entry);

    /// <summary>
    /// The key under which a rejected entry is remembered between planning steps (beside the records' keys of
    /// <see cref="FormatRegistry.RecordKey"/>, which start with <c>r:</c> or <c>c:</c>), so that listing it twice
    /// quarantines it once and counts a duplicate.
    /// </summary>
    public static string RejectedKey(string recordId) => "q:" + recordId;

    /// <summary>
    /// The saved position: <c>offset:etag</c> (no ETag before the first read); <c>~offset:etag</c> while planning skips
    /// the rest of a line longer than a chunk (<paramref name="insideLongLine"/>), whose start is already quarantined.
    /// </summary>
    public static string FormatPosition(long offset, string etag, bool insideLongLine = false) =>
        (insideLongLine ? "~" : "") + offset.ToString(CultureInfo.InvariantCulture) + ":" + etag;

    /// <summary>True when <paramref name="position"/> is inside a line longer than a chunk (see <see cref="FormatPosition"/>).</summary>
    public static bool IsInsideLongLine(string? position) => position is not null && position.StartsWith('~');

    /// <summary>Reads a position saved by <see cref="FormatPosition"/>; null is the start of the manifest.</summary>
    public static (long Offset, string? ETag) ParsePosition(string? position)
    {
        if (string.IsNullOrEmpty(position))
        {
            return (0, null);
        }

        position = position.TrimStart('~');
        var colon = position.IndexOf(':', StringComparison.Ordinal);
        if (colon <= 0 || !long.TryParse(position.AsSpan(0, colon), NumberStyles.None, CultureInfo.InvariantCulture, out var offset))
        {
            throw new FormatException($"'{position}' is not a manifest position (offset:etag)");
        }

        return (offset, colon + 1 < position.Length ? position[(colon + 1)..] : null);
    }
}

/// <summary>A manifest entry resolved by <see cref="ManifestLines.Resolve"/>: the blob name it names, or why it names none.</summary>
public sealed record ManifestEntry(string Entry, string? Name, string? Problem)
{
    public static ManifestEntry Accepted(string name) => new(name, name, null);

    public static ManifestEntry Rejected(string entry, string problem) => new(entry, null, problem);
}

/// <summary>A manifest entry (or over-long line) quarantined while planning: its record id and the reason.</summary>
public sealed record ManifestRejection(string RecordId, string Reason);

/// <summary>One manifest planning step after <see cref="ManifestLines.Deduplicate"/>.</summary>
public sealed record ManifestStep(IReadOnlyList<string> Names, IReadOnlyList<string> Duplicates, IReadOnlyList<string> NewKeys);
