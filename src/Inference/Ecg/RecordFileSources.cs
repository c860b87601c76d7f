using System.Buffers;

namespace HubertEcg.Inference.Ecg;

/// <summary>Record files in a folder on disk.</summary>
public sealed class DirectoryRecordFileSource : IRecordFileSource
{
    public DirectoryRecordFileSource(string directory)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        Directory = Path.GetFullPath(directory);
    }

    public string Directory { get; }

    public bool Exists(string fileName) => File.Exists(PathOf(fileName));

    public Stream Open(string fileName)
    {
        var path = PathOf(fileName);
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"{path} does not exist", path);
        }

        return new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1, FileOptions.SequentialScan);
    }

    public long Length(string fileName)
    {
        var info = new FileInfo(PathOf(fileName));
        return info.Exists ? info.Length : -1;
    }

    private string PathOf(string fileName)
    {
        var path = Path.GetFullPath(Path.Combine(Directory, fileName));
        var root = Directory.EndsWith(Path.DirectorySeparatorChar) ? Directory : Directory + Path.DirectorySeparatorChar;
        if (!path.StartsWith(root, StringComparison.Ordinal))
        {
            throw new ArgumentException($"'{fileName}' is outside {Directory}", nameof(fileName));
        }

        return path;
    }
}

/// <summary>Record files already in memory (blobs downloaded from storage), by file name.</summary>
public sealed class InMemoryRecordFileSource : IRecordFileSource
{
    private readonly Dictionary<string, byte[]> _files;

    public InMemoryRecordFileSource()
        : this(new Dictionary<string, byte[]>())
    {
    }

    public InMemoryRecordFileSource(IEnumerable<KeyValuePair<string, byte[]>> files)
    {
        _files = new Dictionary<string, byte[]>(files, StringComparer.Ordinal);
    }

    public IReadOnlyCollection<string> FileNames => _files.Keys;

    /// <summary>Adds or replaces a file.</summary>
    public void Set(string fileName, byte[] content) => _files[fileName] = content;

    public bool Exists(string fileName) => _files.ContainsKey(fileName);

    public Stream Open(string fileName) =>
        _files.TryGetValue(fileName, out var bytes)
            ? new MemoryStream(bytes, 0, bytes.Length, writable: false, publiclyVisible: true) // readers may read the bytes where they are
            : throw new FileNotFoundException($"{fileName} is not among the record's files", fileName);

    public long Length(string fileName) => _files.TryGetValue(fileName, out var bytes) ? bytes.Length : -1;
}

/// <summary>Record files on local disk under other names (downloaded blobs, extracted archive members), addressed by their own file names.</summary>
public sealed class MappedRecordFileSource(IReadOnlyDictionary<string, string> pathsByName) : IRecordFileSource
{
    public bool Exists(string fileName) => pathsByName.ContainsKey(fileName);

    public Stream Open(string fileName) =>
        pathsByName.TryGetValue(fileName, out var path)
            ? new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read)
            : throw new FileNotFoundException($"record file {fileName} is not among the record's files", fileName);

    public long Length(string fileName) => pathsByName.TryGetValue(fileName, out var path) ? new FileInfo(path).Length : -1;
}

/// <summary>Reads byte ranges of record files into pooled buffers, never allocating more than the file really holds.</summary>
internal static class RecordFileReader
{
    /// <summary>The largest single byte range a reader loads (1 GiB).</summary>
    internal const long MaxRangeBytes = 1L << 30;

    /// <summary>The file's length: from the source, else from the stream, else by reading it through.</summary>
    internal static long LengthOf(IRecordFileSource source, string fileName, string recordId)
    {
        var length = source.Length(fileName);
        if (length >= 0)
        {
            return length;
        }

        try
        {
            using var stream = source.Open(fileName);
            if (stream.CanSeek)
            {
                return stream.Length;
            }

            var buffer = ArrayPool<byte>.Shared.Rent(1 << 16);
            try
            {
                long total = 0;
                int n;
                while ((n = stream.Read(buffer, 0, buffer.Length)) > 0)
                {
                    total += n;
                }

                return total;
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }
        }
        catch (FileNotFoundException e)
        {
            throw new EcgFormatException(recordId, $"file {fileName} is missing", e);
        }
        catch (IOException e)
        {
            throw new EcgFormatException(recordId, $"file {fileName} cannot be read: {e.Message}", e);
        }
    }

