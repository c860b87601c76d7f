using System.CommandLine;
using Azure;
using HubertEcg.Inference.Ecg;
using HubertEcg.Inference.Model;
using HubertEcg.Storage;
using HubertEcg.Storage.Access;
using Microsoft.Extensions.Configuration;
using Npgsql;

namespace HubertEcg.Client.Commands;

/// <summary>The <c>hubert-ecg</c> command tree.</summary>
public static class Cli
{
    /// <summary>Configuration overrides for this invocation, <c>--set Section:Key=value</c> (repeatable).</summary>
    public static readonly Option<string[]> SetOption = new("--set")
    {
        Description = "Override a configuration value, e.g. --set Postgres:ConnectionString=Host=...",
        Recursive = true,
        AllowMultipleArgumentsPerToken = false,
    };

    public static RootCommand BuildRoot()
    {
        var root = new RootCommand("hubert-ecg: score ECG archives with the HuBERT-ECG foundation model");
        root.Options.Add(SetOption);
        root.Subcommands.Add(ModelCommands.Build());
        root.Subcommands.Add(EcgCommands.Build());
        root.Subcommands.Add(BenchCommands.Build());
        root.Subcommands.Add(CohortCommands.Build());
        root.Subcommands.Add(InputCommands.Build());
        root.Subcommands.Add(SmokeCommand.Build());
        root.Subcommands.Add(DbCommands.Build());
        root.Subcommands.Add(RunCommands.Build());
        root.Subcommands.Add(ScheduleCommands.Build());
        root.Subcommands.Add(ResultsCommands.Build());
        root.Subcommands.Add(EvaluateCommand.Build());
        root.Subcommands.Add(ThresholdsCommands.Build());
        return root;
    }

    /// <summary>
    /// Parses and runs one command line. An error the user can act on (a bad argument, a missing file, a refused
    /// value, an unreachable Postgres or blob store) ends the command with exit code 1 and one line on standard error,
    /// <c>error: ...</c>, with the causes' messages; anything else is a bug and is printed whole, stack trace included.
    /// Either way secrets (passwords, account keys, SAS signatures, tokens) are masked (<see cref="Secrets"/>).
    /// </summary>
    public static async Task<int> InvokeAsync(IReadOnlyList<string> args, CancellationToken cancellationToken = default)
    {
        try
        {
            return await BuildRoot().Parse(args).InvokeAsync(new InvocationConfiguration { EnableDefaultExceptionHandler = false }, cancellationToken);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            await Console.Error.WriteLineAsync("error: cancelled");
            return 130;
        }
        catch (Exception e) when (IsUserError(e))
        {
            await Console.Error.WriteLineAsync($"error: {Secrets.Redact(Describe(e))}");
            return 1;
        }
        catch (Exception e)
        {
            await Console.Error.WriteLineAsync($"error: unexpected failure, please report it: {Secrets.Redact(e.ToString())}");
            return 1;
        }
    }

    private static bool IsUserError(Exception e) =>
        e is ArgumentException or IOException or UnauthorizedAccessException or InvalidDataException or FormatException
            or NotSupportedException or InvalidOperationException or EcgFormatException or CheckpointFormatException
            or NpgsqlException or RequestFailedException or TimeoutException or ExecutionProviderUnavailableException;

    /// <summary>The exception's message followed by its causes' messages (a refused connection's socket error).</summary>
    private static string Describe(Exception e)
    {
        var parts = new List<string>();
        for (var current = e; current is not null; current = current.InnerException)
        {
            var message = current.Message.Trim();
            if (message.Length > 0 && !parts.Any(p => p.Contains(message, StringComparison.Ordinal)))
            {
                parts.Add(message);
            }
        }

        return string.Join(": ", parts);
    }

    /// <summary>appsettings.json, then HUBERTECG_* environment variables, then --set overrides (the last of a key wins).</summary>
    public static IConfigurationRoot Configuration(ParseResult parseResult)
    {
        var overrides = parseResult.GetValue(SetOption) ?? [];
        // Keys are case-insensitive, as in every configuration source; a key set twice takes its last value.
        var pairs = new Dictionary<string, string?>(StringComparer.OrdinalIgnoreCase);
        foreach (var item in overrides)
        {
            var eq = item.IndexOf('=', StringComparison.Ordinal);
            if (eq <= 0)
            {
                throw new ArgumentException($"--set expects Section:Key=value, got '{item}'");
            }

            pairs[item[..eq]] = item[(eq + 1)..];
        }

        return new ConfigurationBuilder().AddHubertEcgSources().AddInMemoryCollection(pairs).Build();
    }
}
