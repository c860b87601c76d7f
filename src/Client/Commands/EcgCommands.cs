using System.CommandLine;

namespace HubertEcg.Client.Commands;

/// <summary><c>hubert-ecg ecg</c> subcommands.</summary>
public static class EcgCommands
{
    public static Command Build()
    {
        var command = new Command("ecg", "Ecg commands");
        return command;
    }
}
