using System.Globalization;
using HubertEcg.Worker;

namespace HubertEcg.Storage.Folders;

/// <summary>
/// Run inputs in a folder that every silo sees at the same path (a local disk, NFS, Azure Files): the operations of
/// <see cref="BlobStore"/> over files. Names are paths relative to the folder with forward slashes; an entry's
/// version, in place of an ETag, is its size and last write time (<see cref="Version"/>).
/// <para>
/// Listing walks the folder depth-first in ordinal order of the paths (<see cref="FolderWalk"/>); the continuation
/// token is the last path listed. The store keeps the walk of each listing in progress, so the next page goes on
/// where the last ended; after a restart, a walk resumes from the token by reading only the directories on its path.
/// </para>
/// <para>
/// Only regular files under the folder are read: a FIFO, socket or device, a symbolic link that resolves outside the
/// folder, or one to a directory is listed (if its name makes it a record's file, that record is planned) and refused
/// when a worker downloads it (<see cref="InputRefusedException"/>: the record is quarantined with the reason). A root
/// that is gone (an unmounted share) or an I/O error of the mount (EIO, ESTALE, ENOTCONN, a timeout) is an outage
/// (<see cref="ServiceUnavailableException"/>); a file that is gone while its root is there is
/// <see cref="BlobNotFoundException"/>, as a deleted blob is.
/// </para>
/// </summary>
public sealed class FolderStore : IInputStore
{
    /// <summary>Listings in progress kept between pages: more at once than any silo plans.</summary>
    private const int WalksKept = 32;

    private readonly Dictionary<string, FolderWalk> _walks = new(StringComparer.Ordinal);
    private readonly Queue<string> _walkOrder = new();
    private readonly Lock _lock = new();

    /// <summary>An entry's version: its size and its last write time in UTC ticks, as <c>size:ticks</c>.</summary>
    public static string Version(FileFacts facts) =>
        string.Create(CultureInfo.InvariantCulture, $"{facts.Length}:{facts.LastWriteTicks}");

