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
    string ModelPath,
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

    /// <summary>Registers the model in Postgres (a model id already present is left as it is).</summary>
    public Task RegisterModelAsync(RunStore store, CancellationToken cancellationToken) =>
        store.RegisterModelAsync(
            new ModelRecord(
                Model.ModelId, Model.Name, Model.SourceHash, Model.ArchitectureJson, Model.HiddenSize, Model.LabelCodes, Model.Untrained,
                Model.PreprocessingProfile, ModelPrecisions.Name(Model.Precision)),
            cancellationToken);
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

    private readonly Option<FileInfo> _model = new("--model")
    {
        Description = "ONNX model from `model export` or `model random`; every silo must read it at this path",
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
    /// Reads and checks the options against <see cref="RunSettingsRules"/> and the model file (its size, structure and
    /// declared output widths, then its sizes against the same rules), before anything is stored; throws
    /// <see cref="ArgumentException"/>, <see cref="CheckpointFormatException"/> or <see cref="FileNotFoundException"/> naming what is wrong.
    /// </summary>
    public RunDefinition Resolve(ParseResult parseResult)
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

        var modelFile = parseResult.GetValue(_model)!;
        if (!modelFile.Exists)
        {
            throw new FileNotFoundException($"model file {modelFile.FullName} does not exist", modelFile.FullName);
        }

        // The file's size, first bytes and declared outputs are checked before its metadata is believed.
        var descriptor = ModelDescriptor.FromOnnxFile(modelFile.FullName);
        var modelProblems = RunSettingsRules.CheckModel(descriptor.HiddenSize, descriptor.LabelCount);
        if (modelProblems.Count > 0)
        {
            throw new ArgumentException(RunSettingsRules.Describe($"model {modelFile.FullName}", modelProblems));
        }
        var profile = parseResult.GetValue(_profile) ?? descriptor.PreprocessingProfile;
        if (!PreprocessingProfiles.TryParse(profile, out _))
        {
            throw new ArgumentException($"--profile '{profile}' is not one of {string.Join(", ", PreprocessingProfiles.Names)}");
        }

        var aggregationText = parseResult.GetValue(_aggregation)!;
        if (aggregationText is not ("mean" or "max"))
        {
            throw new ArgumentException($"--aggregation must be mean or max, not '{aggregationText}'");
        }

        var aggregation = ContractText.ParseAggregation(aggregationText);

        return new RunDefinition(
            container,
            prefix,
            manifest,
            descriptor,
            modelFile.FullName,
            profile,
            aggregation,
            parseResult.GetValue(_maxWindows),
            parseResult.GetValue(_batch),
            parseResult.GetValue(_shardSize),
            parseResult.GetValue(_maxAttempts),
            parseResult.GetValue(_leaseSeconds));
    }
}
