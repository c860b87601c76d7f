using System.CommandLine;

namespace HubertEcg.Client.Commands;

/// <summary><c>hubert-ecg bench preprocess</c>.</summary>
public static class BenchPreprocessCommand
{
    public static Command Build() => new("preprocess", "(not built yet)");
}
