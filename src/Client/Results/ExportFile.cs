namespace HubertEcg.Client.Results;

/// <summary>
/// The file an export writes. A new file, or an existing regular one, is written under a temporary name in the same
/// folder and moved into place only when the export completed, so an export that fails or is cancelled part-way
/// leaves no file that looks complete (a truncated CSV, a Parquet file whose footer covers only the groups written)
/// and keeps any earlier file of that name; the temporary file is deleted. A named pipe or a device (a stream that
/// cannot seek, or a path, or the end of a link, under <c>/dev</c> or <c>/proc</c>) is written in place: nothing can be
/// taken back there, and a failed Parquet export then ends without its footer, which readers reject.
/// </summary>
internal sealed class ExportFile : IAsyncDisposable
{
    private readonly string? _path;
    private readonly string? _temporary;
    private bool _committed;

    private ExportFile(FileStream stream, string? path, string? temporary)
    {
        Stream = stream;
        _path = path;
        _temporary = temporary;
    }

    public FileStream Stream { get; }

    public static ExportFile Open(string path, int bufferSize)
    {
        var target = Path.GetFullPath(path);
        if (File.Exists(target))
        {
            // Opened as the path names it, links followed as the system follows them; opening does not truncate, and a
            // pipe's open waits for its reader, as writing it would.
            var existing = new FileStream(target, FileMode.Open, FileAccess.Write, FileShare.ReadWrite, bufferSize);
            if (!existing.CanSeek || LinkChain(target).Any(IsSystemPath))
            {
                return new ExportFile(existing, null, null);
            }

            // A regular file, perhaps behind a link: the new one is written beside the file the link ends at and moved
            // onto it, so the link stays a link.
            existing.Dispose();
            target = LinkChain(target).Last();
        }

        var directory = Path.GetDirectoryName(target) ?? ".";
        var temporary = Path.Combine(directory, $".{Path.GetFileName(target)}.{Guid.NewGuid():N}.partial");
        return new ExportFile(new FileStream(temporary, FileMode.CreateNew, FileAccess.Write, FileShare.None, bufferSize), target, temporary);
    }

    // The path and each link it leads through, to the file at the end (at most 40 hops, as the system allows).
    private static IEnumerable<string> LinkChain(string path)
    {
        yield return path;
        for (var hop = 0; hop < 40 && File.ResolveLinkTarget(path, returnFinalTarget: false) is { } next; hop++)
        {
            path = next.FullName;
            yield return path;
        }
    }

    // A device or a process's descriptor (/dev/null, /dev/stdout, /proc/self/fd/1): never replaced by a file.
    private static bool IsSystemPath(string path) =>
        path.StartsWith("/dev/", StringComparison.Ordinal) || path.StartsWith("/proc/", StringComparison.Ordinal);

    /// <summary>Closes the stream and, for a temporary file, moves it onto the path: call once the export is complete.</summary>
    public async ValueTask CommitAsync()
    {
        await Stream.DisposeAsync();
        if (_temporary is not null)
        {
            File.Move(_temporary, _path!, overwrite: true);
        }

        _committed = true;
    }

    public async ValueTask DisposeAsync()
    {
        await Stream.DisposeAsync();
        if (!_committed && _temporary is not null)
        {
            File.Delete(_temporary);
        }
    }
}
