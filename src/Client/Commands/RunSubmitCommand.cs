using System.CommandLine;
using HubertEcg.Client.Cluster;
using HubertEcg.Storage;
using HubertEcg.Storage.Folders;

namespace HubertEcg.Client.Commands;

/// <summary>
/// <c>hubert-ecg run submit</c>: finds the model (a file is registered in blob storage first) and creates the run's
/// row in Postgres (the durable record), then, when a configured gateway answers, announces the run to the cluster's run directory, which wakes its coordinator
/// at once; without one the directory finds the row on its next refresh. Prints the run id on standard output and
/// what answered on standard error.
/// </summary>
public static class RunSubmitCommand
{
    public static Command Build()
    {
        var definition = new RunDefinitionOptions();
        var name = new Option<string?>("--name") { Description = "Run name (default: the input and the time)" };
        var incremental = new Option<bool>("--incremental")
        {
            Description = "Score only records without a score for this model, or whose source blob changed (ETag) since they were scored (in a folder: its size or modification time)",
        };
        var command = new Command("submit", "Submit a scoring run over a blob container/prefix, a folder (file:///path) or a manifest of record paths; prints the run id");
        definition.AddTo(command);
        command.Options.Add(name);
        command.Options.Add(incremental);
        command.SetAction(async (parseResult, cancellationToken) =>
        {
            var configuration = Cli.Configuration(parseResult);
            var clusterOptions = ClusterClientOptions.Load(configuration);
            await using var db = RunCommands.OpenDatabase(configuration);
            var run = await definition.ResolveAsync(parseResult, ModelCommands.OpenRegistry(configuration, db), cancellationToken);
            var store = new RunStore(db);
            var runId = Guid.NewGuid();
            await store.CreateRunAsync(
                new NewRun(
                    runId,
                    parseResult.GetValue(name) ?? $"{run.Input} {DateTime.UtcNow:yyyy-MM-dd HH:mm}Z",
                    run.Container,
                    run.Prefix,
                    run.Model.ModelId,
                    run.ModelLocation,
                    run.Profile,
                    run.Aggregation,
                    run.MaxWindows,
                    run.BatchSize,
                    run.ShardSize,
                    run.MaxAttempts,
                    run.LeaseSeconds,
                    run.Manifest,
                    parseResult.GetValue(incremental)),
                cancellationToken);

            await RunCommands.AnnounceAsync(clusterOptions, runId, cancellationToken);
            Console.WriteLine(runId);
            return 0;
        });
        return command;
    }

    /// <summary>
    /// The run's input from <c>--input container/prefix</c> or <c>--manifest container/blob</c>: exactly one of them
    /// (or their folder forms, <c>file:///folder//prefix</c> and <c>file:///folder//manifest</c>). A manifest run has
    /// an empty prefix.
    /// </summary>
    public static (string Container, string Prefix, string? Manifest) ResolveInput(string? input, string? manifest)
    {
        if ((input is null) == (manifest is null))
        {
            throw new ArgumentException("give exactly one of --input <container>/<prefix> and --manifest <container>/<blob>");
        }

        if (input is not null)
        {
            var (container, prefix) = SplitInput(input);
            return (container, prefix, null);
        }

        var trimmed = manifest!.Trim();
        if (FolderInput.IsFolder(trimmed))
        {
            var (folder, file) = FolderInput.Parse(trimmed);
            if (file.Length == 0 || file.EndsWith('/'))
            {
                throw new ArgumentException($"--manifest '{manifest}' names no file: expected file:///folder//manifest.txt (the manifest's path in the folder after //)");
            }

            return (folder, "", file);
        }

        var slash = trimmed.IndexOf('/', StringComparison.Ordinal);
        if (slash <= 0 || slash == trimmed.Length - 1 || trimmed.EndsWith('/'))
        {
            throw new ArgumentException($"--manifest '{manifest}' is not <container>/<blob>");
        }

        return (trimmed[..slash], "", trimmed[(slash + 1)..]);
    }

    /// <summary>
    /// Splits <c>container/prefix</c>; the prefix may be empty (the whole container). A folder input,
    /// <c>file:///folder</c> or <c>file:///folder//prefix</c>, is split by <see cref="FolderInput.Parse"/>.
    /// </summary>
    public static (string Container, string Prefix) SplitInput(string input)
    {
        var trimmed = input.Trim();
        if (FolderInput.IsFolder(trimmed))
        {
            return FolderInput.Parse(trimmed);
        }

        var slash = trimmed.IndexOf('/', StringComparison.Ordinal);
        var container = slash < 0 ? trimmed : trimmed[..slash];
        var prefix = slash < 0 ? "" : trimmed[(slash + 1)..];
        if (container.Length == 0)
        {
            throw new ArgumentException($"--input '{input}' names no container; expected <container>/<prefix>");
        }

        return (container, prefix);
    }
}
