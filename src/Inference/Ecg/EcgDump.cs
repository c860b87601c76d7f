using HubertEcg.Inference.Formats;
using HubertEcg.Inference.Formats.Wfdb;

namespace HubertEcg.Inference.Ecg;

/// <summary>
/// What <c>hubert-ecg ecg dump</c> prints: the samples of a record range and channel subset as rdsamp-style text.
/// WFDB records give digital (ADC) or physical values and read only the requested range; .npy and HDF5 records
/// hold physical values only.
/// </summary>
public static class EcgDump
{
    /// <summary>Writes samples [<paramref name="from"/>, <paramref name="to"/>) of <paramref name="channels"/> (null: all); returns the record's warnings.</summary>
    public static IReadOnlyList<string> Write(TextWriter output, string recordSpec, long from = 0, long? to = null, IReadOnlyList<int>? channels = null, bool physical = false, double? samplingRate = null)
    {
        ArgumentNullException.ThrowIfNull(output);
        var location = FormatRegistry.Default.Locate(recordSpec);
        if (location.Format is WfdbFormat)
        {
            var wfdb = WfdbRecord.Open(location.Files, location.RecordName, recordSpec);
            if (physical)
            {
                SampleText.WritePhysical(output, wfdb.ReadPhysical(from, to, channels));
            }
            else
            {
                SampleText.WriteDigital(output, wfdb.ReadDigital(from, to, channels));
            }

            return wfdb.Warnings;
        }

        if (!physical)
        {
            throw new EcgFormatException(recordSpec, $"{location.Format?.Name ?? location.Container?.Name} records hold physical values only: use --physical");
        }

        var loaded = FormatRegistry.Default.Load(recordSpec, samplingRate);
        var signal = loaded.Signal;
        var end = to ?? signal.SampleCount;
        if (from < 0 || end > signal.SampleCount || from > end)
        {
            throw new EcgFormatException(loaded.RecordId, $"sample range [{from}, {end}) is outside the record's {signal.SampleCount} samples");
        }

        var selected = channels ?? Enumerable.Range(0, signal.Leads.Length).ToArray();
        var columns = new List<double[]>(selected.Count);
        foreach (var c in selected)
        {
            if (c < 0 || c >= signal.Leads.Length)
            {
                throw new EcgFormatException(loaded.RecordId, $"channel {c} does not exist (the record has {signal.Leads.Length})");
            }

            columns.Add(signal.Leads[c][(int)from..(int)end]);
        }

        SampleText.WritePhysical(output, columns);
        return loaded.Warnings;
    }
}
