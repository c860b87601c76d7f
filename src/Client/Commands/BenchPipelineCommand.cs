using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Azure.Storage.Blobs;
using HubertEcg.Grains;
using HubertEcg.Inference.Ecg.Synthetic;
using HubertEcg.Inference.Formats;
using HubertEcg.Inference.Formats.Wfdb;
using HubertEcg.Inference.Model;
using HubertEcg.Inference.Preprocessing;
using HubertEcg.Storage;
using HubertEcg.Worker;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace HubertEcg.Client.Commands;

/// <summary>
/// <c>hubert-ecg bench pipeline</c>: one scoring worker end to end (blob download from the configured store, decoding
/// through the format registry, preprocessing, batching, binary COPY into Postgres) with a scorer that returns at once
/// (<see cref="NullScorer"/>), so that its records per second are the ceiling the CPU side puts on any accelerator. The
/// worker is the silo's own (<see cref="ScoringWorker"/> and its stages) with the real blob, decoder, preprocessing and
/// result adapters; only the lease port (a fixed list of shards planned from the input) and the scorer are the
/// benchmark's. Results go to a scratch database with the project's schema on the configured Postgres server, dropped
/// afterwards unless <c>--keep-database</c>. Input: a synthetic cohort it uploads to a scratch container (and deletes),
/// or blobs already under <c>--input container/prefix</c>.
/// </summary>
public static class BenchPipelineCommand
{
    private const int DefaultRecords = 2000;

    private static readonly (PipelineStage Stage, string Name)[] Stages =
    [
        (PipelineStage.Download, "download"),
        (PipelineStage.Decode, "decode"),
        (PipelineStage.Preprocess, "preprocess"),
        (PipelineStage.Batch, "batch"),
        (PipelineStage.Score, "score(null)"),
        (PipelineStage.Aggregate, "aggregate"),
        (PipelineStage.Write, "write"),
    ];

    private static readonly (string Gauge, string Name)[] Queues =
    [
        (ScoringMetrics.QueueShards, "shards downloaded, waiting"),
        (ScoringMetrics.QueueRecords, "records waiting to be read and preprocessed"),
        (ScoringMetrics.QueueWindows, "windows waiting for the model"),
        (ScoringMetrics.QueueRows, "rows waiting to be written"),
    ];

    public static Command Build()
    {
        var records = new Option<int?>("--records")
        {
            Description = $"Records of the synthetic cohort to upload (default {DefaultRecords}); with --input, at most this many single records of the prefix (default all)",
        };
        var cohort = new Option<string>("--cohort")
        {
            Description = "Synthetic cohort: wfdb16 (10 s, 500 Hz, WFDB format 16, as `bench preprocess`) or mixed (every format of `cohort synth`, with its corrupt records)",
            DefaultValueFactory = _ => "wfdb16",
        };
        var input = new Option<string?>("--input") { Description = "Score the blobs already under <container>/<prefix> instead of uploading a cohort" };
        var threads = new Option<int>("--preprocess-threads") { Description = "Threads reading and preprocessing records (Workers:PreprocessThreads)", DefaultValueFactory = _ => 1 };
        var writers = new Option<int>("--writers") { Description = "Score-row writes in flight at once (Workers:Writers)", DefaultValueFactory = _ => 1 };
        var batch = new Option<int>("--batch") { Description = "Windows per model call", DefaultValueFactory = _ => 32 };
        var shardSize = new Option<int>("--shard-size") { Description = "Single records per shard", DefaultValueFactory = _ => 100 };
        var model = new Option<FileInfo?>("--model") { Description = "ONNX model whose metadata gives the id, hidden size, labels and profile (it is not run)" };
        var hidden = new Option<int>("--hidden") { Description = "Embedding width without --model (HuBERT-ECG small: 512)", DefaultValueFactory = _ => 512 };
        var labels = new Option<int>("--labels") { Description = "Probabilities per record without --model", DefaultValueFactory = _ => LabelCatalog.CardioLearningCount };
        var keep = new Option<bool>("--keep-database") { Description = "Keep the scratch database (its name is printed) instead of dropping it" };
        var command = new Command("pipeline", "Records/s of one worker end to end (download, decode, preprocess, batch, write to Postgres) with a null scorer");
        foreach (var option in new Option[] { records, cohort, input, threads, writers, batch, shardSize, model, hidden, labels, keep })
        {
            command.Options.Add(option);
        }

        command.SetAction(async (parseResult, cancellationToken) =>
        {
            var settings = new Settings(
                parseResult.GetValue(records),
                parseResult.GetValue(cohort)!,
                parseResult.GetValue(input),
                parseResult.GetValue(threads),
                parseResult.GetValue(writers),
                parseResult.GetValue(batch),
                parseResult.GetValue(shardSize),
                parseResult.GetValue(keep));
            if (settings.Problem() is { } problem)
            {
                Console.Error.WriteLine($"error: {problem}");
                return 1;
            }

            var descriptor = parseResult.GetValue(model) is { } file
                ? ModelDescriptor.FromOnnxFile(file.FullName)
                : NullDescriptor(parseResult.GetValue(hidden), parseResult.GetValue(labels));
            if (RunSettingsRules.CheckModel(descriptor.HiddenSize, descriptor.LabelCount) is { Count: > 0 } modelProblems)
            {
                Console.Error.WriteLine($"error: {RunSettingsRules.Describe("--hidden and --labels", modelProblems)}");
                return 1;
            }

            var configuration = Cli.Configuration(parseResult);
            return await RunAsync(configuration, settings, descriptor, cancellationToken);
        });
        return command;
    }

