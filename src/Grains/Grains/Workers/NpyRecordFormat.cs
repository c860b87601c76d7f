using HubertEcg.Inference.Ecg;
using HubertEcg.Inference.IO;

namespace HubertEcg.Grains.Workers;

/// <summary>
/// A record stored as one NumPy array of shape (12, samples) in millivolts, leads in the standard order, at a
/// sampling rate fixed by configuration (<c>Workers:NpySamplingRate</c>, 500 Hz by default) since .npy carries none.
/// </summary>
public sealed class NpyRecordFormat(double samplingRate = 500) : IRecordFormat
{
    public bool CanRead(IReadOnlySet<string> extensions) => extensions.Count == 1 && extensions.Contains(".npy");

    public EcgSignal Read(string recordId, IRecordFileSource files, string recordName)
    {
        var fileName = recordName + ".npy";
        NpyArray array;
        try
        {
            using var stream = files.Open(fileName);
            array = Npy.Read(stream);
        }
        catch (Exception e) when (e is InvalidDataException or EndOfStreamException or FormatException or NotSupportedException or ArgumentException)
        {
            throw new EcgFormatException(recordId, $"{fileName} is not a readable .npy array: {e.Message}", e);
        }

        var leadCount = StandardLeads.Names.Count;
        if (array.Shape.Length != 2 || array.Shape[0] != leadCount || array.Shape[1] < 1)
        {
            throw new EcgFormatException(recordId, $"{fileName} has shape ({string.Join(", ", array.Shape)}); expected ({leadCount}, samples)");
        }

        var samples = array.Shape[1];
        var leads = new double[leadCount][];
        for (var i = 0; i < leadCount; i++)
        {
            leads[i] = array.Data.AsSpan(i * samples, samples).ToArray();
        }

        return new EcgSignal(recordId, samplingRate, StandardLeads.Names, leads);
    }
}
