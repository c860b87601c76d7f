using System.Globalization;
using HubertEcg.Inference.Ecg.Wfdb;

namespace HubertEcg.Inference.Ecg;

/// <summary>The kinds of record the loader reads.</summary>
public enum EcgRecordFormat
{
    Wfdb,
    Npy,
    Hdf5,
}

/// <summary>
/// A record as read: its channels as stored (voltage channels in mV, others in their own units), where it came
/// from, and its metadata. <see cref="ToStandard12Lead"/> gives the 12 standard leads the model needs.
/// </summary>
public sealed class EcgRecord
{
    public required EcgRecordFormat Format { get; init; }

    /// <summary>Details of the container, e.g. "signal files", "MATLAB v4", "exams_part0.hdf5 exam 3 of 20000".</summary>
    public required string Container { get; init; }

    /// <summary>Channels as read.</summary>
    public required EcgSignal Signal { get; init; }

    /// <summary>Units of <see cref="Signal"/>'s channels ("mV" for every voltage channel).</summary>
    public required IReadOnlyList<string> Units { get; init; }

    /// <summary>Units as the source stated them (e.g. "uV" before conversion).</summary>
    public required IReadOnlyList<string> SourceUnits { get; init; }

    public IReadOnlyList<string> Comments { get; init; } = [];

    /// <summary>Problems that did not stop the read (checksum mismatches, ignored options).</summary>
    public IReadOnlyList<string> Warnings { get; init; } = [];

    /// <summary>The WFDB record behind this one (digital values, partial reads), or null for other formats.</summary>
    public WfdbRecord? Wfdb { get; init; }

    public string RecordId => Signal.RecordId;

    /// <summary>The 12 standard leads in standard order (derived limb leads where only I, II and V1..V6 exist).</summary>
    public EcgSignal ToStandard12Lead() => LeadMapping.ToStandard12(Signal, Units);
}

/// <summary>What a RECORD argument names: a WFDB record, a .npy file, or one exam of an HDF5 shard.</summary>
public sealed record EcgRecordSpec(EcgRecordFormat Format, string Path, int? ExamIndex)
{
    /// <summary>
    /// Parses a RECORD argument: <c>file.h5#3</c> / <c>file.hdf5#3</c> (exam 3 of an HDF5 shard), <c>file.npy</c>,
    /// otherwise a WFDB header, record name, or signal file beside its header.
    /// </summary>
    public static EcgRecordSpec Parse(string spec)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(spec);
        var hash = spec.LastIndexOf('#');
        if (hash > 0)
        {
            var path = spec[..hash];
            var indexText = spec[(hash + 1)..];
            if (IsHdf5(path) || File.Exists(path))
            {
                if (!int.TryParse(indexText, NumberStyles.None, CultureInfo.InvariantCulture, out var index))
                {
                    throw new EcgFormatException(spec, $"exam index '{indexText}' is not a non-negative integer");
                }

                return new EcgRecordSpec(EcgRecordFormat.Hdf5, path, index);
            }
        }

        if (IsHdf5(spec))
        {
            throw new EcgFormatException(spec, "an HDF5 shard holds many exams: append #<index> to name one");
        }

        if (spec.EndsWith(".npy", StringComparison.OrdinalIgnoreCase))
        {
            return new EcgRecordSpec(EcgRecordFormat.Npy, spec, null);
        }

        return new EcgRecordSpec(EcgRecordFormat.Wfdb, spec, null);
    }

    private static bool IsHdf5(string path) =>
        path.EndsWith(".h5", StringComparison.OrdinalIgnoreCase) || path.EndsWith(".hdf5", StringComparison.OrdinalIgnoreCase)
        || path.EndsWith(".hdf", StringComparison.OrdinalIgnoreCase) || path.EndsWith(".he5", StringComparison.OrdinalIgnoreCase);
}

