using System.IO.Enumeration;

namespace HubertEcg.Storage.Folders;

/// <summary>
/// A depth-first walk of a folder that yields the relative paths (forward slashes) of everything in it that is not a
/// directory, in ordinal order of the whole path. Each directory is read once and its entries sorted ordinally, a
/// subdirectory by its name followed by <c>/</c>: so a subtree comes exactly where its paths fall among its
/// siblings' names, and the walk's order is the order of the full paths, as a blob listing's is. Only real
/// directories are entered (a symbolic link to one is yielded like a file, for the store to refuse), and names that
/// start with a dot are left out (NFS filers' <c>.snapshot</c> folders would otherwise list the archive again).
/// <para>
/// A walk can start after a path it yielded before (<see cref="Start"/>'s <c>after</c>): it reads only the
/// directories on that path and skips in each the entries up to it, so resuming costs those directories, not the
/// folder. A store keeps a walk between listing pages, so a whole listing reads each directory once.
/// </para>
/// </summary>
public sealed class FolderWalk
{
    private readonly string _root;
    private readonly string _prefix;
    private readonly Stack<Frame> _frames = new();

    private FolderWalk(string root, string prefix)
    {
        (_root, _prefix) = (root, prefix);
    }

    /// <summary>The last path <see cref="Next"/> returned; null before the first.</summary>
    public string? Last { get; private set; }

    /// <summary>How many directories the walk has read (for tests of the resume cost).</summary>
    public int DirectoriesRead { get; private set; }

    /// <summary>
    /// A walk of <paramref name="root"/> over the paths that start with <paramref name="prefix"/>, from the first path
    /// after <paramref name="after"/> (from the start when null). Throws <see cref="DirectoryNotFoundException"/>
    /// when the root is not there.
    /// </summary>
    public static FolderWalk Start(string root, string prefix, string? after)
    {
        var walk = new FolderWalk(root, prefix) { Last = after };
        var frame = walk.Read("");
        walk._frames.Push(frame);
        if (after is null)
        {
            return walk;
        }

        while (true)
        {
            var index = 0;
            Entry? into = null;
            for (; index < frame.Entries.Length; index++)
            {
                var full = frame.Directory + frame.Entries[index].Key;
                if (frame.Entries[index].IsDirectory && after.StartsWith(full, StringComparison.Ordinal))
                {
                    into = frame.Entries[index];
                    index++;
                    break;
                }

                if (string.CompareOrdinal(full, after) > 0)
                {
                    break;
                }
            }

            frame.Index = index;
            if (into is null)
            {
                return walk;
            }

            frame = walk.Read(frame.Directory + into.Value.Key);
            walk._frames.Push(frame);
        }
    }

    /// <summary>The next path, or null when the walk is over.</summary>
    public string? Next()
    {
        while (_frames.TryPeek(out var frame))
        {
            if (frame.Index >= frame.Entries.Length)
            {
                _frames.Pop();
                continue;
            }

            var entry = frame.Entries[frame.Index++];
            var full = frame.Directory + entry.Key;
            if (entry.IsDirectory)
            {
                // Entered only when it may hold paths with the prefix.
                if (full.StartsWith(_prefix, StringComparison.Ordinal) || _prefix.StartsWith(full, StringComparison.Ordinal))
                {
                    _frames.Push(Read(full));
                }

                continue;
            }

            if (full.StartsWith(_prefix, StringComparison.Ordinal))
            {
                Last = full;
                return full;
            }
        }

        return null;
    }

    /// <summary>One directory's entries, sorted. A subdirectory that vanished since it was listed reads as empty.</summary>
    private Frame Read(string directory)
    {
        DirectoriesRead++;
        var path = directory.Length == 0 ? _root : Path.Combine(_root, directory);
        var options = new EnumerationOptions
        {
            RecurseSubdirectories = false,
            IgnoreInaccessible = false,
            ReturnSpecialDirectories = false,
            AttributesToSkip = 0,
        };
        Entry[] entries;
        try
        {
            entries = new FileSystemEnumerable<Entry>(
                    path,
                    (ref entry) =>
                    {
                        var isDirectory = entry.IsDirectory && (entry.Attributes & FileAttributes.ReparsePoint) == 0;
                        var name = entry.FileName.ToString();
                        return new Entry(isDirectory ? name + "/" : name, isDirectory);
                    },
                    options)
                {
                    ShouldIncludePredicate = (ref entry) => !entry.FileName.StartsWith('.'),
                }
                .ToArray();
        }
        catch (DirectoryNotFoundException) when (directory.Length > 0)
        {
            entries = [];
        }

        Array.Sort(entries, (a, b) => string.CompareOrdinal(a.Key, b.Key));
        return new Frame(directory, entries);
    }

    /// <summary>A directory entry: its name (a directory's with a trailing slash) and whether the walk enters it.</summary>
    private readonly record struct Entry(string Key, bool IsDirectory);

    /// <summary>A directory being walked: its path relative to the root (empty, or ending in a slash), its sorted entries and the next one.</summary>
    private sealed class Frame(string directory, Entry[] entries)
    {
        public string Directory { get; } = directory;

        public Entry[] Entries { get; } = entries;

        public int Index { get; set; }
    }
}
