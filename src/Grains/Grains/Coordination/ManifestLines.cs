using System.Globalization;
using System.Text;
using HubertEcg.Inference.Formats;

namespace HubertEcg.Grains.Coordination;

/// <summary>
/// Reads a run's manifest (one blob name per line, relative to the input container; blank lines and lines starting
/// with <c>#</c> are ignored; UTF-8, an optional byte order mark, LF or CRLF) chunk by chunk. A chunk is parsed up to
/// its last line end so that a line cut by the chunk boundary is read whole by the next step; the position saved
/// between steps is the byte offset of the first unread line and the manifest's ETag, so that planning resumes
/// exactly and a manifest replaced mid-planning is noticed.
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

    /// <summary>The saved position: <c>offset:etag</c> (no ETag before the first read).</summary>
    public static string FormatPosition(long offset, string etag) => offset.ToString(CultureInfo.InvariantCulture) + ":" + etag;

    /// <summary>Reads a position saved by <see cref="FormatPosition"/>; null is the start of the manifest.</summary>
    public static (long Offset, string? ETag) ParsePosition(string? position)
    {
        if (string.IsNullOrEmpty(position))
        {
            return (0, null);
        }

        var colon = position.IndexOf(':', StringComparison.Ordinal);
        if (colon <= 0 || !long.TryParse(position.AsSpan(0, colon), NumberStyles.None, CultureInfo.InvariantCulture, out var offset))
        {
            throw new FormatException($"'{position}' is not a manifest position (offset:etag)");
        }

        return (offset, colon + 1 < position.Length ? position[(colon + 1)..] : null);
    }
}

/// <summary>One manifest planning step after <see cref="ManifestLines.Deduplicate"/>.</summary>
public sealed record ManifestStep(IReadOnlyList<string> Names, IReadOnlyList<string> Duplicates, IReadOnlyList<string> NewKeys);