    /// <summary>
    /// Reads up to <paramref name="count"/> bytes from <paramref name="offset"/> into a rented buffer; returns the
    /// buffer and how many bytes it holds (fewer at the end of the file). The caller returns the buffer to the pool.
    /// </summary>
    internal static (byte[] Buffer, int Length) ReadRange(IRecordFileSource source, string fileName, long offset, long count, string recordId)
    {
        if (count > MaxRangeBytes)
        {
            throw new EcgFormatException(recordId, $"reading {count} bytes of {fileName} at once exceeds the reader's limit of {MaxRangeBytes}");
        }

        var known = source.Length(fileName);
        if (known >= 0)
        {
            count = Math.Max(0, Math.Min(count, known - offset));
        }

        byte[]? buffer = null;
        try
        {
            using var stream = source.Open(fileName);
            if (offset > 0)
            {
                if (stream.CanSeek)
                {
                    stream.Seek(offset, SeekOrigin.Begin);
                }
                else
                {
                    Skip(stream, offset);
                }
            }

            // With an unknown length, grow the buffer only as data really arrives.
            var initial = (int)Math.Min(count, known >= 0 ? count : 1 << 16);
            buffer = ArrayPool<byte>.Shared.Rent(Math.Max(initial, 16));
            var filled = 0;
            while (filled < count)
            {
                if (filled == buffer.Length)
                {
                    var bigger = ArrayPool<byte>.Shared.Rent((int)Math.Min(count, (long)buffer.Length * 2));
                    buffer.AsSpan(0, filled).CopyTo(bigger);
                    ArrayPool<byte>.Shared.Return(buffer);
                    buffer = bigger;
                }

                var n = stream.Read(buffer, filled, (int)Math.Min(buffer.Length - filled, count - filled));
                if (n == 0)
                {
                    break;
                }

                filled += n;
            }

            var result = (buffer, filled);
            buffer = null;
            return result;
        }
        catch (FileNotFoundException e)
        {
            throw new EcgFormatException(recordId, $"file {fileName} is missing", e);
        }
        catch (IOException e)
        {
            throw new EcgFormatException(recordId, $"file {fileName} cannot be read: {e.Message}", e);
        }
        finally
        {
            if (buffer is not null)
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }
        }
    }

    /// <summary>Reads a whole (small) text or binary file, refusing files larger than <paramref name="maxBytes"/>.</summary>
    internal static byte[] ReadAll(IRecordFileSource source, string fileName, long maxBytes, string recordId)
    {
        if (!source.Exists(fileName))
        {
            throw new EcgFormatException(recordId, $"file {fileName} is missing");
        }

        var length = source.Length(fileName);
        if (length > maxBytes)
        {
            throw new EcgFormatException(recordId, $"file {fileName} is {length} bytes, more than the {maxBytes} allowed");
        }

        var (buffer, filled) = ReadRange(source, fileName, 0, maxBytes + 1, recordId);
        try
        {
            if (filled > maxBytes)
            {
                throw new EcgFormatException(recordId, $"file {fileName} is more than the {maxBytes} bytes allowed");
            }

            return buffer.AsSpan(0, filled).ToArray();
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private static void Skip(Stream stream, long count)
    {
        var scratch = ArrayPool<byte>.Shared.Rent(1 << 16);
        try
        {
            while (count > 0)
            {
                var n = stream.Read(scratch, 0, (int)Math.Min(scratch.Length, count));
                if (n == 0)
                {
                    return;
                }

                count -= n;
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(scratch);
        }
    }
}

/// <summary>
/// A record's files under the names its reader asks for: a reader opens <c>NAME.xml</c> while the file is stored as
/// <c>NAME.XML</c> (carts and PACS exports write upper-case extensions). A requested name that is not among
/// <paramref name="fileNames"/> but matches one of them ignoring case is opened under the stored name.
/// </summary>
public sealed class CaseTolerantRecordFileSource(IRecordFileSource inner, IReadOnlyCollection<string> fileNames) : IRecordFileSource
{
    public bool Exists(string fileName) => inner.Exists(Stored(fileName));

    public Stream Open(string fileName) => inner.Open(Stored(fileName));

    public long Length(string fileName) => inner.Length(Stored(fileName));

    private string Stored(string fileName)
    {
        if (fileNames.Contains(fileName))
        {
            return fileName;
        }

        string? match = null;
        foreach (var name in fileNames)
        {
            if (string.Equals(name, fileName, StringComparison.OrdinalIgnoreCase))
            {
                if (match is not null)
                {
                    return fileName; // ambiguous (NAME.xml and NAME.XML both stored): only the exact name is opened
                }

                match = name;
            }
        }

        return match ?? fileName;
    }
}
