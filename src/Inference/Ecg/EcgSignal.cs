namespace HubertEcg.Inference.Ecg;

/// <summary>
/// One ECG record in physical units: <see cref="Leads"/> holds one array per lead (mV), all of equal
/// length, named by <see cref="LeadNames"/>. Readers produce it; lead mapping reorders it to
/// <see cref="StandardLeads.Names"/>; preprocessing consumes it.
/// </summary>
public sealed class EcgSignal
{
    public EcgSignal(string recordId, double samplingRate, IReadOnlyList<string> leadNames, double[][] leads)
    {
        ArgumentNullException.ThrowIfNull(leadNames);
        ArgumentNullException.ThrowIfNull(leads);
        if (leadNames.Count != leads.Length)
        {
            throw new ArgumentException($"{leadNames.Count} lead names for {leads.Length} leads", nameof(leadNames));
        }

        RecordId = recordId;
        SamplingRate = samplingRate;
        LeadNames = leadNames;
        Leads = leads;
    }

    public string RecordId { get; }

    /// <summary>Samples per second per lead.</summary>
    public double SamplingRate { get; }

    public IReadOnlyList<string> LeadNames { get; }

    /// <summary>Per lead, samples in mV; NaN where the source marked a sample invalid.</summary>
    public double[][] Leads { get; }

    public int SampleCount => Leads.Length == 0 ? 0 : Leads[0].Length;

    /// <summary>Free-form record metadata (age, sex, diagnosis comments) where the source has it. Never logged.</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; init; } = new Dictionary<string, string>();
}

/// <summary>The 12 standard leads in the order the model expects.</summary>
public static class StandardLeads
{
    public static IReadOnlyList<string> Names { get; } = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"];
}

/// <summary>
/// A record that cannot be read or preprocessed: names the record and the reason. Every reader and the
/// preprocessor throw this (never an unhandled low-level exception) for bad input; a run quarantines the record.
/// </summary>
public sealed class EcgFormatException : Exception
{
    public EcgFormatException(string recordId, string reason, Exception? inner = null)
        : base($"{recordId}: {reason}", inner)
    {
        RecordId = recordId;
        Reason = reason;
    }

    public EcgFormatException()
        : this("?", "unknown")
    {
    }

    public EcgFormatException(string message)
        : this("?", message)
    {
    }

    public EcgFormatException(string message, Exception inner)
        : this("?", message, inner)
    {
    }

    public string RecordId { get; }

    public string Reason { get; }
}

/// <summary>
/// Where a record's files come from: a folder on disk, or blobs already downloaded into memory.
/// WFDB records span several files (header, one or more signal files, segments), so readers open them by name.
/// </summary>
public interface IRecordFileSource
{
    /// <summary>True when a file of that name (relative to the record's folder) exists.</summary>
    bool Exists(string fileName);

    /// <summary>Opens a file for reading; throws <see cref="FileNotFoundException"/> when it is missing.</summary>
    Stream Open(string fileName);

    /// <summary>The file's length in bytes, or -1 when unknown.</summary>
    long Length(string fileName);
}
