using System.CommandLine;
using HubertEcg.Inference.Model;
using HubertEcg.Inference.Preprocessing;
using HubertEcg.Storage;

namespace HubertEcg.Client.Commands;

/// <summary><c>hubert-ecg run submit</c>: registers the model and creates a run; prints its id.</summary>
public static class RunSubmitCommand
{
    public static Command Build()
    {
        var input = new Option<string?>("--input") { Description = "Input: <container>/<prefix> in the configured blob store (or use --manifest)" };
        var manifest = new Option<string?>("--manifest")
        {
            Description = "Input: <container>/<blob>, a blob listing record paths relative to the container, one per line (# comments); instead of --input",
        };
        var model = new Option<FileInfo>("--model") { Description = "ONNX model from `model export` or `model random`; every silo must read it at this path", Required = true };
        var name = new Option<string?>("--name") { Description = "Run name (default: the input and the time)" };
        var profile = new Option<string?>("--profile") { Description = "Preprocessing profile (default: the model's): " + string.Join(", ", PreprocessingProfiles.Names) };
        var batch = new Option<int>("--batch") { Description = "Windows per model call", DefaultValueFactory = _ => 32 };
        var shardSize = new Option<int>("--shard-size") { Description = "Single-record blobs per shard", DefaultValueFactory = _ => 100 };
        var aggregation = new Option<string>("--aggregation") { Description = "How window probabilities combine per record: mean or max", DefaultValueFactory = _ => "mean" };
        var maxWindows = new Option<int>("--max-windows") { Description = "Most 5 s windows scored per record", DefaultValueFactory = _ => 6 };
        var leaseSeconds = new Option<int>("--lease-seconds") { Description = "Shard lease length; a worker that stops renewing loses its shard after this", DefaultValueFactory = _ => 60 };
        var maxAttempts = new Option<int>("--max-attempts") { Description = "Attempts per shard before it is marked failed", DefaultValueFactory = _ => 3 };
        var command = new Command("submit", "Submit a scoring run over a blob container/prefix or a manifest of record paths; prints the run id");
        foreach (var option in new Option[] { input, manifest, model, name, profile, batch, shardSize, aggregation, maxWindows, leaseSeconds, maxAttempts })
        {
            command.Options.Add(option);
        }

        command.SetAction(async (parseResult, cancellationToken) =>
        {
            var (container, prefix, manifestBlob) = ResolveInput(parseResult.GetValue(input), parseResult.GetValue(manifest));
            var modelFile = parseResult.GetValue(model)!;
            if (!modelFile.Exists)
            {
                throw new FileNotFoundException($"model file {modelFile.FullName} does not exist", modelFile.FullName);
            }

            var descriptor = ModelDescriptor.FromOnnxFile(modelFile.FullName);
            var profileName = parseResult.GetValue(profile) ?? descriptor.PreprocessingProfile;
            if (!PreprocessingProfiles.TryParse(profileName, out _))
            {
                throw new ArgumentException($"--profile '{profileName}' is not one of {string.Join(", ", PreprocessingProfiles.Names)}");
            }

            var agg = parseResult.GetValue(aggregation)!;
            if (agg is not ("mean" or "max"))
            {
                throw new ArgumentException($"--aggregation must be mean or max, not '{agg}'");
            }

            var positive = new (string Name, int Value)[]
            {
                ("--batch", parseResult.GetValue(batch)), ("--shard-size", parseResult.GetValue(shardSize)),
                ("--max-windows", parseResult.GetValue(maxWindows)), ("--lease-seconds", parseResult.GetValue(leaseSeconds)),
                ("--max-attempts", parseResult.GetValue(maxAttempts)),
            };
            foreach (var (optionName, value) in positive)
            {
                if (value < 1)
                {
                    throw new ArgumentException($"{optionName} must be at least 1, not {value}");
                }
            }

            await using var db = RunCommands.OpenDatabase(parseResult);
            var store = new RunStore(db);
            await store.RegisterModelAsync(
                new ModelRecord(
                    descriptor.ModelId, descriptor.Name, descriptor.SourceHash, descriptor.ArchitectureJson, descriptor.HiddenSize,
                    descriptor.LabelCodes, descriptor.Untrained, descriptor.PreprocessingProfile),
                cancellationToken);
            var runId = Guid.NewGuid();
            await store.CreateRunAsync(
                new NewRun(
                    runId,
                    parseResult.GetValue(name) ?? $"{container}/{manifestBlob ?? prefix} {DateTime.UtcNow:yyyy-MM-dd HH:mm}Z",
                    container,
                    prefix,
                    descriptor.ModelId,
                    modelFile.FullName,
                    profileName,
                    agg,
                    parseResult.GetValue(maxWindows),
                    parseResult.GetValue(batch),
                    parseResult.GetValue(shardSize),
                    parseResult.GetValue(maxAttempts),
                    parseResult.GetValue(leaseSeconds),
                    manifestBlob),
                cancellationToken);
            Console.WriteLine(runId);
            return 0;
        });
        return command;
    }

    /// <summary>
    /// The run's input from <c>--input container/prefix</c> or <c>--manifest container/blob</c>: exactly one of them.
    /// A manifest run has an empty prefix.
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
        var slash = trimmed.IndexOf('/', StringComparison.Ordinal);
        if (slash <= 0 || slash == trimmed.Length - 1 || trimmed.EndsWith('/'))
        {
            throw new ArgumentException($"--manifest '{manifest}' is not <container>/<blob>");
        }

        return (trimmed[..slash], "", trimmed[(slash + 1)..]);
    }

    /// <summary>Splits <c>container/prefix</c>; the prefix may be empty (the whole container).</summary>
    public static (string Container, string Prefix) SplitInput(string input)
    {
        var trimmed = input.Trim();
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
