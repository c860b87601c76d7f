using System.Text;
using HubertEcg.Inference.Ecg;

namespace HubertEcg.Inference.Formats.Wfdb;

/// <summary>
/// WFDB records (a <c>.hea</c> header and its signal files, any of the ten signal formats, multi-segment records),
/// including PhysioNet Challenge records (<c>.hea</c> + MATLAB <c>.mat</c>). A record is known by its header.
/// </summary>
public sealed class WfdbFormat : IRecordFormat
{
    public const string HeaderSuffix = ".hea";

    public string Name => "wfdb";

    public IReadOnlyList<string> Suffixes { get; } = [HeaderSuffix, ".dat", ".mat"];

    public string PrimarySuffix => HeaderSuffix;

    public bool Reads(IReadOnlySet<string> suffixes) => suffixes.Contains(HeaderSuffix);

    public EcgRecord Read(IRecordFileSource files, string recordName, string recordId) => Load(files, recordName, recordId);

    /// <summary>Loads WFDB record <paramref name="recordName"/> (its header is <c>recordName.hea</c>) from a file source.</summary>
    public static EcgRecord Load(IRecordFileSource files, string recordName, string? recordId = null) =>
        FromRecord(WfdbRecord.Open(files, recordName, recordId));

    /// <summary>The record as the format-neutral <see cref="EcgRecord"/>: physical values, units, comments, warnings.</summary>
    public static EcgRecord FromRecord(WfdbRecord record)
    {
        ArgumentNullException.ThrowIfNull(record);
        var signal = record.ToEcgSignal();
        var sourceUnits = record.Signals.Select(s => s.Units).ToList();
        var units = record.Signals.Select(s => !s.IsCalibrated ? $"{s.Units} (uncalibrated)" : Units.ToMillivolts(s.Units) is null ? s.Units : "mV").ToList();
        return new EcgRecord
        {
            Format = "wfdb",
            Container = record.Container,
            Signal = signal,
            Units = units,
            SourceUnits = sourceUnits,
            Comments = record.Header.Comments,
            Warnings = record.Warnings.ToList(),
            Wfdb = record,
        };
    }

    /// <summary>The signal files the header names, when they lie beside it (a name with a folder part is not followed).</summary>
    public IReadOnlyList<string> CompanionFiles(IRecordFileSource files, string recordName)
    {
        WfdbHeader header;
        try
        {
            using var stream = files.Open(recordName + HeaderSuffix);
            using var reader = new StreamReader(stream, Encoding.Latin1);
            header = WfdbHeader.Parse(reader.ReadToEnd(), recordName);
        }
        catch (Exception e) when (e is EcgFormatException or IOException)
        {
            return [];
        }

        return header.Signals.Select(s => s.FileName)
            .Where(f => f.Length > 0 && f is not ("." or "..") && !f.Contains('/', StringComparison.Ordinal) && !f.Contains('\\', StringComparison.Ordinal))
            .Distinct(StringComparer.Ordinal)
            .ToList();
    }
}
