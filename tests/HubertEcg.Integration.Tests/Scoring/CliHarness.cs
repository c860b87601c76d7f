using HubertEcg.Client.Commands;

namespace HubertEcg.Integration.Tests.Scoring;

/// <summary>
/// Runs the <c>hubert-ecg</c> command tree in this process against the test services, capturing what it prints. The
/// console is process-wide: tests that use this belong to the <see cref="ConsoleBound"/> collection.
/// </summary>
public static class CliHarness
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
            var code = await Cli.InvokeAsync(
                [.. args, "--set", $"Postgres:ConnectionString={postgres}", "--set", $"BlobStorage:ConnectionString={blob}"]);
            return (code, output.ToString(), error.ToString());
        }
        finally
        {
            Console.SetOut(originalOut);
            Console.SetError(originalError);
        }
    }
}
