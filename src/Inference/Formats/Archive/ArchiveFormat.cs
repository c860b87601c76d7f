using System.Formats.Tar;
using System.IO.Compression;
using HubertEcg.Inference.Ecg;
using HubertEcg.Inference.IO;

namespace HubertEcg.Inference.Formats.Archive;

/// <summary>Limits on reading archive shards. Section <c>Workers:Archives</c>.</summary>
public sealed class ArchiveOptions
{
    public const string SectionName = "Workers:Archives";

    /// <summary>Largest member extracted; a larger one (or one claiming to be larger) quarantines its record.</summary>
    public long MaxMemberBytes { get; set; } = 256L << 20;

    /// <summary>
    /// Most bytes extracted from one archive; past it, the rest of the archive is quarantined. The limit that applies
    /// is the least of this, <see cref="FreeSpaceFraction"/> of the temporary folder's free space and
    /// <see cref="MaxExpansion"/> times the archive's size (<see cref="ExtractionLimit"/>).
    /// </summary>
    public long MaxExtractedBytes { get; set; } = 16L << 30;

    /// <summary>Share of the extraction folder's free disk space one archive may fill (checked when the archive is opened).</summary>
    public double FreeSpaceFraction { get; set; } = 0.25;

    /// <summary>Most bytes extracted per byte of the archive (ECG records compress a few times; a zip bomb, thousands).</summary>
    public long MaxExpansion { get; set; } = 100;

    /// <summary>
    /// The bytes one archive of <paramref name="archiveBytes"/> may expand to when <paramref name="freeBytes"/> are free
    /// where it is extracted, and which limit that is (for the reason given when it is reached).
    /// </summary>
    public (long Bytes, string Limit) ExtractionLimit(long archiveBytes, long freeBytes)
    {
        var limits = new List<(long Bytes, string Limit)>
        {
            (MaxExtractedBytes, $"{SectionName}:MaxExtractedBytes"),
            ((long)Math.Min(long.MaxValue, Math.Max(0, freeBytes) * Math.Clamp(FreeSpaceFraction, 0, 1)), $"{FreeSpaceFraction:0.##} of the {Math.Max(0, freeBytes):N0} bytes free on the worker's disk ({SectionName}:FreeSpaceFraction)"),
            (archiveBytes > long.MaxValue / Math.Max(1, MaxExpansion) ? long.MaxValue : archiveBytes * Math.Max(1, MaxExpansion), $"{MaxExpansion:N0} times the archive's {archiveBytes:N0} bytes ({SectionName}:MaxExpansion)"),
        };
        return limits.MinBy(l => l.Bytes);
    }
}

/// <summary>
/// A tar (<c>.tar</c>, <c>.tar.gz</c>, <c>.tgz</c>) or zip (<c>.zip</c>) archive of single records: WFDB <c>.hea</c> +
/// signal files, Challenge <c>.hea</c> + <c>.mat</c>, <c>.npy</c>. The archive is read once, front to back, and its
/// members are extracted to files next to it (each member up to <see cref="ArchiveOptions.MaxMemberBytes"/>, so a
/// member claiming a huge size costs no memory); members are grouped into records by the format registry, as the
/// shard planner groups blobs, and each record is read by the format the registry picks for its files (a WFDB
/// header finds its signal files among the members of its folder). Record ids are <c>archive/member-record</c>.
/// A member that cannot be extracted quarantines its record with the reason; an archive that is corrupt or
/// truncated part way quarantines what it cannot read (the member being read, or the archive itself when the
/// damage is between members) and the records read before the damage are still scored.
/// </summary>
public sealed class ArchiveFormat(ArchiveOptions? options = null) : IContainerFormat
{
    private const string ZipSuffix = ".zip";
    private static readonly string[] GzippedTarSuffixes = [".tar.gz", ".tgz"];

    private readonly ArchiveOptions _options = options ?? new ArchiveOptions();

    public string Name => "archive";

    public IReadOnlyList<string> Suffixes { get; } = [".tar", .. GzippedTarSuffixes, ZipSuffix];

    private static bool IsZip(string blobName) => blobName.EndsWith(ZipSuffix, StringComparison.OrdinalIgnoreCase);

    private static bool IsGzippedTar(string blobName) => GzippedTarSuffixes.Any(s => blobName.EndsWith(s, StringComparison.OrdinalIgnoreCase));

