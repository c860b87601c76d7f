using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using HubertEcg.Inference.Model;
using HubertEcg.Inference.Onnx;

namespace HubertEcg.Client.Commands;

/// <summary>
/// <c>hubert-ecg bench model</c>: model throughput through <see cref="OnnxEcgScorer.Score"/>; last line <c>ecg_per_second=N</c>.
/// CUDA runs take their provider settings from <c>Workers:Cuda</c> (<see cref="CudaConfiguration"/>).
/// </summary>
public static class BenchModelCommand
{
    public static Command Build()
    {
        var model = new Option<string?>("--model") { Description = "ONNX model to benchmark" };
        var size = new Option<string?>("--size") { Description = "Benchmark a random-weight model of this size instead (small, base, large)" };
        size.AcceptOnlyFromAmong("small", "base", "large");
        var labels = new Option<int>("--labels") { Description = "Head outputs of the random model (--size only)", DefaultValueFactory = _ => LabelCatalog.CardioLearningCount };
        var batch = new Option<int>("--batch") { Description = "Windows per run", DefaultValueFactory = _ => 16 };
        var seconds = new Option<double>("--seconds") { Description = "How long to measure (after one warm-up run)", DefaultValueFactory = _ => 10 };
        var threads = new Option<int>("--threads") { Description = "ONNX Runtime intra-op threads (0: ONNX Runtime's default)" };
        var provider = new Option<string>("--provider") { Description = "cpu or cuda", DefaultValueFactory = _ => "cpu" };
        provider.AcceptOnlyFromAmong("cpu", "cuda");
        var device = new Option<int>("--device") { Description = "CUDA device ordinal" };
        var parallel = new Option<int>("--parallel") { Description = "Concurrent callers sharing the session, each scoring its own batches", DefaultValueFactory = _ => 1 };
        var noSpin = new Option<bool>("--no-spin") { Description = "Idle ONNX Runtime threads sleep instead of spinning (for shared machines)" };
        var profile = new Option<string?>("--profile") { Description = "Write an ONNX Runtime profile trace with this path prefix and summarise it" };
        var precision = new Option<string?>("--precision")
        {
            Description = "fp32 or fp16: the random model's precision (--size; default fp32); with --model, the precision the file must have",
        };
        precision.AcceptOnlyFromAmong([.. ModelPrecisions.Names]);
        var ioBinding = new Option<string>("--io-binding")
        {
            Description = "on: fixed-shape batches through ONNX Runtime I/O binding; off: plain runs; auto: on for cuda, off for cpu",
            DefaultValueFactory = _ => "auto",
        };
        ioBinding.AcceptOnlyFromAmong("on", "off", "auto");
        var bindingMemory = new Option<string>("--io-binding-memory")
        {
            Description = "where bound tensors live: device (the provider's memory, batches copied in and out by ONNX Runtime; needed for CUDA graphs), host (pinned host buffers), auto: device for cuda, host for cpu",
            DefaultValueFactory = _ => "auto",
        };
        bindingMemory.AcceptOnlyFromAmong("device", "host", "auto");
        var command = new Command("model", "Measure model throughput (ECG windows per second)");
        foreach (var option in new Option[] { model, size, labels, batch, seconds, threads, provider, device, parallel, noSpin, profile, precision, ioBinding, bindingMemory })
        {
            command.Options.Add(option);
        }

        command.SetAction(parseResult => ModelCommands.Guard(() =>
        {
            var modelPath = parseResult.GetValue(model);
            var sizeName = parseResult.GetValue(size);
            if ((modelPath is null) == (sizeName is null))
            {
                throw new ArgumentException("give exactly one of --model FILE.onnx or --size small|base|large");
            }

            var batchSize = parseResult.GetValue(batch);
            var duration = parseResult.GetValue(seconds);
            var callers = parseResult.GetValue(parallel);
            if (batchSize < 1 || !(duration > 0) || callers < 1)
            {
                throw new ArgumentException("--batch, --seconds and --parallel must be positive");
            }

            string? temporary = null;
            try
            {
                if (sizeName is not null)
                {
                    temporary = Path.Combine(Path.GetTempPath(), $"hubert-ecg-bench-{sizeName}-{Environment.ProcessId}.onnx");
                    var watch = Stopwatch.StartNew();
                    var exportOptions = new OnnxExportOptions { Precision = ModelPrecisions.Parse(parseResult.GetValue(precision) ?? "fp32") };
                    HubertOnnxExporter.Export(RandomModelFactory.CreateForSize(sizeName, parseResult.GetValue(labels)), temporary, exportOptions);
                    Console.WriteLine($"built random {sizeName} {ModelPrecisions.Name(exportOptions.Precision)} model in {watch.Elapsed.TotalSeconds:F1} s");
                    modelPath = temporary;
                }
                else if (parseResult.GetValue(precision) is { } wanted
                    && OnnxModelMetadata.ReadDescriptor(modelPath!).Precision is var actual && actual != ModelPrecisions.Parse(wanted))
                {
                    throw new ArgumentException($"{modelPath} is an {ModelPrecisions.Name(actual)} model, not {wanted}: export it with --precision {wanted}, or leave --precision out");
                }

                var options = new ScorerOptions
                {
                    IntraOpThreads = parseResult.GetValue(threads),
                    MaxBatch = batchSize,
                    Provider = parseResult.GetValue(provider) == "cuda" ? ExecutionProviderKind.Cuda : ExecutionProviderKind.Cpu,
                    Cuda = CudaConfiguration.For(Cli.Configuration(parseResult), parseResult.GetValue(device)),
                    ProfilePrefix = parseResult.GetValue(profile),
                    AllowSpinning = !parseResult.GetValue(noSpin),
                    IoBinding = parseResult.GetValue(ioBinding) switch { "on" => true, "off" => false, _ => null },
                    BindingMemory = parseResult.GetValue(bindingMemory) switch { "device" => BoundMemory.Device, "host" => BoundMemory.Host, _ => null },
                };
                return Run(modelPath!, options, batchSize, duration, callers);
            }
            finally
            {
                if (temporary is not null)
                {
                    File.Delete(temporary);
                }
            }
        }));
        return command;
    }

