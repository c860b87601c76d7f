using System.Globalization;
using HubertEcg.Inference.Ecg;

namespace HubertEcg.Inference.Formats.Npy;

/// <summary>
/// A record stored as one NumPy array (leads x samples, mV, standard leads in standard order). A <c>.npy</c> file
/// carries no sampling rate: <paramref name="samplingRate"/> is the configured one (<c>Workers:NpySamplingRate</c>),
/// or null when each record must be given its rate (the command line's <c>--fs</c>).
/// </summary>
public sealed class NpyFormat(double? samplingRate) : IRecordFormat
{
    public const string Suffix = ".npy";

    public string Name => "npy";

    public IReadOnlyList<string> Suffixes { get; } = [Suffix];

    public string PrimarySuffix => Suffix;

    public bool Reads(IReadOnlySet<string> suffixes) => suffixes.Count == 1 && suffixes.Contains(Suffix);

    public EcgRecord Read(IRecordFileSource files, string recordName, string recordId)
    {
        ArgumentNullException.ThrowIfNull(files);
        if (samplingRate is not { } rate)
        {
            throw new EcgFormatException(recordId, "a .npy array carries no sampling rate: give it with --fs");
        }

        if (!files.Exists(recordName + Suffix))
        {
            throw new EcgFormatException(recordId, $"{recordName}{Suffix} does not exist");
        }

        using var stream = files.Open(recordName + Suffix);
        return Load(stream, recordId, rate);
    }

    /// <summary>Loads a .npy array (leads x samples) from a stream.</summary>
    public static EcgRecord Load(Stream stream, string recordId, double samplingRate, IReadOnlyList<string>? leadNames = null)
    {
        if (!double.IsFinite(samplingRate) || samplingRate <= 0)
        {
            throw new EcgFormatException(recordId, $"sampling rate {samplingRate.ToString(CultureInfo.InvariantCulture)} Hz is not a positive number");
        }

        return EcgRecord.InMillivolts("npy", "file", NpyEcgReader.Read(stream, recordId, samplingRate, leadNames));
    }
}
