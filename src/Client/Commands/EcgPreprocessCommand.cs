using System.CommandLine;

namespace HubertEcg.Client.Commands;

/// <summary><c>hubert-ecg ecg preprocess</c>.</summary>
public static class EcgPreprocessCommand
{
    public static Command Build() => new("preprocess", "(not built yet)");
}
