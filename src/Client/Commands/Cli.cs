using System.CommandLine;
using HubertEcg.Storage;
using Microsoft.Extensions.Configuration;

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
        root.Subcommands.Add(SmokeCommand.Build());
        root.Subcommands.Add(RunCommands.Build());
        root.Subcommands.Add(ScheduleCommands.Build());
        root.Subcommands.Add(ResultsCommands.Build());
        return root;
    }

    /// <summary>appsettings.json, then HUBERTECG_* environment variables, then --set overrides.</summary>
    public static IConfigurationRoot Configuration(ParseResult parseResult)
    {
        var overrides = parseResult.GetValue(SetOption) ?? [];
        var pairs = new List<KeyValuePair<string, string?>>();
        foreach (var item in overrides)
        {
            var eq = item.IndexOf('=', StringComparison.Ordinal);
            if (eq <= 0)
            {
                throw new ArgumentException($"--set expects Section:Key=value, got '{item}'");
            }

            pairs.Add(new(item[..eq], item[(eq + 1)..]));
        }

        return new ConfigurationBuilder().AddHubertEcgSources().AddInMemoryCollection(pairs).Build();
    }
}
