using System.CommandLine;
using System.Globalization;
using HubertEcg.Inference.Ecg;
using HubertEcg.Inference.IO;
using HubertEcg.Inference.Preprocessing;
using HubertEcg.Inference.Formats;

namespace HubertEcg.Client.Commands;

/// <summary>
/// <c>hubert-ecg ecg preprocess RECORD [--profile P] [--fs HZ] [--max-windows N] --out DIR</c>: writes
/// <c>preprocessed_500hz.npy</c> (12 x M float64) and <c>window0.npy</c>, <c>window1.npy</c>, ... (6000 float32 each).
/// </summary>
public static class EcgPreprocessCommand
{
    public static Command Build()
    {
        var record = new Argument<string>("record") { Description = "The record: a WFDB header or record name, a .npy array (leads x samples; needs --fs), or FILE.h5#INDEX" };
        var profile = new Option<string>("--profile")
        {
            Description = "Preprocessing profile",
            DefaultValueFactory = _ => PreprocessingProfiles.HubertEcg2024Name,
        };
        profile.AcceptOnlyFromAmong([.. PreprocessingProfiles.Names]);
        var fs = new Option<double?>("--fs") { Description = "Sampling rate in Hz (required for .npy records)" };
        var maxWindows = new Option<int?>("--max-windows") { Description = "Write at most this many 5 s windows" };
        var output = new Option<string>("--out") { Description = "Output folder", Required = true };

        var command = new Command("preprocess", "Preprocess one ECG record into HuBERT-ECG model inputs");
        command.Arguments.Add(record);
        command.Options.Add(profile);
        command.Options.Add(fs);
        command.Options.Add(maxWindows);
        command.Options.Add(output);
        command.SetAction(parseResult => Run(
            parseResult.GetValue(record)!,
            PreprocessingProfiles.Parse(parseResult.GetValue(profile)!),
            parseResult.GetValue(fs),
            parseResult.GetValue(maxWindows),
            parseResult.GetValue(output)!));
        return command;
    }

    /// <summary>
    /// Opens a record given on the command line (a WFDB header or record name, a Challenge <c>.mat</c> record's
    /// header, a <c>.npy</c> array with <paramref name="samplingRate"/>, or <c>shard.h5#index</c>) as an
    /// <see cref="EcgSignal"/> in the standard 12-lead order.
    /// </summary>
    /// <exception cref="EcgFormatException">The record cannot be read; the reason says why.</exception>
    public static EcgSignal LoadRecord(string record, double? samplingRate) =>
        FormatRegistry.Default.Load(record, samplingRate).ToStandard12Lead();

    private static int Run(string record, PreprocessingProfile profile, double? fs, int? maxWindows, string output)
    {
        try
        {
            if (maxWindows is < 1)
            {
                Console.Error.WriteLine("error: --max-windows must be at least 1");
                return 1;
            }

            var signal = LoadRecord(record, fs);
            var preprocessor = new EcgPreprocessor(new EcgPreprocessorOptions { Profile = profile, MaxWindows = maxWindows });
            var result = preprocessor.Preprocess(signal);
            Directory.CreateDirectory(output);
            Npy.WriteFloat64(Path.Combine(output, "preprocessed_500hz.npy"), result.Signal, EcgWindows.LeadCount, result.SampleCount);
            for (var k = 0; k < result.WindowCount; k++)
            {
                Npy.WriteFloat32(Path.Combine(output, $"window{k.ToString(CultureInfo.InvariantCulture)}.npy"), result.Window(k), EcgWindows.ModelInputLength);
            }

            Console.WriteLine(string.Create(
                CultureInfo.InvariantCulture,
                $"{signal.RecordId}: {signal.SampleCount} samples at {signal.SamplingRate} Hz -> 12 x {result.SampleCount} at 500 Hz, {result.WindowCount} window(s), profile {profile.Name()}"));
            if (result.NaNLeadCount > 0)
            {
                Console.WriteLine($"{result.NaNLeadCount} lead(s) held invalid samples and were filled with the window mean");
            }

            Console.WriteLine($"wrote {Path.GetFullPath(output)}");
            return 0;
        }
        catch (EcgFormatException e)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return 1;
        }
        catch (IOException e)
        {
            Console.Error.WriteLine($"error: cannot write {output}: {e.Message}");
            return 1;
        }
        catch (UnauthorizedAccessException e)
        {
            Console.Error.WriteLine($"error: cannot write {output}: {e.Message}");
            return 1;
        }
    }
}
