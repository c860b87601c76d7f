using System.CommandLine;

namespace HubertEcg.Client.Commands;

/// <summary><c>hubert-ecg bench</c>: throughput benchmarks whose last line is <c>name=value</c>.</summary>
public static class BenchCommands
{
    public static Command Build()
    {
        var command = new Command("bench", "Throughput benchmarks");
        command.Subcommands.Add(BenchModelCommand.Build());
        command.Subcommands.Add(BenchPreprocessCommand.Build());
        command.Subcommands.Add(BenchWriteCommand.Build());
        command.Subcommands.Add(BenchPipelineCommand.Build());
        command.Subcommands.Add(BenchEvaluateCommand.Build());
        return command;
    }
}
