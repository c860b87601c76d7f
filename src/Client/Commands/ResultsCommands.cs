using System.CommandLine;

namespace HubertEcg.Client.Commands;

/// <summary><c>hubert-ecg results</c>: read a run's results (from Postgres).</summary>
public static class ResultsCommands
{
    public static Command Build()
    {
        var command = new Command("results", "Results of runs");
        command.Subcommands.Add(ResultsExportCommand.Build());
        return command;
    }
}
