using System.Globalization;
using HubertEcg.Inference.Ecg;
using HubertEcg.Inference.Formats.Aecg;
using HubertEcg.Inference.Formats.Archive;
using HubertEcg.Inference.Formats.Dicom;
using HubertEcg.Inference.Formats.Hdf5;
using HubertEcg.Inference.Formats.Muse;
using HubertEcg.Inference.Formats.Npy;
using HubertEcg.Inference.Formats.Philips;
using HubertEcg.Inference.Formats.Scp;
using HubertEcg.Inference.Formats.Wfdb;

namespace HubertEcg.Inference.Formats;

/// <summary>The files of one record, in listing order, under their shared path without extension.</summary>
public sealed record RecordFileGroup(string Stem, IReadOnlyList<string> Files);

/// <summary>A record not read yet: <see cref="Load"/> reads it and throws <see cref="EcgFormatException"/> when it cannot.</summary>
public sealed record RecordHandle(string RecordId, Func<EcgRecord> Load);

/// <summary>What a RECORD argument of the command line names: a record of a record format, or a member of a container.</summary>
public sealed record RecordLocation(string Spec, string Directory, string RecordName, IRecordFormat? Format, IContainerFormat? Container, string? Member)
{
    /// <summary>The record's files as stored (names without folder); empty for a container member.</summary>
    public IReadOnlyCollection<string> FileNames { get; init; } = [];

    /// <summary>The record's folder as a file source (its files found whatever the case of their extensions).</summary>
    public IRecordFileSource Files => new CaseTolerantRecordFileSource(new DirectoryRecordFileSource(Directory), FileNames);
}

/// <summary>
/// The one place that knows record formats: which file names are containers (many records in one file) and which
/// are files of single records, which files make one record, what a record is called and versioned by, and which
/// reader reads it. The shard planner, the worker's decoder, archive extraction, the <c>ecg</c> commands and the
/// synthetic cohort all ask it. Adding a format is a folder under <c>Formats/</c> and one line in <see cref="Create"/>.
/// <para>Identity rules: the files of a single record share their path without its last extension (the record's
/// stem, which is also its record id); the record's source blob is its primary file (a WFDB header) or else its
/// first file; its version is the ETags of all its files in name order. A container blob is a record source of its
/// own; its records are named by the container format (<c>blob#exam</c>, <c>blob/member-record</c>).</para>
/// </summary>
public sealed class FormatRegistry
{
    private static readonly Lazy<FormatRegistry> CommandLine = new(() => Create(new FormatOptions { NpySamplingRate = null }));

    private readonly IRecordFormat[] _records;
    private readonly IContainerFormat[] _containers;
    private readonly HashSet<string> _recordSuffixes = new(StringComparer.OrdinalIgnoreCase);

    public FormatRegistry(IEnumerable<IRecordFormat> recordFormats, IEnumerable<IContainerFormat> containerFormats)
    {
        _records = recordFormats.ToArray();
        _containers = containerFormats.ToArray();
        foreach (var suffix in _records.SelectMany(f => f.Suffixes))
        {
            _recordSuffixes.Add(suffix);
        }
    }

    /// <summary>
    /// The registry of the command line and the tests: default settings, and no sampling rate for <c>.npy</c> arrays
    /// (the caller gives one with the record).
    /// </summary>
    public static FormatRegistry Default => CommandLine.Value;

    public IReadOnlyList<IRecordFormat> RecordFormats => _records;

    public IReadOnlyList<IContainerFormat> ContainerFormats => _containers;

    /// <summary>Every format this registry reads, one line per format.</summary>
    public static FormatRegistry Create(FormatOptions? options = null)
    {
        options ??= new FormatOptions();
        return new FormatRegistry(
            [
                new WfdbFormat(),
                new NpyFormat(options.NpySamplingRate),
                new PhilipsFormat(),
                new MuseFormat(),
                new ScpFormat(),
                new DicomFormat(),
                new AecgFormat(),
            ],
            [
                new Hdf5Format(options.Hdf5),
                new ArchiveFormat(options.Archives),
            ]);
    }

    /// <summary>The writers of record formats, one line per format (see <see cref="IRecordWriter"/>).</summary>
    public static IReadOnlyList<IRecordWriter> Writers { get; } =
    [
        new WfdbFormat16Writer(),
        new PhilipsRecordWriter(),
        new MuseRecordWriter(),
        new ScpRecordWriter(),
        new DicomWriter(),
        new AecgWriter(),
    ];

    /// <summary>The writer of format <paramref name="name"/> (as <see cref="IRecordFormat.Name"/>), or null.</summary>
    public static IRecordWriter? WriterFor(string name) =>
        Writers.FirstOrDefault(w => string.Equals(w.Name, name, StringComparison.OrdinalIgnoreCase));

