using System.CommandLine;
using HubertEcg.Grains;
using HubertEcg.Inference.Model;
using HubertEcg.Inference.Preprocessing;
using HubertEcg.Storage;
using HubertEcg.Storage.Folders;

namespace HubertEcg.Client.Commands;

/// <summary>What a run scores and how, as <c>run submit</c> and <c>schedule add</c> take it from their options.</summary>
public sealed record RunDefinition(
    string Container,
    string Prefix,
    string? Manifest,
    ModelDescriptor Model,
    string ModelLocation,
    string Profile,
    Aggregation Aggregation,
    int MaxWindows,
    int BatchSize,
    int ShardSize,
    int MaxAttempts,
    int LeaseSeconds)
{
    /// <summary>The input as <c>container/prefix</c> or <c>container/manifest-blob</c> (a folder's as <c>file:///folder//prefix</c>).</summary>
    public string Input => FolderInput.Describe(Container, Manifest ?? Prefix);

}

/// <summary>
/// The options that define a run: input (<c>--input</c> or <c>--manifest</c>), model, preprocessing profile, window
/// policy, batch, shard size and retry settings; shared by <c>run submit</c> and <c>schedule add</c>.
/// </summary>
public sealed class RunDefinitionOptions
{
    private readonly Option<string?> _input = new("--input")
    {
        Description = "Input: <container>/<prefix> in the configured blob store, or file:///folder (file:///folder//prefix) on a disk or share every silo mounts at that path (or use --manifest)",
    };

    private readonly Option<string?> _manifest = new("--manifest")
    {
        Description = "Input: <container>/<blob> (or file:///folder//file), a file listing record paths relative to the container or folder, one per line (# comments); instead of --input",
    };

    private readonly Option<string> _model = new("--model")
    {
        Description = "The model: an ONNX file from `model export` or `model random` (registered in blob storage first, as `model register` does), or a registered model's id or name",
        Required = true,
    };

    private readonly Option<string?> _profile = new("--profile") { Description = "Preprocessing profile (default: the model's): " + string.Join(", ", PreprocessingProfiles.Names) };
    private readonly Option<int> _batch = new("--batch") { Description = "Windows per model call", DefaultValueFactory = _ => 32 };
    private readonly Option<int> _shardSize = new("--shard-size") { Description = "Single-record blobs per shard", DefaultValueFactory = _ => 100 };
    private readonly Option<string> _aggregation = new("--aggregation") { Description = "How window probabilities combine per record: mean or max", DefaultValueFactory = _ => "mean" };
    private readonly Option<int> _maxWindows = new("--max-windows") { Description = "Most 5 s windows scored per record", DefaultValueFactory = _ => 6 };
    private readonly Option<int> _leaseSeconds = new("--lease-seconds") { Description = "Shard lease length; a worker that stops renewing loses its shard after this", DefaultValueFactory = _ => 60 };
    private readonly Option<int> _maxAttempts = new("--max-attempts") { Description = "Attempts per shard before it is marked failed", DefaultValueFactory = _ => 3 };

    public void AddTo(Command command)
    {
        foreach (var option in new Option[] { _input, _manifest, _model, _profile, _batch, _shardSize, _aggregation, _maxWindows, _leaseSeconds, _maxAttempts })
        {
            command.Options.Add(option);
        }
    }

    /// <summary>
    /// Reads and checks the options against <see cref="RunSettingsRules"/> before anything is stored, then finds the
    /// model: a file is checked (its size, structure and declared output widths, then its sizes against the same
    /// rules) and registered in blob storage and Postgres (<see cref="ModelRegistry"/>); an id or a name must be a
    /// registered model's. Throws <see cref="ArgumentException"/>, <see cref="CheckpointFormatException"/> or
    /// <see cref="FileNotFoundException"/> naming what is wrong.
    /// </summary>
    public async Task<RunDefinition> ResolveAsync(ParseResult parseResult, ModelRegistry models, CancellationToken cancellationToken)
    {
        var (container, prefix, manifest) = RunSubmitCommand.ResolveInput(parseResult.GetValue(_input), parseResult.GetValue(_manifest));
        if (FolderInput.IsFolder(container))
        {
            FolderInput.RequireRoot(container);
        }

        var problems = RunSettingsRules.CheckOptions(
            parseResult.GetValue(_batch), parseResult.GetValue(_maxWindows), parseResult.GetValue(_shardSize), parseResult.GetValue(_leaseSeconds),
            parseResult.GetValue(_maxAttempts));
        if (problems.Count > 0)
        {
            throw new ArgumentException(RunSettingsRules.Describe("run options", problems));
        }

        var aggregationText = parseResult.GetValue(_aggregation)!;
        if (aggregationText is not ("mean" or "max"))
        {
            throw new ArgumentException($"--aggregation must be mean or max, not '{aggregationText}'");
        }

        var profileOption = parseResult.GetValue(_profile);
        if (profileOption is not null && !PreprocessingProfiles.TryParse(profileOption, out _))
        {
            throw new ArgumentException($"--profile '{profileOption}' is not one of {string.Join(", ", PreprocessingProfiles.Names)}");
        }

        var model = await ResolveModelAsync(parseResult.GetValue(_model)!, models, cancellationToken);
        var descriptor = model.Descriptor;
        var modelProblems = RunSettingsRules.CheckModel(descriptor.HiddenSize, descriptor.LabelCount);
        if (modelProblems.Count > 0)
        {
            throw new ArgumentException(RunSettingsRules.Describe($"model {descriptor.ModelId}", modelProblems));
        }

        var profile = profileOption ?? descriptor.PreprocessingProfile;
        if (!PreprocessingProfiles.TryParse(profile, out _))
        {
            throw new ArgumentException($"model {descriptor.ModelId}: its preprocessing profile '{profile}' is not one of {string.Join(", ", PreprocessingProfiles.Names)}");
        }

        var aggregation = ContractText.ParseAggregation(aggregationText);

        return new RunDefinition(
            container,
            prefix,
            manifest,
            descriptor,
            model.Blob!.Location,
            profile,
            aggregation,
            parseResult.GetValue(_maxWindows),
            parseResult.GetValue(_batch),
            parseResult.GetValue(_shardSize),
            parseResult.GetValue(_maxAttempts),
            parseResult.GetValue(_leaseSeconds));
    }

    /// <summary>
    /// The model <paramref name="model"/> names: an existing file is registered (uploaded once, recorded in Postgres);
    /// anything else must be a registered model's id or name.
    /// </summary>
    public static async Task<RegisteredModel> ResolveModelAsync(string model, ModelRegistry models, CancellationToken cancellationToken)
    {
        if (string.IsNullOrWhiteSpace(model))
        {
            throw new ArgumentException("--model must name a model file, id or name");
        }

        if (File.Exists(model))
        {
            return (await models.RegisterFileAsync(model, cancellationToken: cancellationToken)).Model;
        }

        if (model.EndsWith(".onnx", StringComparison.OrdinalIgnoreCase) || model.Contains('/', StringComparison.Ordinal))
        {
            throw new FileNotFoundException($"model file {Path.GetFullPath(model)} does not exist", model);
        }

        return await models.FindAsync(model, cancellationToken);
    }
}
