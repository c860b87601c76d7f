using HubertEcg.Inference.Formats.Wfdb;

namespace HubertEcg.Inference.Ecg;

/// <summary>
/// A record as read: its channels as stored (voltage channels in mV, others in their own units), which format read
/// it and from what, and its metadata. <see cref="ToStandard12Lead"/> gives the 12 standard leads the model needs.
/// </summary>
public sealed class EcgRecord
{
    /// <summary>The name of the format that read it (<c>wfdb</c>, <c>npy</c>, <c>hdf5</c>, ...), as in the format registry.</summary>
    public required string Format { get; init; }

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

    /// <summary>
    /// What the file says about itself, for <c>ecg inspect</c>: format version, device, filter settings. Never patient
    /// name, id or birth date; readers do not copy those anywhere.
    /// </summary>
    public RecordDescription Description { get; init; } = RecordDescription.None;

    /// <summary>The WFDB record behind this one (digital values, partial reads), or null for other formats.</summary>
    public WfdbRecord? Wfdb { get; init; }

    public string RecordId => Signal.RecordId;

    /// <summary>The 12 standard leads in standard order (derived limb leads where only I, II and V1..V6 exist).</summary>
    public EcgSignal ToStandard12Lead() => LeadMapping.ToStandard12(Signal, Units);

    /// <summary>A record whose every channel is in mV already (the array formats).</summary>
    public static EcgRecord InMillivolts(string format, string container, EcgSignal signal)
    {
        ArgumentNullException.ThrowIfNull(signal);
        var units = Enumerable.Repeat("mV", signal.LeadNames.Count).ToList();
        return new EcgRecord { Format = format, Container = container, Signal = signal, Units = units, SourceUnits = units };
    }
}

/// <summary>
/// A record's self-description as the file states it (null where it does not): the version of its format, the device
/// that recorded it (manufacturer and model), and its filter settings as text (e.g. "0.05-150 Hz, notch 50 Hz").
/// </summary>
public sealed record RecordDescription(string? Version = null, string? Device = null, string? Filters = null)
{
    public static RecordDescription None { get; } = new();
}
