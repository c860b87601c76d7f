namespace HubertEcg.Client.Results;

/// <summary>
/// The file an export writes. A new file, or an existing regular one, is written under a temporary name in the same
/// folder and moved into place only when the export completed, so an export that fails or is cancelled part-way
/// leaves no file that looks complete (a truncated CSV, a Parquet file whose footer covers only the groups written)
/// and keeps any earlier file of that name; the temporary file is deleted. A named pipe or a device (a stream that
/// cannot seek, or a path under <c>/dev</c>) is written in place: nothing can be taken back there, and a failed
/// Parquet export then ends without its footer, which readers reject.
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

    /// <summary>Whether the export writes the path itself (a pipe or a device) rather than a temporary file.</summary>
    public bool InPlace => _temporary is null;

    public static ExportFile Open(string path, int bufferSize)
    {
        var target = Path.GetFullPath(path);
        if (File.Exists(target))
        {
            // A link is replaced by nothing: the file it ends at is the one written or moved onto.
            target = File.ResolveLinkTarget(target, returnFinalTarget: true)?.FullName ?? target;
            if (target.StartsWith("/dev/", StringComparison.Ordinal))
            {
                return new ExportFile(new FileStream(target, FileMode.Open, FileAccess.Write, FileShare.ReadWrite, bufferSize), null, null);
            }

            // Opening does not truncate; a pipe's open waits for its reader, as writing it would.
            var existing = new FileStream(target, FileMode.Open, FileAccess.Write, FileShare.ReadWrite, bufferSize);
            if (!existing.CanSeek)
            {
                return new ExportFile(existing, null, null);
            }

            existing.Dispose();
        }

        var directory = Path.GetDirectoryName(target) ?? ".";
        var temporary = Path.Combine(directory, $".{Path.GetFileName(target)}.{Guid.NewGuid():N}.partial");
        return new ExportFile(new FileStream(temporary, FileMode.CreateNew, FileAccess.Write, FileShare.None, bufferSize), target, temporary);
    }

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
