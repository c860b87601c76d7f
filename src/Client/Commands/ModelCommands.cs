using System.CommandLine;

namespace HubertEcg.Client.Commands;

/// <summary><c>hubert-ecg model</c> subcommands.</summary>
public static class ModelCommands
{
    public static Command Build()
    {
        var command = new Command("model", "Model commands");
        return command;
    }
}
