using System.CommandLine;
using System.Globalization;
using System.Text;
using HubertEcg.Inference.Ecg;

namespace HubertEcg.Client.Commands;

/// <summary>
/// <c>hubert-ecg ecg dump RECORD [--from N] [--to N] [--channels i,j] [--physical]</c>: samples as text like
/// WFDB's rdsamp (one row per sample, tab-separated; digital values for WFDB records, physical values otherwise).
/// </summary>
public static class EcgDumpCommand
{
    public static Command Build()
    {
        var record = EcgCommands.RecordArgument();
        var fs = EcgCommands.SamplingRateOption();
        var from = new Option<long>("--from") { Description = "First sample (default 0)", DefaultValueFactory = _ => 0 };
        var to = new Option<long?>("--to") { Description = "End sample, exclusive (default: end of record)" };
        var channels = new Option<string?>("--channels") { Description = "Channel indices in output order, comma-separated (default: all)" };
        var physical = new Option<bool>("--physical") { Description = "Physical values ((adu - baseline) / gain, 8 decimals) instead of digital ADC values" };
        var command = new Command("dump", "Print samples, one row per sample, tab-separated (like WFDB rdsamp)");
        command.Arguments.Add(record);
        command.Options.Add(from);
        command.Options.Add(to);
        command.Options.Add(channels);
        command.Options.Add(physical);
        command.Options.Add(fs);
        command.SetAction(parseResult =>
        {
            try
            {
                var selected = ParseChannels(parseResult.GetValue(channels));
                using var stdout = new StreamWriter(Console.OpenStandardOutput(), new UTF8Encoding(false), 1 << 16) { NewLine = "\n" };
                var warnings = EcgDump.Write(stdout, parseResult.GetValue(record)!, parseResult.GetValue(from), parseResult.GetValue(to), selected, parseResult.GetValue(physical), parseResult.GetValue(fs));
                foreach (var warning in warnings)
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
            catch (FormatException e)
            {
                Console.Error.WriteLine($"error: {e.Message}");
                return 2;
            }
        });
        return command;
    }

    /// <summary>Parses "i,j,..." into channel indices; null or empty means all channels.</summary>
    public static int[]? ParseChannels(string? text)
    {
        if (string.IsNullOrWhiteSpace(text))
        {
            return null;
        }

        return text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)
            .Select(part => int.TryParse(part, NumberStyles.None, CultureInfo.InvariantCulture, out var v)
                ? v
                : throw new FormatException($"--channels: '{part}' is not a channel index"))
            .ToArray();
    }
}
