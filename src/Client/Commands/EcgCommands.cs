using System.CommandLine;

namespace HubertEcg.Client.Commands;

/// <summary><c>hubert-ecg ecg</c>: inspect, dump and preprocess ECG records.</summary>
public static class EcgCommands
{
    public static Command Build()
    {
        var command = new Command("ecg", "Read and preprocess ECG records");
        command.Subcommands.Add(EcgInspectCommand.Build());
        command.Subcommands.Add(EcgDumpCommand.Build());
        command.Subcommands.Add(EcgPreprocessCommand.Build());
        return command;
    }

    /// <summary>The RECORD argument shared by the ecg subcommands.</summary>
    internal static Argument<string> RecordArgument() => new("record")
    {
        Description = "A WFDB header or record name (a .mat/.dat beside its header works too), a .npy file (with --fs), or an HDF5 shard with #<index> appended",
    };

    /// <summary>The --fs option: the sampling rate of a .npy array, or an override for an HDF5 shard.</summary>
    internal static Option<double?> SamplingRateOption() => new("--fs")
    {
        Description = "Sampling rate in Hz (required for .npy; overrides an HDF5 shard's configured 400 Hz)",
    };
}