    /// <summary>The container format of a blob or file name, or null when it is none.</summary>
    public IContainerFormat? ContainerFor(string name) =>
        _containers.FirstOrDefault(c => c.Suffixes.Any(s => name.EndsWith(s, StringComparison.OrdinalIgnoreCase)));

    public bool IsContainer(string name) => ContainerFor(name) is not null;

    /// <summary>True when the name's extension is one a record format's records are made of.</summary>
    public bool IsRecordFile(string name) => _recordSuffixes.Contains(Path.GetExtension(name));

    /// <summary>The record a single-record file belongs to: its path without the last extension.</summary>
    public static string RecordStem(string name)
    {
        var slash = name.LastIndexOf('/');
        var dot = name.LastIndexOf('.');
        return dot > slash + 1 ? name[..dot] : name;
    }

    /// <summary>
    /// Groups single-record file names (containers and folder names are left out) by <see cref="RecordStem"/>, in
    /// order of first appearance, each name once. Groups without a record file (a README, annotations without their
    /// record) are returned too: <see cref="IsRecord"/> tells them apart.
    /// </summary>
    public List<RecordFileGroup> Group(IEnumerable<string> names)
    {
        var groups = new List<(string Stem, List<string> Files)>();
        var byStem = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        foreach (var name in names)
        {
            if (name.EndsWith('/') || IsContainer(name))
            {
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

        return groups.Select(g => new RecordFileGroup(g.Stem, g.Files)).ToList();
    }

    /// <summary>True when the group holds a file of a record format (otherwise it travels with a record, or is ignored).</summary>
    public bool IsRecord(RecordFileGroup group) => group.Files.Any(IsRecordFile);

    /// <summary>The source blob of a record made of <paramref name="files"/>: its format's primary file, else its first file.</summary>
    public string SourceBlob(IReadOnlyList<string> files)
    {
        var suffixes = Suffixes(files);
        var format = _records.FirstOrDefault(f => f.Reads(suffixes));
        return format is null
            ? files[0]
            : files.FirstOrDefault(f => f.EndsWith(format.PrimarySuffix, StringComparison.OrdinalIgnoreCase)) ?? files[0];
    }

    /// <summary>
    /// The version of a record made of <paramref name="files"/> (name and ETag), stored with its score: the ETag of a
    /// one-file record, and for a record of several files their ETags in the order of the names, joined by <c>+</c>,
    /// so that rewriting any of them makes the record change. Empty when an ETag is unknown.
    /// </summary>
    public static string SourceVersion(IEnumerable<(string Blob, string ETag)> files)
    {
        var ordered = files.OrderBy(f => f.Blob, StringComparer.Ordinal).ToList();
        return ordered.Count == 0 || ordered.Any(f => f.ETag.Length == 0) ? "" : string.Join('+', ordered.Select(f => f.ETag));
    }

    /// <summary>
    /// What a manifest entry names, for finding entries that name one record twice: <c>c:</c> and the name for a
    /// container, <c>r:</c> and the stem for a file of a record format; null for any other file.
    /// </summary>
    public string? RecordKey(string name) =>
        IsContainer(name) ? "c:" + name
        : IsRecordFile(name) ? "r:" + RecordStem(name)
        : null;

    /// <summary>
    /// The files a record's primary file <paramref name="primaryName"/> says the record also needs (a WFDB header's
    /// signal files), without folder part; none when the name is no format's primary file.
    /// </summary>
    public IReadOnlyList<string> CompanionFiles(string primaryName, IRecordFileSource files)
    {
        var format = _records.FirstOrDefault(f => primaryName.EndsWith(f.PrimarySuffix, StringComparison.OrdinalIgnoreCase));
        return format is null ? [] : format.CompanionFiles(files, Path.GetFileName(RecordStem(primaryName)));
    }

    /// <summary>
    /// The record made of <paramref name="fileNames"/> (file names without folder, all in <paramref name="files"/>),
    /// read by the format that reads files with their suffixes; when several formats share them, the primary file's
    /// first bytes choose. A record no format reads fails with the reason when it is loaded.
    /// </summary>
    public RecordHandle Record(string recordId, string recordName, IReadOnlyCollection<string> fileNames, IRecordFileSource files)
    {
        ArgumentNullException.ThrowIfNull(files);
        var suffixes = Suffixes(fileNames);
        files = new CaseTolerantRecordFileSource(files, fileNames);
        return new RecordHandle(recordId, () =>
        {
            var format = Choose(suffixes, recordId, recordName, files);
            return format.Read(files, recordName, recordId);
        });
    }

    /// <summary>The records of a container blob downloaded to <paramref name="localPath"/>.</summary>
    public IEnumerable<ContainedRecord> OpenContainer(string localPath, string blobName, ICollection<IDisposable> resources)
    {
        var format = ContainerFor(blobName) ?? throw new EcgFormatException(blobName, "no reader for this container format");
        return format.Open(localPath, blobName, this, resources);
    }

    /// <summary>
    /// Finds what a RECORD argument names: <c>FILE#MEMBER</c> for a member of a container (an HDF5 exam index), or a
    /// single record by any of its files or by its path without extension.
    /// </summary>
    public RecordLocation Locate(string spec)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(spec);
        var hash = spec.LastIndexOf('#');
        if (hash > 0 && (ContainerFor(spec[..hash]) is not null || File.Exists(spec[..hash])))
        {
            var path = spec[..hash];
            var container = ContainerFor(path)
                ?? throw new EcgFormatException(spec, $"{Path.GetFileName(path)} is not a container this tool reads ({Known(_containers.SelectMany(c => c.Suffixes))})");
            return new RecordLocation(spec, Path.GetDirectoryName(Path.GetFullPath(path)) ?? ".", Path.GetFileName(path), null, container, spec[(hash + 1)..]);
        }

        if (ContainerFor(spec) is { } whole)
        {
            throw new EcgFormatException(spec, $"a {whole.Name} file holds many records: append #<member> to name one");
        }

        var full = Path.GetFullPath(spec);
        var directory = Path.GetDirectoryName(full) ?? ".";
        var name = File.Exists(full) ? Path.GetFileName(RecordStem(full)) : Path.GetFileName(full);
        var fileNames = Directory.Exists(directory)
            ? Directory.EnumerateFiles(directory)
                .Select(Path.GetFileName)
                .OfType<string>()
                .Where(f => string.Equals(RecordStem(f), name, StringComparison.Ordinal))
                .ToList()
            : [];
        var suffixes = Suffixes(fileNames);
        var format = fileNames.Count == 0
            ? throw new EcgFormatException(spec, "no such record: no file of that name or beginning with it")
            : Choose(suffixes, spec, name, new CaseTolerantRecordFileSource(new DirectoryRecordFileSource(directory), fileNames));
        return new RecordLocation(spec, directory, name, format, null, null) { FileNames = fileNames };
    }

    /// <summary>Reads what a RECORD argument names (<see cref="Locate"/>); <paramref name="samplingRate"/> is required for arrays without one.</summary>
    public EcgRecord Load(string spec, double? samplingRate = null)
    {
        if (samplingRate is { } r && (!double.IsFinite(r) || r <= 0))
        {
            throw new EcgFormatException(spec, $"sampling rate {r.ToString(CultureInfo.InvariantCulture)} Hz is not a positive number");
        }

        var location = Locate(spec);
        if (location.Container is { } container)
        {
            return container.ReadMember(Path.Combine(location.Directory, location.RecordName), location.Member!, samplingRate);
        }

        var format = samplingRate is { } fs && location.Format is NpyFormat ? new NpyFormat(fs) : location.Format!;
        var record = format.Read(location.Files, location.RecordName, spec);
        if (samplingRate is { } given && Math.Abs(given - record.Signal.SamplingRate) > 1e-9 * given)
        {
            throw new EcgFormatException(spec, $"--fs {given.ToString(CultureInfo.InvariantCulture)} disagrees with the record's {record.Signal.SamplingRate.ToString(CultureInfo.InvariantCulture)} Hz");
        }

        return record;
    }

    private static HashSet<string> Suffixes(IEnumerable<string> fileNames) =>
        fileNames.Select(f => Path.GetExtension(f).ToLowerInvariant()).ToHashSet(StringComparer.Ordinal);

    private static string Known(IEnumerable<string> suffixes) => string.Join(", ", suffixes.Distinct(StringComparer.Ordinal));

    private IRecordFormat Choose(IReadOnlySet<string> suffixes, string recordId, string recordName, IRecordFileSource files)
    {
        var candidates = _records.Where(f => f.Reads(suffixes)).ToList();
        if (candidates.Count == 1)
        {
            return candidates[0];
        }

        if (candidates.Count > 1)
        {
            var head = Head(files, recordName + candidates[0].PrimarySuffix);
            if (candidates.FirstOrDefault(f => f.Recognises(head)) is { } recognised)
            {
                return recognised;
            }

            throw new EcgFormatException(recordId, $"{recordName}{candidates[0].PrimarySuffix} is none of the formats {string.Join(", ", candidates.Select(c => c.Name))}");
        }

        throw new EcgFormatException(recordId, $"no reader for a record made of {string.Join(", ", suffixes.Order(StringComparer.Ordinal))} files (known: {Known(_recordSuffixes.Order(StringComparer.Ordinal))})");
    }

    private static byte[] Head(IRecordFileSource files, string fileName)
    {
        if (!files.Exists(fileName))
        {
            return [];
        }

        using var stream = files.Open(fileName);
        var buffer = new byte[4096];
        var filled = 0;
        int read;
        while (filled < buffer.Length && (read = stream.Read(buffer, filled, buffer.Length - filled)) > 0)
        {
            filled += read;
        }

        return buffer[..filled];
    }
}