    public async Task<BlobPage> ListPageAsync(
        string container, string prefix, string? continuationToken, int pageSize, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(pageSize, 1);
        var root = FolderInput.RootOf(container);
        return await Task.Run(
            () => Guard(container, "listing", () =>
            {
                RequireRoot(container, root);
                var key = $"{container}\n{prefix}\n{continuationToken}";
                var walk = TakeWalk(key) ?? FolderWalk.Start(root, prefix, continuationToken);
                var items = new List<BlobEntry>(Math.Min(pageSize, 4096));
                string? name = null;
                while (items.Count < pageSize && (name = walk.Next()) is not null)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    if (ListedEntry(root, name) is { } entry)
                    {
                        items.Add(entry);
                    }
                }

                if (name is null)
                {
                    return new BlobPage(items, null);
                }

                var token = walk.Last!;
                KeepWalk($"{container}\n{prefix}\n{token}", walk);
                return new BlobPage(items, token);
            }),
            cancellationToken);
    }

    public async Task<BlobChunk> ReadRangeAsync(
        string container, string blobName, long offset, int maxBytes, string? ifMatch, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxBytes, 1);
        return await Guard(container, blobName, async () =>
        {
            var (path, facts) = OpenableFile(container, blobName);
            var version = Version(facts);
            if (ifMatch is not null && ifMatch != version)
            {
                throw new BlobChangedException(container, blobName, ifMatch);
            }

            if (offset >= facts.Length)
            {
                return new BlobChunk([], facts.Length, version);
            }

            await using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, 4096, useAsync: true);
            file.Position = offset;
            var data = new byte[(int)Math.Min(maxBytes, facts.Length - offset)];
            var read = await file.ReadAtLeastAsync(data, data.Length, throwOnEndOfStream: false, cancellationToken);
            RequireUnchanged(container, blobName, path, version);
            return new BlobChunk(read == data.Length ? data : data[..read], facts.Length, version);
        });
    }

    public async Task<string> DownloadToFileAsync(
        string container, string blobName, string path, long maxBytes, CancellationToken cancellationToken = default)
    {
        return await Guard(container, blobName, async () =>
        {
            var (source, facts) = OpenableFile(container, blobName);
            if (facts.Length > maxBytes)
            {
                throw new BlobTooLargeException(container, blobName, facts.Length, maxBytes);
            }

            var version = Version(facts);
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            await using (var input = new FileStream(source, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, 81920, useAsync: true))
            await using (var output = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 81920, useAsync: true))
            {
                var buffer = new byte[81920];
                long total = 0;
                int read;
                while ((read = await input.ReadAsync(buffer, cancellationToken)) > 0)
                {
                    total += read;
                    if (total > maxBytes)
                    {
                        throw new BlobTooLargeException(container, blobName, total, maxBytes);
                    }

                    await output.WriteAsync(buffer.AsMemory(0, read), cancellationToken);
                }
            }

            RequireUnchanged(container, blobName, source, version);
            return version;
        });
    }

    /// <summary>
    /// The real path and facts of <paramref name="blobName"/> when it is a regular file under the container's folder;
    /// otherwise throws: <see cref="ArgumentException"/> for a name that is not a relative path,
    /// <see cref="BlobNotFoundException"/> when it is gone, <see cref="InputRefusedException"/> when it is not read.
    /// </summary>
    private static (string Path, FileFacts Facts) OpenableFile(string container, string blobName)
    {
        var root = FolderInput.RootOf(container);
        if (FolderNames.Problem(blobName) is { } problem)
        {
            throw new InputRefusedException(container, blobName, $"the name {problem}");
        }

        var realRoot = RequireRoot(container, root);
        var real = PosixFiles.RealPath(Path.Combine(root, blobName)) ?? throw new BlobNotFoundException(container, blobName);
        if (!real.StartsWith(realRoot.EndsWith('/') ? realRoot : realRoot + "/", StringComparison.Ordinal))
        {
            throw new InputRefusedException(container, blobName, "a symbolic link that resolves outside the input folder");
        }

        var facts = PosixFiles.Stat(real, followLinks: false) ?? throw new BlobNotFoundException(container, blobName);
        if (facts.Kind != FileKind.Regular)
        {
            throw new InputRefusedException(container, blobName, $"{Describe(facts.Kind)}, not a regular file");
        }

        return (real, facts);
    }

    /// <summary>A listing's entry for <paramref name="name"/> (null when it vanished since its directory was read).</summary>
    private static BlobEntry? ListedEntry(string root, string name)
    {
        var path = Path.Combine(root, name);
        if (PosixFiles.Stat(path, followLinks: false) is not { } facts)
        {
            return null;
        }

        // A link's version is its target's, when that is a file in the folder (the one a worker will read).
        if (facts.Kind == FileKind.SymbolicLink && PosixFiles.RealPath(path) is { } real && PosixFiles.RealPath(root) is { } realRoot
            && real.StartsWith(realRoot.EndsWith('/') ? realRoot : realRoot + "/", StringComparison.Ordinal)
            && PosixFiles.Stat(real, followLinks: false) is { Kind: FileKind.Regular } target)
        {
            facts = target;
        }

        return new BlobEntry(name, Version(facts), facts.Kind == FileKind.Regular ? facts.Length : -1);
    }

    /// <summary>The root's real path; throws the outage when it is gone and <see cref="BlobNotFoundException"/> when it is not a directory.</summary>
    private static string RequireRoot(string container, string root)
    {
        var facts = PosixFiles.Stat(root, followLinks: true);
        if (facts is null)
        {
            throw new ServiceUnavailableException(
                ServiceUnavailableException.Storage, $"input folder '{root}' is not there (is the share mounted?)");
        }

        if (facts.Value.Kind != FileKind.Directory)
        {
            throw new BlobNotFoundException($"input folder '{root}' is not a directory");
        }

        return PosixFiles.RealPath(root)
            ?? throw new ServiceUnavailableException(ServiceUnavailableException.Storage, $"input folder '{root}' is not there (is the share mounted?)");
    }

    /// <summary>Throws <see cref="BlobChangedException"/> when the file was written while it was read.</summary>
    private static void RequireUnchanged(string container, string blobName, string path, string version)
    {
        var after = PosixFiles.Stat(path, followLinks: false) ?? throw new BlobNotFoundException(container, blobName);
        if (Version(after) != version)
        {
            throw new BlobChangedException(container, blobName, version);
        }
    }

    private static string Describe(FileKind kind) => kind switch
    {
        FileKind.Directory => "a directory (or a link to one)",
        FileKind.Fifo => "a FIFO (named pipe)",
        FileKind.Socket => "a socket",
        FileKind.CharacterDevice => "a character device",
        FileKind.BlockDevice => "a block device",
        _ => "a special file",
    };

    /// <summary>
    /// Runs a file operation, turning the failures of the mount into outages: the root gone (ENOENT on it), EIO,
    /// ESTALE (a stale NFS handle), ENOTCONN, a timeout or an unreachable host. A file gone under a root that is there
    /// stays <see cref="BlobNotFoundException"/>.
    /// </summary>
    private static async Task<T> Guard<T>(string container, string blobName, Func<Task<T>> operation)
    {
        try
        {
            return await operation();
        }
        catch (Exception e) when (IsMountFailure(e))
        {
            throw Unavailable(container, $"reading {blobName}", e);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            // Gone between the checks and the read: an outage when the root went with it.
            if (PosixFiles.Stat(FolderInput.RootOf(container), followLinks: true) is null)
            {
                throw Unavailable(container, $"reading {blobName}", e);
            }

            throw new BlobNotFoundException(container, blobName, e);
        }
    }

    private static T Guard<T>(string container, string what, Func<T> operation)
    {
        try
        {
            return operation();
        }
        catch (Exception e) when (IsMountFailure(e))
        {
            throw Unavailable(container, what, e);
        }
        catch (DirectoryNotFoundException e)
        {
            throw Unavailable(container, what, e);
        }
    }

    /// <summary>True for the errors a mount gives when its server or device is unreachable (errno in <see cref="Exception.HResult"/>).</summary>
    public static bool IsMountFailure(Exception e) =>
        e is IOException { HResult: 5 or 6 or 19 or 107 or 110 or 112 or 113 or 116 } and not (FileNotFoundException or DirectoryNotFoundException);

    private static ServiceUnavailableException Unavailable(string container, string what, Exception e) =>
        new(ServiceUnavailableException.Storage, $"input folder '{FolderInput.RootOf(container)}' unreachable while {what} ({e.GetType().Name}: {e.Message})", e);

    private FolderWalk? TakeWalk(string key)
    {
        lock (_lock)
        {
            return _walks.Remove(key, out var walk) ? walk : null;
        }
    }

    private void KeepWalk(string key, FolderWalk walk)
    {
        lock (_lock)
        {
            _walks[key] = walk;
            _walkOrder.Enqueue(key);
            while (_walkOrder.Count > WalksKept || (_walkOrder.TryPeek(out var oldest) && !_walks.ContainsKey(oldest)))
            {
                _walks.Remove(_walkOrder.Dequeue());
            }
        }
    }
}
