using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using HubertEcg.Inference.IO;
using HubertEcg.Inference.Model;
using HubertEcg.Inference.Onnx;
using HubertEcg.Storage;
using Microsoft.Extensions.Configuration;
using Npgsql;

namespace HubertEcg.Client.Commands;

/// <summary><c>hubert-ecg model</c> subcommands: export, random, info, run, register.</summary>
public static class ModelCommands
{
    public static Command Build()
    {
        var command = new Command("model", "Import HuBERT-ECG checkpoints, export ONNX models, inspect and run them");
        command.Subcommands.Add(BuildExport());
        command.Subcommands.Add(BuildRandom());
        command.Subcommands.Add(BuildInfo());
        command.Subcommands.Add(BuildRun());
        command.Subcommands.Add(BuildRegister());
        return command;
    }

    /// <summary>
    /// The registry of models kept in blob storage: Postgres from <paramref name="db"/>, the models container from
    /// <c>Models:Container</c>, and the blob service from <c>BlobStorage</c> (built only when a file is uploaded).
    /// </summary>
    internal static ModelRegistry OpenRegistry(IConfiguration configuration, NpgsqlDataSource db) =>
        new(db, configuration.BlobService, configuration.Models().Container);

    private static Command BuildRegister()
    {
        var file = new Argument<string>("file") { Description = "ONNX model exported by hubert-ecg (`model export` or `model random`)" };
        var name = new Option<string?>("--name") { Description = "Name to find the model by in `run submit --model NAME` (default: the name its metadata carries)" };
        var command = new Command(
            "register",
            "Check a model file, upload it to the models container (Models:Container) as <model id>/<sha256>.onnx and record it in Postgres; prints its id. Registering it again changes nothing");
        command.Arguments.Add(file);
        command.Options.Add(name);
        command.SetAction(async (parseResult, cancellationToken) =>
        {
            var configuration = Cli.Configuration(parseResult);
            await using var db = RunCommands.OpenDatabase(configuration);
            var registration = await OpenRegistry(configuration, db).RegisterFileAsync(parseResult.GetValue(file)!, parseResult.GetValue(name), cancellationToken);
            var model = registration.Model;
            Console.WriteLine(model.ModelId);
            Console.Error.WriteLine(
                $"model {model.Descriptor.Name}: {model.Blob!.Location} ({model.FileBytes:N0} bytes, SHA-256 {model.Blob.Sha256}); " +
                (registration.Uploaded ? "uploaded" : "blob already there") + ", " + (registration.NewRow ? "registered" : "already registered"));
            return 0;
        });
        return command;
    }

