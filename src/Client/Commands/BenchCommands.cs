using System.CommandLine;

namespace HubertEcg.Client.Commands;

/// <summary><c>hubert-ecg bench</c> subcommands.</summary>
public static class BenchCommands
{
    public static Command Build()
    {
        var command = new Command("bench", "Bench commands");
        return command;
    }
}