    private sealed record Settings(int? Records, string Cohort, string? Input, int Threads, int Writers, int Batch, int ShardSize, bool KeepDatabase)
    {
        public string? Problem()
        {
            if (Records is < 0 || (Input is null && Records is 0))
            {
                return "--records must be positive";
            }

            if (Threads < 1 || Writers < 1)
            {
                return "--preprocess-threads and --writers must be positive";
            }

            if (Cohort is not ("wfdb16" or "mixed"))
            {
                return $"--cohort must be wfdb16 or mixed, not '{Cohort}'";
            }

            if (Cohort == "mixed" && Input is null && Records is < 4)
            {
                return "--cohort mixed needs --records 4 or more";
            }

            return RunSettingsRules.CheckOptions(Batch, 6, ShardSize, 3600, 1) is { Count: > 0 } problems
                ? RunSettingsRules.Describe("options", problems)
                : null;
        }
    }

    /// <summary>What was planned from the input: the leases, and the records known before reading (null with containers of unknown size).</summary>
    private sealed record Plan(List<ShardLease> Shards, int SingleRecords, int Containers);

    private static ModelDescriptor NullDescriptor(int hidden, int labels)
    {
        var id = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes($"hubert-ecg bench pipeline null scorer, hidden {hidden}, labels {labels}")));
        return new ModelDescriptor(
            id, "null scorer", id, hidden, Enumerable.Range(0, labels).Select(i => $"L{i}").ToArray(), Untrained: true, "{}", PreprocessingProfiles.Names[0]);
    }

    private static async Task<int> RunAsync(IConfiguration configuration, Settings settings, ModelDescriptor descriptor, CancellationToken cancellationToken)
    {
        var server = configuration.PostgresConnections();
        var blobs = new BlobStore(configuration.BlobService());
        var options = configuration.GetSection(WorkerOptions.SectionName).Get<WorkerOptions>() ?? new WorkerOptions();
        options.PreprocessThreads = settings.Threads;
        options.Writers = settings.Writers;
        if (options.Problems() is { Count: > 0 } optionProblems)
        {
            Console.Error.WriteLine($"error: {string.Join("; ", optionProblems)}");
            return 1;
        }

        var formats = FormatRegistry.Create(options.Formats);
        var scratch = "bench_pipeline_" + Guid.NewGuid().ToString("N");
        await using (var admin = server.CreateDataSource())
        {
            await using var create = admin.CreateCommand($"create database \"{scratch}\"");
            await create.ExecuteNonQueryAsync(cancellationToken);
        }

        BlobContainerClient? uploaded = null;
        try
        {
            await using var db = server.CreateDataSource(b =>
            {
                b.Database = scratch;
                b.MaxPoolSize = settings.Writers + 8;
            });
            await SchemaMigrator.ApplyAsync(db, cancellationToken);

            // The input: a cohort uploaded now, or what is already under --input.
            string containerName, prefix, described;
            int? expected = null;
            if (settings.Input is { } given)
            {
                (containerName, prefix) = RunSubmitCommand.SplitInput(given);
                described = $"{containerName}/{prefix}";
            }
            else
            {
                containerName = "bench-pipeline-" + Guid.NewGuid().ToString("N")[..12];
                prefix = "";
                uploaded = blobs.Service.GetBlobContainerClient(containerName);
                await uploaded.CreateAsync(cancellationToken: cancellationToken);
                (expected, described) = await UploadAsync(uploaded, settings, cancellationToken);
            }

            var runId = Guid.NewGuid();
            var store = new RunStore(db);
            await store.RegisterModelAsync(
                new ModelRecord(descriptor.ModelId, descriptor.Name, descriptor.SourceHash, descriptor.ArchitectureJson, descriptor.HiddenSize, descriptor.LabelCodes, descriptor.Untrained, descriptor.PreprocessingProfile, ModelPrecisions.Name(descriptor.Precision)),
                cancellationToken);
            await store.CreateRunAsync(
                new NewRun(runId, "bench pipeline", containerName, prefix, descriptor.ModelId, "null-scorer", descriptor.PreprocessingProfile, Aggregation.Mean, 6, settings.Batch, settings.ShardSize, 1, 3600),
                cancellationToken);
            var plan = await PlanAsync(blobs, formats, containerName, prefix, runId, descriptor, settings, cancellationToken);
            if (plan.Shards.Count == 0)
            {
                Console.Error.WriteLine($"error: no records under {containerName}/{prefix}");
                return 1;
            }

            var clock = new StageClock();
            using var meters = new ServiceCollection().AddMetrics().BuildServiceProvider();
            var metrics = new ScoringMetrics(meters.GetRequiredService<System.Diagnostics.Metrics.IMeterFactory>());
            var leases = new BenchLeasePort(plan.Shards);
            var scores = new CurrentScores(db);
            var ports = new WorkerPorts(
                leases,
                new TimedBlobSource(blobs, clock),
                new TimedSink(new ResultWriter(db, embeddingPrecision: configuration.Postgres().ParsedEmbeddingPrecision()), clock),
                scores,
                scores,
                new TimedDecoder(new RecordDecoder(formats), clock),
                new TimedPreparer(new PreprocessingWindowPreparer(), clock),
                new NullScorer(descriptor, clock),
                metrics,
                clock);
            using var logs = LoggerFactory.Create(b => b
                .AddSimpleConsole(o => o.SingleLine = true)
                .AddFilter(level => level >= LogLevel.Warning)
                .Services.Configure<Microsoft.Extensions.Logging.Console.ConsoleLoggerOptions>(o => o.LogToStandardErrorThreshold = LogLevel.Trace));

            // As on a GPU node: one device, so one model caller unless Workers:ConcurrentBatches says more.
            var device = new WorkerDevice(0);
            var worker = new ScoringWorker("bench-pipeline", device, ports, formats, options, logs.CreateLogger("hubert-ecg bench pipeline"));
            using var sampler = new QueueSampler(metrics, TimeSpan.FromMilliseconds(50));
            using var stopping = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            var cpuBefore = Process.GetCurrentProcess().TotalProcessorTime;
            var stopwatch = Stopwatch.StartNew();
            var working = Task.Run(() => worker.RunAsync(stopping.Token), CancellationToken.None);
            try
            {
                await leases.AllEnded.WaitAsync(cancellationToken);
            }
            finally
            {
                stopwatch.Stop();
                await stopping.CancelAsync();
                await working;
            }

            var cpu = Process.GetCurrentProcess().TotalProcessorTime - cpuBefore;
            var depths = await sampler.StopAsync();
            if (leases.Failures is { Count: > 0 } failures)
            {
                Console.Error.WriteLine($"error: {failures.Count} shard(s) failed: {string.Join("; ", failures)}");
                return 1;
            }

            var (rows, quarantineRows) = await CountRowsAsync(db, runId, cancellationToken);
            var counted = leases.RecordsDone + leases.RecordsQuarantined;
            if (rows != leases.RecordsDone || quarantineRows != leases.RecordsQuarantined || (expected is { } n && counted != n))
            {
                Console.Error.WriteLine(
                    $"error: the worker reported {leases.RecordsDone} scored and {leases.RecordsQuarantined} quarantined; Postgres holds {rows} score and {quarantineRows} quarantine rows of the run{(expected is { } e ? $"; the input has {e} records" : "")}");
                return 1;
            }

            Print(settings, descriptor, options, device, described, plan, counted, leases, rows, quarantineRows, stopwatch.Elapsed, cpu, clock, depths);
            if (settings.KeepDatabase)
            {
                Console.WriteLine($"database={scratch}");
                Console.WriteLine($"run_id={runId}");
            }

            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"records_per_second={counted / stopwatch.Elapsed.TotalSeconds:F1}"));
            return 0;
        }
        finally
        {
            if (uploaded is not null)
            {
                await uploaded.DeleteIfExistsAsync(cancellationToken: CancellationToken.None);
            }

            if (!settings.KeepDatabase)
            {
                NpgsqlConnection.ClearAllPools();
                await using var admin = server.CreateDataSource();
                await using var drop = admin.CreateCommand($"drop database if exists \"{scratch}\" with (force)");
                await drop.ExecuteNonQueryAsync(CancellationToken.None);
            }
        }
    }

    /// <summary>Uploads the synthetic cohort; returns how many records it holds and a description.</summary>
    private static async Task<(int Records, string Described)> UploadAsync(BlobContainerClient container, Settings settings, CancellationToken cancellationToken)
    {
        var total = settings.Records ?? DefaultRecords;
        if (settings.Cohort == "mixed")
        {
            var summary = await CohortCommands.UploadAsync(container, "", total, 10, 20261124, cancellationToken);
            return (summary.Good + summary.Corrupt.Count, $"synthetic mixed cohort of `cohort synth` ({summary.Good} good records, {summary.Corrupt.Count} corrupt)");
        }

        // 10 s, 500 Hz, WFDB format 16 at 1000 adu/mV: the default case of `bench preprocess`. A few dozen distinct
        // signals, each record written with its own name.
        var signals = Enumerable.Range(0, Math.Min(total, 64)).Select(i => SyntheticEcg.Generate($"s{i}", 20261206 + i, 500, 10)).ToArray();
        await Parallel.ForEachAsync(
            Enumerable.Range(0, total),
            new ParallelOptions { MaxDegreeOfParallelism = 8, CancellationToken = cancellationToken },
            async (i, ct) =>
            {
                var name = $"r{i:D7}";
                foreach (var (file, bytes) in WfdbWriter.Write(signals[i % signals.Length], name, 16, 1000))
                {
                    await container.GetBlobClient($"wfdb500/{file}").UploadAsync(new BinaryData(bytes), overwrite: true, ct);
                }
            });
        return (total, $"synthetic cohort of {total} records (10 s, 500 Hz, WFDB format 16)");
    }

    /// <summary>
    /// Plans shards as a run's coordinator would: every container blob (HDF5 shard, archive) is one shard; single-record
    /// files are grouped into records by the format registry and cut into shards of <see cref="Settings.ShardSize"/>.
    /// </summary>
    private static async Task<Plan> PlanAsync(
        BlobStore blobs, FormatRegistry formats, string container, string prefix, Guid runId, ModelDescriptor descriptor, Settings settings, CancellationToken cancellationToken)
    {
        var names = new List<string>();
        string? token = null;
        do
        {
            var page = await blobs.ListPageAsync(container, prefix, token, 5000, cancellationToken);
            names.AddRange(page.Items.Select(b => b.Name).Where(n => !n.EndsWith('/')));
            token = page.ContinuationToken;
        }
        while (token is not null);

        var containers = names.Where(formats.IsContainer).ToList();
        var records = formats.Group(names).Where(formats.IsRecord).ToList();
        if (settings.Input is not null && settings.Records is { } limit and > 0)
        {
            records = records.Take(limit).ToList();
        }

        var scoring = new RunScoringSettings(descriptor.ModelId, "null-scorer", descriptor.PreprocessingProfile, Aggregation.Mean, 6, settings.Batch);
        var shards = new List<ShardLease>();
        ShardLease Lease(ShardKind kind, IReadOnlyList<string> files) =>
            new(runId, shards.Count, 1, kind, container, files, DateTime.UtcNow.AddDays(1), TimeSpan.FromHours(1), scoring, FromManifest: false);
        foreach (var blob in containers)
        {
            shards.Add(Lease(ShardKind.Container, [blob]));
        }

        foreach (var chunk in records.Chunk(settings.ShardSize))
        {
            shards.Add(Lease(ShardKind.Records, chunk.SelectMany(g => g.Files).ToList()));
        }

        return new Plan(shards, records.Count, containers.Count);
    }

    private static async Task<(long Scores, long Quarantine)> CountRowsAsync(NpgsqlDataSource db, Guid runId, CancellationToken cancellationToken)
    {
        await using var command = db.CreateCommand("select (select count(*) from scores where run_id = $1), (select count(*) from quarantine where run_id = $1)");
        command.Parameters.AddWithValue(runId);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        await reader.ReadAsync(cancellationToken);
        return (reader.GetInt64(0), reader.GetInt64(1));
    }

    private static void Print(
        Settings settings, ModelDescriptor descriptor, WorkerOptions options, WorkerDevice device, string described, Plan plan, long counted, BenchLeasePort leases,
        long rows, long quarantineRows, TimeSpan elapsed, TimeSpan cpu, StageClock clock, IReadOnlyDictionary<string, (double Mean, long Max, long Samples)> depths)
    {
        var c = CultureInfo.InvariantCulture;
        Console.WriteLine($"input: {described}; {plan.SingleRecords} single records and {plan.Containers} container blob(s) in {plan.Shards.Count} shards");
        Console.WriteLine(string.Create(
            c,
            $"worker: {settings.Threads} preprocessing thread(s), {settings.Writers} writer(s), batches of {settings.Batch} windows, {options.EffectiveConcurrentBatches(device)} model caller(s), " +
            $"null scorer ({descriptor.HiddenSize}-float embedding, {descriptor.LabelCount} probabilities), profile {descriptor.PreprocessingProfile}"));
        Console.WriteLine(string.Create(
            c,
            $"records: {counted} ({leases.RecordsDone} scored, {leases.RecordsQuarantined} quarantined), {clock.Read(PipelineStage.Score).Items} windows; rows in Postgres: {rows} scores, {quarantineRows} quarantine; {elapsed.TotalSeconds:F2} s"));
        Console.WriteLine(string.Create(c, $"{"stage",-12} {"calls",8} {"items",8} {"busy s",8} {"cpu s",8} {"cpu ms/record",14}"));
        var attributed = TimeSpan.Zero;
        foreach (var (stage, name) in Stages)
        {
            var time = clock.Read(stage);
            var timed = stage is not (PipelineStage.Download or PipelineStage.Write);
            attributed += time.Cpu;
            var cpuText = timed ? time.Cpu.TotalSeconds.ToString("F3", c) : "-";
            var perRecord = timed && counted > 0 ? (time.Cpu.TotalMilliseconds / counted).ToString("F4", c) : "-";
            Console.WriteLine(string.Create(c, $"{name,-12} {time.Calls,8} {time.Items,8} {time.Busy.TotalSeconds,8:F3} {cpuText,8} {perRecord,14}"));
        }

        var clockNote = ThreadCpuTime.IsSupported ? "" : "; no per-thread CPU clock on this system: cpu s is wall-clock time";
        Console.WriteLine(string.Create(
            c,
            $"process cpu: {cpu.TotalSeconds:F2} s ({cpu.TotalSeconds / elapsed.TotalSeconds:F2} cores, {cpu.TotalMilliseconds / Math.Max(1, counted):F3} ms/record); " +
            $"not in a stage above: {(cpu - attributed).TotalSeconds:F2} s (the client side of downloads and writes, channels, GC){clockNote}"));
        Console.WriteLine("queue depths (sampled every 50 ms, mean / max):");
        foreach (var (gauge, name) in Queues)
        {
            var (mean, max, samples) = depths.TryGetValue(gauge, out var d) ? d : (0, 0, 0);
            Console.WriteLine(string.Create(c, $"  {name}: {mean:F1} / {max} ({samples} samples)"));
        }
    }
}