    private static int Run(string modelPath, ScorerOptions options, int batchSize, double duration, int callers)
    {
        using var scorer = new OnnxEcgScorer(modelPath, options);
        var windows = new float[batchSize * IEcgScorer.WindowLength];
        var random = new Random(7);
        for (var i = 0; i < windows.Length; i++)
        {
            // Preprocessed windows lie in [-1, 1].
            windows[i] = (float)((random.NextDouble() * 2) - 1);
        }

        var warm = Stopwatch.StartNew();
        scorer.Score(windows, batchSize, new float[batchSize * scorer.Model.HiddenSize], new float[batchSize * scorer.Model.LabelCount]);
        Console.WriteLine($"model: {scorer.Model.Name} ({scorer.Model.ModelId[..12]}), {ModelPrecisions.Name(scorer.Model.Precision)}, hidden {scorer.Model.HiddenSize}, labels {scorer.Model.LabelCount}");
        Console.WriteLine($"io binding: {(options.UsesIoBinding ? $"on, {scorer.BindingDescription}, fixed batch shape {OnnxEcgScorer.BoundShape(batchSize, options.MaxBatch)}" : "off")}");
        Console.WriteLine($"provider: {options.Provider}, intra-op threads: {(options.IntraOpThreads == 0 ? "default" : options.IntraOpThreads.ToString(CultureInfo.InvariantCulture))}, batch: {batchSize}, concurrent callers: {callers}");
        Console.WriteLine($"warm-up run: {warm.Elapsed.TotalMilliseconds:F0} ms");
        if (options.Provider == ExecutionProviderKind.Cuda)
        {
            Console.WriteLine($"cuda: {CudaSummary(options.Cuda)}");
        }

        using var process = Process.GetCurrentProcess();
        var cpuStart = process.TotalProcessorTime;
        var total = Stopwatch.StartNew();

        // Each caller scores its own batch back to back on the shared session (Score is thread-safe).
        var perCaller = new List<double>[callers];
        var threads = new Thread[callers];
        for (var c = 0; c < callers; c++)
        {
            var latencies = perCaller[c] = [];
            threads[c] = new Thread(() =>
            {
                var embeddings = new float[batchSize * scorer.Model.HiddenSize];
                var probabilities = new float[batchSize * scorer.Model.LabelCount];
                while (total.Elapsed.TotalSeconds < duration || latencies.Count < 2)
                {
                    var start = total.Elapsed.TotalMilliseconds;
                    scorer.Score(windows, batchSize, embeddings, probabilities);
                    latencies.Add(total.Elapsed.TotalMilliseconds - start);
                }
            });
            threads[c].Start();
        }

        foreach (var thread in threads)
        {
            thread.Join();
        }

        var elapsed = total.Elapsed.TotalSeconds;
        process.Refresh();
        var cpuSeconds = (process.TotalProcessorTime - cpuStart).TotalSeconds;
        var all = perCaller.SelectMany(l => l).Order().ToList();
        var runs = all.Count;
        Console.WriteLine($"runs: {runs}, median {all[runs / 2]:F1} ms, min {all[0]:F1} ms, max {all[^1]:F1} ms per batch");

        // CPU time shows how much of the machine the run got: on a shared machine, wall-clock throughput drops
        // while the CPU time per window stays put.
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"process cpu: {cpuSeconds:F1} s over {elapsed:F1} s wall ({cpuSeconds / elapsed:F2} cores busy), {cpuSeconds * 1000 / (runs * batchSize):F0} cpu-ms per ecg"));
        if (options.ProfilePrefix is not null)
        {
            var trace = scorer.EndProfiling();
            Console.WriteLine($"profile: {trace}");
            foreach (var line in OrtProfileSummary.Summarise(trace, 15))
            {
                Console.WriteLine(line);
            }
        }

        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"ecg_per_second={runs * batchSize / elapsed:F2}"));
        return 0;
    }

    private static string CudaSummary(CudaProviderSettings cuda) =>
        $"device {cuda.DeviceId}, tf32 {(cuda.UseTf32 ? "on" : "off")}, cuda graph {(cuda.EnableCudaGraph ? "on" : "off")}, cudnn search {cuda.CudnnConvAlgoSearch}";
}
