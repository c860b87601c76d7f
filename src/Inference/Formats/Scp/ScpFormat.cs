using HubertEcg.Inference.Ecg;

namespace HubertEcg.Inference.Formats.Scp;

/// <summary>
/// SCP-ECG records (EN 1064 / ISO 11073-91064): one <c>.scp</c> file per record, read whole (they are small) by
/// <see cref="ScpReader"/>. Files larger than <see cref="MaxFileBytes"/> are refused before they are read.
/// </summary>
public sealed class ScpFormat : IRecordFormat
{
    public const string Suffix = ".scp";

    /// <summary>The largest SCP-ECG file read (a 10 s 12-lead file is some 30 kB; long rhythm strips a few MB).</summary>
    public const long MaxFileBytes = 64L << 20;

    public string Name => ScpReader.FormatName;

    public IReadOnlyList<string> Suffixes { get; } = [Suffix];

    public string PrimarySuffix => Suffix;

    public bool Reads(IReadOnlySet<string> suffixes) => suffixes.Contains(Suffix);

    public EcgRecord Read(IRecordFileSource files, string recordName, string recordId)
    {
        ArgumentNullException.ThrowIfNull(files);
        var bytes = RecordFileReader.ReadAll(files, recordName + Suffix, MaxFileBytes, recordId);
        return ScpReader.Read(bytes, recordId);
    }
}
