using HubertEcg.Integration.Tests.Scoring;
using HubertEcg.Testing;

namespace HubertEcg.Integration.Tests.Security;

/// <summary>
/// Terminal injection (issue 12, finding 7): names and inputs holding ESC, CR, BEL, C1 controls and bidirectional
/// overrides, stored verbatim through <c>run submit</c> and <c>schedule add</c>, are printed by <c>run status</c>,
/// <c>run list</c> and <c>schedule list</c> as visible escapes, never as the characters a terminal would act on.
/// </summary>
[Collection(nameof(ConsoleBound))]
public sealed class TerminalOutputTests(PostgresDatabaseFixture database, BlobContainerFixture blobs)
    : IClassFixture<PostgresDatabaseFixture>, IClassFixture<BlobContainerFixture>
{
    // Retitles the window (OSC ... BEL), returns to the line's start and overwrites it, then a C1 CSI and an RLO.
    private const string Name = "\u001b]0;pwned\u0007ok\rFAKE\u009b2J\u202Egnp";

    private static readonly char[] Acted = ['\u001b', '\u0007', '\r', '\u009b', '\u202e'];

    [Fact]
    public async Task RunStatusRunListAndScheduleListEscapeWhatATerminalWouldAct()
    {
        using var model = new TinyModel(seed: 91);
        var (code, output, error) = await CliAsync("run", "submit", "--input", $"{blobs.ContainerName}/tty\u001b[2J/", "--model", model.Path, "--name", Name);
        Assert.True(code == 0, error);
        var runId = output.Trim();

        (code, output, error) = await CliAsync("run", "status", runId);
        Assert.True(code == 0, error);
        AssertEscaped(output);
        Assert.Contains($"run {runId}  \\x1B]0;pwned\\x07ok\\x0DFAKE\\u009B2J\\u202Egnp", output, StringComparison.Ordinal);
        Assert.Contains("tty\\x1B[2J/", output, StringComparison.Ordinal);

        (code, output, error) = await CliAsync("run", "list", "--limit", "5");
        Assert.True(code == 0, error);
        AssertEscaped(output);
        Assert.Contains("\\x1B", output, StringComparison.Ordinal);

        (code, _, error) = await CliAsync(
            "schedule", "add", "--name", Name, "--input", $"{blobs.ContainerName}/tty\r/", "--model", model.Path, "--cron", "0 2 * * *");
        Assert.True(code == 0, error);
        (code, output, error) = await CliAsync("schedule", "list");
        Assert.True(code == 0, error);
        AssertEscaped(output);
        Assert.Contains("\\x1B]0;pwned\\x07ok\\x0DFAKE\\u009B2J\\u202Egnp  ", output, StringComparison.Ordinal);
        Assert.Contains($"input {blobs.ContainerName}/tty\\x0D/", output, StringComparison.Ordinal);
    }

    private static void AssertEscaped(string output)
    {
        var found = output.IndexOfAny(Acted);
        Assert.True(found < 0, $"printed a raw U+{(found < 0 ? 0 : output[found]):X4} at {found}");
    }

    private Task<(int Code, string Output, string Error)> CliAsync(params string[] args) =>
        CliHarness.RunAsync(database.ConnectionString, blobs.ConnectionString, args);
}
