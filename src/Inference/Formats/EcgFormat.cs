using HubertEcg.Inference.Ecg;

namespace HubertEcg.Inference.Formats;

/// <summary>
/// A format whose records are single records: one or more files sharing a path without extension (a WFDB header and
/// its signal files, one <c>.npy</c> array). Registered in <see cref="FormatRegistry"/>, which is the only place that
/// decides from a file name what it is.
/// </summary>
public interface IRecordFormat
{
    /// <summary>Short lower-case name: <c>wfdb</c>, <c>npy</c>, ...; shown by <c>ecg inspect</c> and in reasons.</summary>
    string Name { get; }

    /// <summary>The file suffixes (lower case, with the dot) that records of this format are made of.</summary>
    IReadOnlyList<string> Suffixes { get; }

    /// <summary>The suffix of the file a record is known by (its source blob, the file a manifest may list alone).</summary>
    string PrimarySuffix { get; }

    /// <summary>True when a record made of files with these suffixes (lower case, with the dot) is one of this format.</summary>
    bool Reads(IReadOnlySet<string> suffixes);

    /// <summary>
    /// True when the first bytes of the record's primary file are of this format. Asked only when more than one format
    /// reads the same files (such as several XML dialects sharing <c>.xml</c>); suffixes alone decide otherwise.
    /// </summary>
    bool Recognises(ReadOnlySpan<byte> head) => true;

    /// <summary>Reads record <paramref name="recordName"/> (file name without extension) from <paramref name="files"/>.</summary>
    /// <exception cref="EcgFormatException">The record cannot be read; the reason names it.</exception>
    EcgRecord Read(IRecordFileSource files, string recordName, string recordId);

    /// <summary>
    /// Files beside the primary file that the record also needs, as the primary file names them (a WFDB header's
    /// signal files), so that a record listed by its primary file alone can be fetched whole. Names without a folder
    /// part; a primary file that cannot be parsed names none (the record reports what it lacks when read).
    /// </summary>
    IReadOnlyList<string> CompanionFiles(IRecordFileSource files, string recordName) => [];
}

/// <summary>
/// A record format the project also writes: the synthetic cohort, the tests and <c>bench preprocess --format</c> use
/// it to make records of that format. Registered in <see cref="FormatRegistry.Writers"/>.
/// </summary>
public interface IRecordWriter
{
    /// <summary>The name of the format that reads what this writes (as <see cref="IRecordFormat.Name"/>).</summary>
    string Name { get; }

    /// <summary>
    /// The files of record <paramref name="recordName"/> (file name to bytes, names without a folder part) holding
    /// <paramref name="signal"/>: the 12 standard leads in standard order, in mV. Each format stores what it usually
    /// stores (I, II and V1-V6 where its devices do) at a resolution fine enough for the signal.
    /// </summary>
    IReadOnlyDictionary<string, byte[]> Write(EcgSignal signal, string recordName);
}

/// <summary>One record inside a container, not read yet: <see cref="Load"/> reads it.</summary>
public sealed record ContainedRecord(string RecordId, Func<EcgRecord> Load);

/// <summary>A format holding many records in one file (an HDF5 shard, an archive of single records).</summary>
public interface IContainerFormat
{
    /// <summary>Short lower-case name: <c>hdf5</c>, <c>archive</c>.</summary>
    string Name { get; }

    /// <summary>File suffixes (lower case, with the dot, possibly compound such as <c>.tar.gz</c>) of this format.</summary>
    IReadOnlyList<string> Suffixes { get; }

    /// <summary>
    /// The records of the container at <paramref name="localPath"/> (stored as <paramref name="blobName"/>), each with
    /// its record id; throws <see cref="EcgFormatException"/> when the container cannot be opened at all. What must
    /// stay open while records load goes into <paramref name="resources"/>, which the caller disposes afterwards;
    /// <paramref name="registry"/> reads the single records an archive holds.
    /// </summary>
    IEnumerable<ContainedRecord> Open(string localPath, string blobName, FormatRegistry registry, ICollection<IDisposable> resources);

    /// <summary>
    /// Reads one member named on a command line as <c>FILE#MEMBER</c> (an HDF5 exam index), with an optional sampling
    /// rate that overrides the configured one.
    /// </summary>
    EcgRecord ReadMember(string path, string member, double? samplingRate);
}

/// <summary>Settings of the formats that need any. Bound from section <c>Workers</c> (keys <c>NpySamplingRate</c>, <c>Hdf5</c>, <c>Archives</c>).</summary>
public sealed class FormatOptions
{
    /// <summary>Sampling rate of <c>.npy</c> records, which carry none (Hz).</summary>
    public double? NpySamplingRate { get; set; } = 500;

    /// <summary>Where HDF5 shards keep their tracings (the CODE-15% layout by default).</summary>
    public Hdf5.Hdf5ShardOptions Hdf5 { get; set; } = new();

    /// <summary>Limits on extracting archive shards.</summary>
    public Archive.ArchiveOptions Archives { get; set; } = new();
}
