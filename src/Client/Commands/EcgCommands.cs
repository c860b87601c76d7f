using System.CommandLine;

namespace HubertEcg.Client.Commands;

/// <summary><c>hubert-ecg ecg</c>: inspect, dump and preprocess ECG records.</summary>
public static class EcgCommands
{
    public static Command Build()
    {
        var command = new Command("ecg", "Read and preprocess ECG records");
        command.Subcommands.Add(EcgPreprocessCommand.Build());
        return command;
    }
}