    public IEnumerable<ContainedRecord> Open(string localPath, string blobName, FormatRegistry registry, ICollection<IDisposable> resources)
    {
        ArgumentNullException.ThrowIfNull(registry);
        var directory = localPath + ".members";
        var limit = _options.ExtractionLimit(new FileInfo(localPath).Length, FreeBytes(Path.GetDirectoryName(Path.GetFullPath(localPath)) ?? "."));
        var extraction = new Extraction(directory, blobName, _options, limit, registry);
        if (IsZip(blobName))
        {
            ExtractZip(localPath, blobName, extraction);
        }
        else
        {
            ExtractTar(localPath, IsGzippedTar(blobName), extraction);
        }

        return extraction.Records();
    }

    /// <summary>A member of an archive named on the command line: extracted to a temporary folder and read.</summary>
    public EcgRecord ReadMember(string path, string member, double? samplingRate)
    {
        var folder = Path.Combine(Path.GetTempPath(), "hubert-ecg-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(folder);
        try
        {
            var resources = new List<IDisposable>();
            var blobName = Path.GetFileName(path);
            var copy = Path.Combine(folder, "archive");
            File.Copy(path, copy);
            var wanted = $"{blobName}/{member}";
            var record = Open(copy, blobName, FormatRegistry.Default, resources).FirstOrDefault(r => r.RecordId == wanted)
                ?? throw new EcgFormatException($"{path}#{member}", $"the archive holds no record '{member}' (a member's path without extension)");
            return record.Load();
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    /// <summary>Free bytes on the disk that holds <paramref name="folder"/> (for the extraction limit); unknown is no room.</summary>
    private static long FreeBytes(string folder)
    {
        try
        {
            return new DriveInfo(folder).AvailableFreeSpace;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException)
        {
            return 0;
        }
    }

    private static void ExtractTar(string localPath, bool gzipped, Extraction extraction)
    {
        using var file = new FileStream(localPath, FileMode.Open, FileAccess.Read, FileShare.Read, 81920, FileOptions.SequentialScan);

        // Read forward only: a member's claimed size is then checked against the bytes really there, not sought past.
        using Stream input = gzipped ? new GZipStream(file, CompressionMode.Decompress) : new ForwardOnlyStream(file);
        using var reader = new TarReader(input, leaveOpen: true);
        while (true)
        {
            TarEntry? entry;
            try
            {
                entry = reader.GetNextEntry(copyData: false);
            }
            catch (Exception e) when (IsReadFailure(e))
            {
                extraction.FailArchive($"archive is corrupt or truncated after {extraction.Members} members: {e.Message}");
                return;
            }

            if (entry is null)
            {
                return;
            }

            if (entry.EntryType is not (TarEntryType.RegularFile or TarEntryType.V7RegularFile or TarEntryType.ContiguousFile))
            {
                // Folders and metadata entries hold no data; a link, device or FIFO is reported, never followed.
                if (SpecialMember(entry.EntryType) is { } kind)
                {
                    extraction.Refuse(entry.Name, $"member '{entry.Name}' is {kind}, not a regular file; links, devices and FIFOs in an archive are not read");
                }

                continue;
            }

            if (!extraction.Extract(entry.Name, entry.Length, () => entry.DataStream ?? Stream.Null))
            {
                return;
            }
        }
    }

    private static void ExtractZip(string localPath, string blobName, Extraction extraction)
    {
        using var file = new FileStream(localPath, FileMode.Open, FileAccess.Read, FileShare.Read);
        ZipArchive zip;
        try
        {
            zip = new ZipArchive(file, ZipArchiveMode.Read, leaveOpen: true);
        }
        catch (Exception e) when (IsReadFailure(e))
        {
            // Without its central directory (at the end) a zip's member list is unknown.
            throw new EcgFormatException(blobName, $"not a readable zip archive (corrupt or truncated): {e.Message}");
        }

        using (zip)
        {
            IReadOnlyList<ZipArchiveEntry> entries;
            try
            {
                entries = zip.Entries;
            }
            catch (Exception e) when (IsReadFailure(e))
            {
                throw new EcgFormatException(blobName, $"zip archive's member list is corrupt: {e.Message}");
            }

            foreach (var entry in entries)
            {
                if (entry.FullName.EndsWith('/') || entry.FullName.EndsWith('\\'))
                {
                    continue;
                }

                if (!extraction.Extract(entry.FullName, entry.Length, entry.Open))
                {
                    return;
                }
            }
        }
    }

    /// <summary>What a tar member that is a link, device or FIFO is, in words; null for every other kind.</summary>
    private static string? SpecialMember(TarEntryType type) => type switch
    {
        TarEntryType.SymbolicLink => "a symbolic link",
        TarEntryType.HardLink => "a hard link",
        TarEntryType.Fifo => "a FIFO",
        TarEntryType.CharacterDevice => "a character device",
        TarEntryType.BlockDevice => "a block device",
        _ => null,
    };

    private static bool IsReadFailure(Exception e) =>
        e is InvalidDataException or EndOfStreamException or IOException or FormatException or ArgumentException or NotSupportedException or OverflowException;

    /// <summary>The members extracted so far, by normalised path, and the reasons records (or the archive) could not be read.</summary>
    private sealed class Extraction(string directory, string blobName, ArchiveOptions options, (long Bytes, string Limit) limit, FormatRegistry registry)
    {
        private readonly Dictionary<string, string> _files = new(StringComparer.Ordinal);
        private readonly Dictionary<string, string> _errors = new(StringComparer.Ordinal);
        private readonly Dictionary<string, string> _refused = new(StringComparer.Ordinal);
        private readonly List<string> _order = [];
        private string? _archiveError;
        private long _extracted;

        public int Members { get; private set; }

        public void FailArchive(string reason) => _archiveError ??= reason;

        /// <summary>
        /// A member that is not extracted whatever its name (a link, device or FIFO): a quarantine row of its own,
        /// keyed by the archive and the member's name, so that it never vanishes unnoticed.
        /// </summary>
        public void Refuse(string rawName, string reason)
        {
            Members++;
            _refused.TryAdd(rawName, reason);
        }

        /// <summary>Extracts one member; false when the archive cannot be read further.</summary>
        public bool Extract(string rawName, long claimedLength, Func<Stream> open)
        {
            Members++;
            var name = Normalise(rawName);
            if (name is null)
            {
                Fail(rawName, $"member '{rawName}' has an unsafe or empty path");
                return true;
            }

            if (registry.IsContainer(name))
            {
                Fail(name, $"member '{name}' is an HDF5 shard or archive; containers inside an archive are not read");
                return true;
            }

            if (claimedLength > options.MaxMemberBytes)
            {
                Fail(name, $"member '{name}' claims {claimedLength} bytes, over the limit of {options.MaxMemberBytes} bytes");
                return true;
            }

            if (_extracted + Math.Max(0, claimedLength) > limit.Bytes)
            {
                return OverLimit(name);
            }

            var path = LocalPaths.PathFor(directory, "", Members, name);
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            // Only reading the archive can fail the member; a local write failure (disk full) is the worker's error.
            Stream source;
            try
            {
                source = open();
            }
            catch (Exception e) when (IsReadFailure(e))
            {
                return Stop(name, $"member '{name}' cannot be read (corrupt or truncated): {e.Message}");
            }

            long copied;
            string? readError;
            // Checked while copying, not only against the size the member claims: past the archive's limit the copy
            // stops, the partial member is deleted, and the rest of the archive is quarantined.
            var room = limit.Bytes - _extracted;
            using (source)
            using (var target = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None))
            {
                copied = CopyAtMost(source, target, Math.Min(options.MaxMemberBytes, room) + 1, out readError);
            }

            if (readError is not null)
            {
                return Stop(name, $"member '{name}' cannot be read (corrupt or truncated): {readError}");
            }

            if (copied > room && copied <= options.MaxMemberBytes)
            {
                File.Delete(path);
                return OverLimit(name);
            }

            _extracted += copied;
            if (copied > options.MaxMemberBytes)
            {
                return Stop(name, $"member '{name}' expands to more than {options.MaxMemberBytes} bytes");
            }

            if (claimedLength >= 0 && copied != claimedLength)
            {
                return Stop(name, $"member '{name}' is truncated: {copied} of {claimedLength} bytes");
            }

            if (!_files.ContainsKey(name))
            {
                _order.Add(name);
            }

            _files[name] = path;
            return true;
        }

        public List<ContainedRecord> Records()
        {
            var records = _refused
                .Select(r => (Id: $"{blobName}/{r.Key}", Reason: r.Value))
                .Select(r => new ContainedRecord(r.Id, () => throw new EcgFormatException(r.Id, r.Reason)))
                .ToList();
            var byFolder = _files.GroupBy(f => Folder(f.Key), StringComparer.Ordinal)
                .ToDictionary(g => g.Key, g => (IRecordFileSource)new MappedRecordFileSource(g.ToDictionary(f => Path.GetFileName(f.Key), f => f.Value, StringComparer.Ordinal)), StringComparer.Ordinal);
            var names = _order.Concat(_errors.Keys.Where(k => !_files.ContainsKey(k))).ToList();
            var containers = names.Where(registry.IsContainer).ToList();
            foreach (var group in registry.Group(names).Select(g => (g.Stem, g.Files)).Concat(containers.Select(c => (Stem: FormatRegistry.RecordStem(c), Files: (IReadOnlyList<string>)[c]))))
            {
                var stem = group.Stem;
                var recordId = $"{blobName}/{stem}";

                // Files whose extension names no record format travel with a record but are none themselves
                // (a README that cannot be extracted is no loss); a container member is quarantined.
                if (!group.Files.Any(n => registry.IsRecordFile(n) || registry.IsContainer(n)))
                {
                    continue;
                }

                var error = group.Files.Select(n => _errors.GetValueOrDefault(n)).FirstOrDefault(e => e is not null);
                if (error is not null)
                {
                    records.Add(new ContainedRecord(recordId, () => throw new EcgFormatException(recordId, error)));
                    continue;
                }

                var handle = registry.Record(recordId, Path.GetFileName(stem), group.Files.Select(Path.GetFileName).OfType<string>().ToList(), byFolder[Folder(stem)]);
                records.Add(new ContainedRecord(recordId, handle.Load));
            }

            if (_archiveError is { } archiveError)
            {
                records.Add(new ContainedRecord(blobName, () => throw new EcgFormatException(blobName, archiveError)));
            }

            return records;
        }

        private static string Folder(string path)
        {
            var slash = path.LastIndexOf('/');
            return slash < 0 ? "" : path[..slash];
        }

        /// <summary>A member path with forward slashes and no leading <c>./</c>; null when it is empty, absolute or climbs out.</summary>
        private static string? Normalise(string raw)
        {
            var name = raw.Replace('\\', '/');
            while (name.StartsWith("./", StringComparison.Ordinal))
            {
                name = name[2..];
            }

            if (name.Length == 0 || name.StartsWith('/') || name.EndsWith('/') || name.Contains('\0', StringComparison.Ordinal) ||
                name.Contains(':', StringComparison.Ordinal) || name.Split('/').Any(part => part is ".." or "." or ""))
            {
                return null;
            }

            return name;
        }

        /// <summary>Copies up to <paramref name="limit"/> bytes; a failure to read the source ends the copy with its message.</summary>
        private static long CopyAtMost(Stream source, Stream target, long limit, out string? readError)
        {
            var buffer = new byte[81920];
            long total = 0;
            readError = null;
            while (total < limit)
            {
                int read;
                try
                {
                    read = source.Read(buffer, 0, (int)Math.Min(buffer.Length, limit - total));
                }
                catch (Exception e) when (IsReadFailure(e))
                {
                    readError = e.Message;
                    break;
                }

                if (read == 0)
                {
                    break;
                }

                target.Write(buffer, 0, read);
                total += read;
            }

            return total;
        }

        private void Fail(string name, string reason) => _errors.TryAdd(name, reason);

        private bool OverLimit(string name)
        {
            FailArchive($"archive expands to more than {limit.Bytes:N0} bytes ({limit.Limit}); members from '{name}' on are not read");
            return false;
        }

        /// <summary>
        /// A member could not be extracted. A zip member fails alone (its CRC or compressed data) and reading goes
        /// on; a tar stream cannot go on after a bad read (false), and when the member is no record file the archive
        /// itself is quarantined so that the members lost after it do not go unnoticed.
        /// </summary>
        private bool Stop(string name, string reason)
        {
            Fail(name, reason);
            if (IsZip(blobName))
            {
                return true;
            }

            if (!registry.IsRecordFile(name))
            {
                FailArchive($"archive could not be read past member '{name}' ({Members} members read): {reason}");
            }

            return false;
        }
    }

    /// <summary>A read-only view of a stream that does not seek.</summary>
    private sealed class ForwardOnlyStream(Stream inner) : Stream
    {
        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position
        {
            get => throw new NotSupportedException();
            set => throw new NotSupportedException();
        }

        public override int Read(byte[] buffer, int offset, int count) => inner.Read(buffer, offset, count);

        public override int Read(Span<byte> buffer) => inner.Read(buffer);

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
