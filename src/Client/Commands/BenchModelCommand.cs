using System.CommandLine;

namespace HubertEcg.Client.Commands;

/// <summary><c>hubert-ecg bench model</c>.</summary>
public static class BenchModelCommand
{
    public static Command Build() => new("model", "(not built yet)");
}