/// <summary>The one entry point for the CLI and the distributed worker to read a record of any supported kind.</summary>
public static class EcgRecordLoader
{
    /// <summary>
    /// Loads RECORD (see <see cref="EcgRecordSpec.Parse"/>). <paramref name="samplingRate"/> is required for .npy,
    /// overrides the configured rate of an HDF5 shard, and must agree with a WFDB header when given.
    /// </summary>
    public static EcgRecord Load(string recordSpec, double? samplingRate = null, Hdf5ShardOptions? hdf5 = null)
    {
        var spec = EcgRecordSpec.Parse(recordSpec);
        if (samplingRate is { } r && (!double.IsFinite(r) || r <= 0))
        {
            throw new EcgFormatException(recordSpec, $"sampling rate {r.ToString(CultureInfo.InvariantCulture)} Hz is not a positive number");
        }

        switch (spec.Format)
        {
            case EcgRecordFormat.Npy:
                if (samplingRate is not { } fs)
                {
                    throw new EcgFormatException(recordSpec, "a .npy array carries no sampling rate: give it with --fs");
                }

                return FromNpy(NpyEcgReader.Read(spec.Path, fs), "file");
            case EcgRecordFormat.Hdf5:
                var options = hdf5 ?? new Hdf5ShardOptions();
                if (samplingRate is { } rate)
                {
                    options = options with { SamplingRate = rate };
                }

                using (var shard = Hdf5ShardReader.Open(spec.Path, options))
                {
                    return FromHdf5(shard, spec.ExamIndex!.Value, Path.GetFileName(spec.Path));
                }

            default:
                var record = WfdbRecord.Open(spec.Path);
                return FromWfdb(record, samplingRate);
        }
    }

    /// <summary>Loads a WFDB record by name from a file source (a folder, or blobs downloaded into memory).</summary>
    public static EcgRecord LoadWfdb(IRecordFileSource source, string recordName, string? recordId = null) =>
        FromWfdb(WfdbRecord.Open(source, recordName, recordId), null);

    /// <summary>Loads a .npy array (leads x samples) from a stream.</summary>
    public static EcgRecord LoadNpy(Stream stream, string recordId, double samplingRate, IReadOnlyList<string>? leadNames = null) =>
        FromNpy(NpyEcgReader.Read(stream, recordId, samplingRate, leadNames), "stream");

    /// <summary>Loads exam <paramref name="index"/> of an open HDF5 shard.</summary>
    public static EcgRecord LoadHdf5Exam(Hdf5ShardReader shard, int index, string shardName)
    {
        ArgumentNullException.ThrowIfNull(shard);
        return FromHdf5(shard, index, shardName);
    }

    private static EcgRecord FromWfdb(WfdbRecord record, double? samplingRate)
    {
        var signal = record.ToEcgSignal();
        var warnings = new List<string>(record.Warnings);
        if (samplingRate is { } fs && Math.Abs(fs - signal.SamplingRate) > 1e-9 * fs)
        {
            throw new EcgFormatException(record.RecordId, $"--fs {fs.ToString(CultureInfo.InvariantCulture)} disagrees with the header's {signal.SamplingRate.ToString(CultureInfo.InvariantCulture)} Hz");
        }

        var sourceUnits = record.Signals.Select(s => s.Units).ToList();
        var units = record.Signals.Select(s => !s.IsCalibrated ? $"{s.Units} (uncalibrated)" : Units.ToMillivolts(s.Units) is null ? s.Units : "mV").ToList();
        return new EcgRecord
        {
            Format = EcgRecordFormat.Wfdb,
            Container = record.Container,
            Signal = signal,
            Units = units,
            SourceUnits = sourceUnits,
            Comments = record.Header.Comments,
            Warnings = warnings,
            Wfdb = record,
        };
    }

    private static EcgRecord FromNpy(EcgSignal signal, string container)
    {
        var units = Enumerable.Repeat("mV", signal.LeadNames.Count).ToList();
        return new EcgRecord { Format = EcgRecordFormat.Npy, Container = container, Signal = signal, Units = units, SourceUnits = units };
    }

    private static EcgRecord FromHdf5(Hdf5ShardReader shard, int index, string shardName)
    {
        var signal = shard.ReadExam(index);
        var units = Enumerable.Repeat("mV", signal.LeadNames.Count).ToList();
        return new EcgRecord
        {
            Format = EcgRecordFormat.Hdf5,
            Container = $"{shardName} exam {index} of {shard.ExamCount}",
            Signal = signal,
            Units = units,
            SourceUnits = units,
        };
    }
}
