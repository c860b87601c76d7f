using HubertEcg.Client.Commands;

namespace HubertEcg.Integration.Tests.Scoring;

/// <summary>
/// Runs <c>hubert-ecg</c> commands in-process against the test services, capturing what they print. Tests using it
/// belong to the <see cref="ConsoleBound"/> collection: the console is process-wide.
/// </summary>
public static class CliRunner
{
    public static async Task<(int Code, string Output, string Error)> RunAsync(string postgres, string blob, params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var (originalOut, originalError) = (Console.Out, Console.Error);
        Console.SetOut(output);
        Console.SetError(error);
        try
        {
            var code = await Cli.BuildRoot()
                .Parse([.. args, "--set", $"Postgres:ConnectionString={postgres}", "--set", $"BlobStorage:ConnectionString={blob}"])
                .InvokeAsync();
            return (code, output.ToString(), error.ToString());
        }
        finally
        {
            Console.SetOut(originalOut);
            Console.SetError(originalError);
        }
    }
}