    /// <summary>Runs <paramref name="action"/>, turning bad-input exceptions into a message on stderr and exit code 1.</summary>
    internal static int Guard(Func<int> action)
    {
        try
        {
            return action();
        }
        catch (Exception e) when (e is CheckpointFormatException or InvalidDataException or ArgumentException or NotSupportedException or IOException or UnauthorizedAccessException or ExecutionProviderUnavailableException or CudaGraphUnavailableException or InvalidOperationException)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return 1;
        }
    }

    /// <summary>
    /// The label codes for a head of <paramref name="labels"/> outputs: the Cardio-Learning list for 164 outputs
    /// (from <paramref name="csv"/> or found in ../shared/labels), none otherwise (generic codes).
    /// </summary>
    internal static IReadOnlyList<string>? LabelCodesFor(int labels, string? csv)
    {
        if (labels == 0)
        {
            return null;
        }

        var path = csv ?? (labels == LabelCatalog.CardioLearningCount ? LabelCatalog.FindCardioLearningFile() : null);
        if (path is null)
        {
            if (labels == LabelCatalog.CardioLearningCount)
            {
                throw new ArgumentException($"the head has 164 outputs but {LabelCatalog.CardioLearningFileName} was not found; pass --labels-csv");
            }

            return null;
        }

        var codes = LabelCatalog.LoadCodes(path);
        return codes.Count == labels
            ? codes
            : throw new ArgumentException($"{path} lists {codes.Count} labels but the head has {labels} outputs");
    }

    private static Command BuildExport()
    {
        var checkpoint = new Option<string>("--checkpoint") { Description = "Hugging Face checkpoint folder (config.json + model.safetensors)", Required = true };
        var output = new Option<string>("--out") { Description = "ONNX file to write", Required = true };
        var labelsCsv = new Option<string?>("--labels-csv") { Description = "Label list (index,code,...) for the head; default: ../shared/labels/cardio-learning-164.csv for 164 outputs" };
        var profile = new Option<string>("--preprocessing-profile") { Description = "Preprocessing profile recorded in the metadata", DefaultValueFactory = _ => OnnxModelMetadata.DefaultPreprocessingProfile };
        var precision = PrecisionOption();
        var command = new Command("export", "Import a HuBERT-ECG checkpoint and export it as an ONNX model");
        command.Options.Add(checkpoint);
        command.Options.Add(output);
        command.Options.Add(labelsCsv);
        command.Options.Add(profile);
        command.Options.Add(precision);
        command.SetAction(parseResult => Guard(() =>
        {
            var watch = Stopwatch.StartNew();
            var source = HubertCheckpoint.Load(parseResult.GetValue(checkpoint)!);
            var options = new OnnxExportOptions
            {
                LabelCodes = LabelCodesFor(source.LabelCount, parseResult.GetValue(labelsCsv)),
                PreprocessingProfile = parseResult.GetValue(profile)!,
                Precision = ModelPrecisions.Parse(parseResult.GetValue(precision)),
            };
            var descriptor = HubertOnnxExporter.Export(source, parseResult.GetValue(output)!, options);
            Console.WriteLine($"exported {parseResult.GetValue(output)} in {watch.Elapsed.TotalSeconds:F1} s");
            PrintDescriptor(descriptor);
            return 0;
        }));
        return command;
    }

    private static Command BuildRandom()
    {
        var size = new Option<string>("--size") { Description = "small, base or large", Required = true };
        size.AcceptOnlyFromAmong("small", "base", "large");
        var labels = new Option<int>("--labels") { Description = "Outputs of a classifier head (164: Cardio-Learning); 0 for none" };
        var seed = new Option<int>("--seed") { Description = "Random seed", DefaultValueFactory = _ => 1234 };
        var output = new Option<string>("--out") { Description = "ONNX file to write", Required = true };
        var labelsCsv = new Option<string?>("--labels-csv") { Description = "Label list for the head; default: ../shared/labels/cardio-learning-164.csv for 164 outputs" };
        var precision = PrecisionOption();
        var command = new Command("random", "Write a random-weight (untrained) model of a published size");
        command.Options.Add(size);
        command.Options.Add(labels);
        command.Options.Add(seed);
        command.Options.Add(output);
        command.Options.Add(labelsCsv);
        command.Options.Add(precision);
        command.SetAction(parseResult => Guard(() =>
        {
            var labelCount = parseResult.GetValue(labels);
            if (labelCount < 0)
            {
                throw new ArgumentException("--labels must be 0 or positive");
            }

            var watch = Stopwatch.StartNew();
            var checkpoint = RandomModelFactory.CreateForSize(parseResult.GetValue(size)!, labelCount, parseResult.GetValue(seed));
            var options = new OnnxExportOptions
            {
                LabelCodes = LabelCodesFor(labelCount, parseResult.GetValue(labelsCsv)),
                Precision = ModelPrecisions.Parse(parseResult.GetValue(precision)),
            };
            var descriptor = HubertOnnxExporter.Export(checkpoint, parseResult.GetValue(output)!, options);
            Console.WriteLine($"wrote {parseResult.GetValue(output)} in {watch.Elapsed.TotalSeconds:F1} s");
            PrintDescriptor(descriptor);
            return 0;
        }));
        return command;
    }

    private static Command BuildInfo()
    {
        var file = new Argument<string>("file") { Description = "ONNX model exported by hubert-ecg" };
        var command = new Command("info", "Show a model's architecture, parameters, labels, ids and untrained flag");
        command.Arguments.Add(file);
        command.SetAction(parseResult => Guard(() =>
        {
            var path = parseResult.GetValue(file)!;
            var metadata = OnnxModelMetadata.Read(path);
            var descriptor = OnnxModelMetadata.ReadDescriptor(path);
            PrintDescriptor(descriptor);
            if (metadata.TryGetValue(OnnxModelMetadata.ParameterCountKey, out var parameters))
            {
                Console.WriteLine($"parameters: {long.Parse(parameters, CultureInfo.InvariantCulture):N0}");
            }

            if (metadata.TryGetValue(OnnxModelMetadata.FramesKey, out var frames))
            {
                Console.WriteLine($"frames per window: {frames}");
            }

            Console.WriteLine($"file size: {new FileInfo(path).Length:N0} bytes");
            Console.WriteLine($"architecture: {descriptor.ArchitectureJson}");
            return 0;
        }));
        return command;
    }

    private static Command BuildRun()
    {
        var model = new Option<string>("--model") { Description = "ONNX model", Required = true };
        var input = new Option<string>("--input") { Description = "float32 .npy of shape (B, 6000)", Required = true };
        var output = new Option<string>("--out") { Description = "Folder for embedding.npy, logits.npy, probabilities.npy, last_hidden_state.npy", Required = true };
        var hiddenStates = new Option<bool>("--hidden-states") { Description = "Also write last_hidden_state.npy (B, frames, hidden)" };
        var threads = new Option<int>("--threads") { Description = "ONNX Runtime intra-op threads (0: default)" };
        var provider = new Option<string>("--provider") { Description = "cpu or cuda (CUDA settings from Workers:Cuda, e.g. --set Workers:Cuda:UseTf32=true)", DefaultValueFactory = _ => "cpu" };
        provider.AcceptOnlyFromAmong("cpu", "cuda");
        var device = new Option<int>("--device") { Description = "CUDA device ordinal" };
        var ioBinding = new Option<string>("--io-binding")
        {
            Description = "off: one plain run with every output; on: score the way workers do (fixed-shape padded batches through I/O binding, CUDA graphs when Workers:Cuda:EnableCudaGraph) and write embedding.npy and probabilities.npy",
            DefaultValueFactory = _ => "off",
        };
        ioBinding.AcceptOnlyFromAmong("on", "off");
        var bindingMemory = new Option<string>("--io-binding-memory")
        {
            Description = "with --io-binding on: device (the provider's memory, copies by ONNX Runtime), host, or auto (device for cuda, host for cpu)",
            DefaultValueFactory = _ => "auto",
        };
        bindingMemory.AcceptOnlyFromAmong("device", "host", "auto");
        var repeat = new Option<int>("--repeat")
        {
            Description = "with --io-binding on: score the batch this many times and fail unless every time gives the first time's outputs bit for bit (a CUDA graph is captured on the first and replayed after)",
            DefaultValueFactory = _ => 1,
        };
        var command = new Command("run", "Run a model on a batch of preprocessed windows and write its outputs as .npy");
        command.Options.Add(ioBinding);
        command.Options.Add(bindingMemory);
        command.Options.Add(repeat);
        command.Options.Add(model);
        command.Options.Add(input);
        command.Options.Add(output);
        command.Options.Add(hiddenStates);
        command.Options.Add(threads);
        command.Options.Add(provider);
        command.Options.Add(device);
        command.SetAction(parseResult => Guard(() =>
        {
            var bound = parseResult.GetValue(ioBinding) == "on";
            if (parseResult.GetValue(repeat) < 1 || (parseResult.GetValue(repeat) > 1 && !bound))
            {
                throw new ArgumentException("--repeat must be at least 1, and more than 1 only with --io-binding on");
            }

            if (bound && parseResult.GetValue(hiddenStates))
            {
                throw new ArgumentException("--hidden-states needs the plain run (--io-binding off): scoring binds the embedding and probabilities only");
            }

            var inputPath = parseResult.GetValue(input)!;
            var array = Npy.Read(inputPath);
            if (array.DType != NpyDType.Float32 || array.Shape.Length != 2 || array.Shape[1] != IEcgScorer.WindowLength || array.Shape[0] < 1)
            {
                throw new InvalidDataException($"{inputPath}: expected float32 of shape (B, {IEcgScorer.WindowLength}), got {array.DType} ({string.Join(", ", array.Shape)})");
            }

            var batch = array.Shape[0];
            var options = new ScorerOptions
            {
                IntraOpThreads = parseResult.GetValue(threads),
                Provider = parseResult.GetValue(provider) == "cuda" ? ExecutionProviderKind.Cuda : ExecutionProviderKind.Cpu,
                Cuda = CudaConfiguration.For(Cli.Configuration(parseResult), parseResult.GetValue(device)),
                IoBinding = bound,
                BindingMemory = parseResult.GetValue(bindingMemory) switch { "device" => BoundMemory.Device, "host" => BoundMemory.Host, _ => null },
            };
            using var scorer = new OnnxEcgScorer(parseResult.GetValue(model)!, options);
            var watch = Stopwatch.StartNew();
            var result = options.UsesIoBinding
                ? ScoreRepeatedly(scorer, array.ToSingle(), batch, parseResult.GetValue(repeat))
                : scorer.Run(array.ToSingle(), batch, parseResult.GetValue(hiddenStates));
            var seconds = watch.Elapsed.TotalSeconds;
            var outDir = parseResult.GetValue(output)!;
            Directory.CreateDirectory(outDir);
            Npy.WriteFloat32(Path.Combine(outDir, "embedding.npy"), result.Embedding, batch, result.HiddenSize);
            if (result.Logits is not null)
            {
                Npy.WriteFloat32(Path.Combine(outDir, "logits.npy"), result.Logits, batch, result.LabelCount);
            }

            if (result.Probabilities is not null)
            {
                Npy.WriteFloat32(Path.Combine(outDir, "probabilities.npy"), result.Probabilities, batch, result.LabelCount);
            }

            if (result.LastHiddenState is not null)
            {
                Npy.WriteFloat32(Path.Combine(outDir, "last_hidden_state.npy"), result.LastHiddenState, batch, result.Frames, result.HiddenSize);
            }

            Console.WriteLine($"model {scorer.Model.Name} ({scorer.Model.ModelId}){(scorer.Model.Untrained ? " [untrained]" : string.Empty)}");
            Console.WriteLine($"ran {batch} windows on {options.Provider} in {seconds:F2} s; outputs in {outDir}");
            if (options.UsesIoBinding)
            {
                Console.WriteLine($"io binding: {scorer.BindingDescription}; {parseResult.GetValue(repeat)} identical run(s)");
            }

            return 0;
        }));
        return command;
    }

    // Scores the batch `repeat` times through the worker path; every time must give the first time's outputs exactly.
    private static ModelOutputs ScoreRepeatedly(OnnxEcgScorer scorer, float[] windows, int batch, int repeat)
    {
        var labels = scorer.Model.LabelCount;
        var first = (E: new float[batch * scorer.Model.HiddenSize], P: new float[batch * labels]);
        scorer.Score(windows, batch, first.E, first.P);
        for (var time = 2; time <= repeat; time++)
        {
            var again = (E: new float[first.E.Length], P: new float[first.P.Length]);
            scorer.Score(windows, batch, again.E, again.P);
            if (!first.E.AsSpan().SequenceEqual(again.E) || !first.P.AsSpan().SequenceEqual(again.P))
            {
                throw new InvalidOperationException($"scoring time {time} of {repeat} gave other outputs than time 1 ({scorer.BindingDescription})");
            }
        }

        return new ModelOutputs(batch, scorer.FramesPerWindow, scorer.Model.HiddenSize, labels, first.E, null, labels > 0 ? first.P : null, null);
    }

    /// <summary><c>--precision fp32|fp16</c> of an export.</summary>
    internal static Option<string> PrecisionOption()
    {
        var option = new Option<string>("--precision")
        {
            Description = "fp32, or fp16: weights and matrix products in fp16; inputs, outputs, norms, softmax and the sigmoid stay fp32",
            DefaultValueFactory = _ => "fp32",
        };
        option.AcceptOnlyFromAmong([.. ModelPrecisions.Names]);
        return option;
    }

    private static void PrintDescriptor(ModelDescriptor d)
    {
        Console.WriteLine($"name: {d.Name}");
        Console.WriteLine($"model id: {d.ModelId}");
        Console.WriteLine($"source: {d.SourceHash}");
        Console.WriteLine($"untrained: {(d.Untrained ? "yes (random weights)" : "no")}");
        Console.WriteLine($"precision: {ModelPrecisions.Name(d.Precision)}");
        Console.WriteLine($"hidden size: {d.HiddenSize}");
        Console.WriteLine($"preprocessing profile: {d.PreprocessingProfile}");
        Console.WriteLine(d.LabelCount > 0
            ? $"labels: {d.LabelCount} ({string.Join(", ", d.LabelCodes.Take(8))}{(d.LabelCount > 8 ? ", ..." : string.Empty)})"
            : "labels: none (embeddings only)");
    }
}
