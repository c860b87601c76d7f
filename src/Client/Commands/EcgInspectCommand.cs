using System.CommandLine;
using System.Text.Json;
using HubertEcg.Inference.Ecg;
using HubertEcg.Inference.Formats;

namespace HubertEcg.Client.Commands;

/// <summary><c>hubert-ecg ecg inspect RECORD</c>: the record's format, rate, length, leads, units and comments as JSON.</summary>
public static class EcgInspectCommand
{
    public static Command Build()
    {
        var record = EcgCommands.RecordArgument();
        var fs = EcgCommands.SamplingRateOption();
        var command = new Command("inspect", "Describe a record as JSON: format, rate, samples, leads, units, comments");
        command.Arguments.Add(record);
        command.Options.Add(fs);
        command.SetAction(parseResult =>
        {
            try
            {
                var loaded = FormatRegistry.Default.Load(parseResult.GetValue(record)!, parseResult.GetValue(fs));
                using var stdout = Console.OpenStandardOutput();
                Write(stdout, loaded);
                foreach (var warning in loaded.Warnings)
                {
                    Console.Error.WriteLine($"warning: {warning}");
                }

                return 0;
            }
            catch (EcgFormatException e)
            {
                Console.Error.WriteLine($"error: {e.Message}");
                return 2;
            }
        });
        return command;
    }

    /// <summary>Writes the JSON description of a loaded record.</summary>
    public static void Write(Stream output, EcgRecord record)
    {
        ArgumentNullException.ThrowIfNull(record);
        using var json = new Utf8JsonWriter(output, new JsonWriterOptions { Indented = true });
        var signal = record.Signal;
        json.WriteStartObject();
        json.WriteString("record", record.RecordId);
        json.WriteString("format", record.Format.ToString().ToLowerInvariant());
        json.WriteString("container", record.Container);
        WriteIfStated(json, "version", record.Description.Version);
        WriteIfStated(json, "device", record.Description.Device);
        WriteIfStated(json, "filters", record.Description.Filters);
        if (record.Wfdb is { } wfdb)
        {
            json.WriteStartArray("signal_formats");
            foreach (var f in wfdb.Formats)
            {
                json.WriteStringValue(f);
            }

            json.WriteEndArray();
            json.WriteNumber("frame_rate", wfdb.SamplingFrequency);
            json.WriteNumber("frames", wfdb.SampleCount);
            if (wfdb.Header.BaseTime is { } time)
            {
                json.WriteString("base_time", time.ToString("c", System.Globalization.CultureInfo.InvariantCulture));
            }

            if (wfdb.Header.BaseDate is { } date)
            {
                json.WriteString("base_date", date.ToString("yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture));
            }
        }

        json.WriteNumber("sampling_rate", signal.SamplingRate);
        json.WriteNumber("samples", signal.SampleCount);
        json.WriteNumber("duration_s", signal.SampleCount / signal.SamplingRate);
        json.WriteStartArray("leads");
        foreach (var name in signal.LeadNames)
        {
            json.WriteStringValue(name);
        }

        json.WriteEndArray();
        json.WriteStartArray("units");
        foreach (var unit in record.SourceUnits)
        {
            json.WriteStringValue(unit);
        }

        json.WriteEndArray();
        json.WriteStartArray("standard_leads");
        foreach (var name in signal.LeadNames)
        {
            if (LeadMapping.StandardName(name) is { } standard)
            {
                json.WriteStringValue(standard);
            }
            else
            {
                json.WriteNullValue();
            }
        }

        json.WriteEndArray();
        string? twelveLead = null;
        try
        {
            record.ToStandard12Lead();
        }
        catch (EcgFormatException e)
        {
            twelveLead = e.Reason;
        }

        json.WriteBoolean("twelve_lead", twelveLead is null);
        if (twelveLead is null)
        {
            // The standard leads the record does not store, which lead mapping derives from I and II.
            var stored = signal.LeadNames.Select(LeadMapping.StandardName).OfType<string>().ToHashSet(StringComparer.Ordinal);
            json.WriteStartArray("derived_leads");
            foreach (var lead in StandardLeads.Names.Where(l => !stored.Contains(l)))
            {
                json.WriteStringValue(lead);
            }

            json.WriteEndArray();
        }

        if (twelveLead is not null)
        {
            json.WriteString("twelve_lead_problem", twelveLead);
        }

        if (record.Wfdb is { } w)
        {
            json.WriteStartArray("signals");
            for (var i = 0; i < w.Signals.Count; i++)
            {
                var s = w.Signals[i];
                json.WriteStartObject();
                json.WriteNumber("index", i);
                json.WriteString("description", s.Description);
                json.WriteString("file", s.FileName);
                json.WriteNumber("format", s.Format);
                json.WriteNumber("samples_per_frame", s.SamplesPerFrame);
                json.WriteNumber("skew", s.Skew);
                json.WriteNumber("byte_offset", s.ByteOffset);
                json.WriteNumber("gain", s.Gain);
                json.WriteNumber("baseline", s.Baseline);
                json.WriteString("units", s.Units);
                json.WriteNumber("adc_resolution", s.AdcResolution);
                json.WriteNumber("adc_zero", s.AdcZero);
                json.WriteNumber("initial_value", s.InitialValue);
                if (s.Checksum is { } checksum)
                {
                    json.WriteNumber("checksum", checksum);
                }

                json.WriteEndObject();
            }

            json.WriteEndArray();
        }

        json.WriteStartArray("comments");
        foreach (var comment in record.Comments)
        {
            json.WriteStringValue(comment);
        }

        json.WriteEndArray();
        json.WriteStartObject("metadata");
        foreach (var (key, value) in signal.Metadata.Where(kv => kv.Key != "comments").OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            json.WriteString(key, value);
        }

        json.WriteEndObject();
        json.WriteStartArray("warnings");
        foreach (var warning in record.Warnings)
        {
            json.WriteStringValue(warning);
        }

        json.WriteEndArray();
        json.WriteEndObject();
        json.Flush();
        output.WriteByte((byte)'\n');
    }

    private static void WriteIfStated(Utf8JsonWriter json, string name, string? value)
    {
        if (!string.IsNullOrWhiteSpace(value))
        {
            json.WriteString(name, value);
        }
    }
}
