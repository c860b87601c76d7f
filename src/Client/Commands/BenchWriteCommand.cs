using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Runtime;
using HubertEcg.Storage;
using Npgsql;
using HubertEcg.Grains;
using HubertEcg.Worker;

namespace HubertEcg.Client.Commands;

/// <summary>
/// <c>hubert-ecg bench write [--rows N] [--batch B] [--labels 164] [--embedding 512] [--writers W] [--embedding-precision fp32|fp16] [--warmup-rows N] [--jit-settle S] [--distinct-vectors N]</c>:
/// score rows per second through the workers' result writer (binary COPY straight into scores for new keys, else through staging) into a scratch
/// database created on the configured Postgres server with the project's schema and dropped afterwards. Warm-up rows (another run of the same model)
/// are written first and not timed, at least <c>--warmup-rows</c> and then more until the runtime has compiled no method for <c>--jit-settle</c>
/// seconds, so the timed rows run the runtime's optimised code as a long-running worker does (tiered compilation compiles a hot method again,
/// optimised, only after it has been called many times, and code run once per batch needs many batches for that). Besides the rate it prints the
/// CPU per row of this process and, when the server runs on this machine (its backends' /proc entries readable), of the writers' server backends.
/// </summary>
public static class BenchWriteCommand
{
    public static Command Build()
    {
        var rows = new Option<int>("--rows") { Description = "Score rows to write", DefaultValueFactory = _ => 100_000 };
        var batch = new Option<int>("--batch") { Description = "Rows per write (a worker writes a shard's results in batches)", DefaultValueFactory = _ => 512 };
        var labels = new Option<int>("--labels") { Description = "Probabilities per row", DefaultValueFactory = _ => 164 };
        var embedding = new Option<int>("--embedding") { Description = "Embedding floats per row", DefaultValueFactory = _ => 512 };
        var writers = new Option<int>("--writers") { Description = "Concurrent writers (workers)", DefaultValueFactory = _ => 2 };
        var precision = new Option<string?>("--embedding-precision") { Description = "How rows store the embedding: fp32 or fp16 (default: Postgres:EmbeddingPrecision)" };
        var vectors = new Option<int>("--distinct-vectors") { Description = "Distinct probability and embedding vectors the rows cycle through (64: a batch's label bucket counts have few cells; thousands: as many as uniformly random outputs, the worst case)", DefaultValueFactory = _ => 64 };
        var warmupRows = new Option<int>("--warmup-rows") { Description = "Rows written first and not timed, at the least (0: none)", DefaultValueFactory = _ => 20_000 };
        var settle = new Option<double>("--jit-settle")
        {
            Description = $"After --warmup-rows, go on writing untimed rows until the runtime has compiled no method for this many seconds (at most {MaxSettleSeconds} s more); 0: --warmup-rows alone",
            DefaultValueFactory = _ => 1.0,
        };
        var command = new Command("write", "Postgres write rate of score rows through the result writer");
        command.Options.Add(rows);
        command.Options.Add(batch);
        command.Options.Add(labels);
        command.Options.Add(embedding);
        command.Options.Add(writers);
        command.Options.Add(precision);
        command.Options.Add(warmupRows);
        command.Options.Add(settle);
        command.Options.Add(vectors);
        command.SetAction(async (parseResult, cancellationToken) =>
        {
            var total = parseResult.GetValue(rows);
            var size = parseResult.GetValue(batch);
            var labelCount = parseResult.GetValue(labels);
            var hidden = parseResult.GetValue(embedding);
            var concurrency = parseResult.GetValue(writers);
            var warmup = parseResult.GetValue(warmupRows);
            var settleSeconds = parseResult.GetValue(settle);
            var distinct = parseResult.GetValue(vectors);
            if (total < 1 || size < 1 || labelCount < 1 || hidden < 1 || concurrency < 1 || distinct < 1)
            {
                Console.Error.WriteLine("error: --rows, --batch, --labels, --embedding, --writers and --distinct-vectors must be positive");
                return 1;
            }

            if ((long)distinct * (labelCount + hidden) > 256L * 1024 * 1024)
            {
                Console.Error.WriteLine("error: --distinct-vectors x (--labels + --embedding) must stay under 268,435,456 floats");
                return 1;
            }

            if (warmup < 0)
            {
                Console.Error.WriteLine("error: --warmup-rows must not be negative");
                return 1;
            }

            if (!(settleSeconds >= 0 && settleSeconds <= MaxSettleSeconds))
            {
                Console.Error.WriteLine($"error: --jit-settle must be between 0 and {MaxSettleSeconds} seconds");
                return 1;
            }

            EmbeddingPrecision embeddingPrecision;
            try
            {
                embeddingPrecision = PackedEmbeddings.Parse(parseResult.GetValue(precision) ?? Cli.Configuration(parseResult).Postgres().EmbeddingPrecision);
            }
            catch (ArgumentException e)
            {
                Console.Error.WriteLine($"error: {e.Message}");
                return 1;
            }

            var server = Cli.Configuration(parseResult).PostgresConnections();
            var scratch = "bench_write_" + Guid.NewGuid().ToString("N");
            await using (var admin = server.CreateDataSource())
            {
                await using var create = admin.CreateCommand($"create database \"{scratch}\"");
                await create.ExecuteNonQueryAsync(cancellationToken);
            }

            try
            {
                await using var db = server.CreateDataSource(b =>
                {
                    b.Database = scratch;
                    b.MaxPoolSize = concurrency + 4;
                });
                await SchemaMigrator.ApplyAsync(db, cancellationToken);
                var store = new RunStore(db);
                var modelId = new string('b', 64);
                await store.RegisterModelAsync(
                    new ModelRecord(modelId, "bench", "bench", "{}", hidden, Enumerable.Range(0, labelCount).Select(i => $"L{i}").ToArray(), true, "hubert-ecg-2024"),
                    cancellationToken);
                var warmupRun = Guid.NewGuid();
                var runId = Guid.NewGuid();
                await store.CreateRunAsync(new NewRun(warmupRun, "bench write warm-up", "bench", "", modelId, "bench.onnx", "hubert-ecg-2024", Aggregation.Mean, 6, 32, 100, 3, 60), cancellationToken);
                await store.CreateRunAsync(new NewRun(runId, "bench write", "bench", "", modelId, "bench.onnx", "hubert-ecg-2024", Aggregation.Mean, 6, 32, 100, 3, 60), cancellationToken);

                var random = new Random(1);
                var probabilities = Enumerable.Range(0, distinct).Select(_ => Enumerable.Range(0, labelCount).Select(_ => random.NextSingle()).ToArray()).ToArray();
                var embeddings = Enumerable.Range(0, distinct).Select(_ => Enumerable.Range(0, hidden).Select(_ => random.NextSingle() - 0.5f).ToArray()).ToArray();
                var writer = new ResultWriter(db, embeddingPrecision: embeddingPrecision);

                async Task<long> WriteAsync(Guid run, string prefix, int rowCount)
                {
                    var next = -1;
                    var written = 0L;
                    await Task.WhenAll(Enumerable.Range(0, concurrency).Select(async _ =>
                    {
                        while (true)
                        {
                            var start = Interlocked.Increment(ref next) * (long)size;
                            if (start >= rowCount)
                            {
                                return;
                            }

                            var now = DateTime.UtcNow;
                            var rowsOfBatch = Enumerable.Range((int)start, (int)Math.Min(size, rowCount - start))
                                .Select(i => new ScoreRow(modelId, $"{prefix}/record{i:D9}", run, probabilities[i % distinct], embeddings[i % distinct], 2, $"{prefix}/record{i:D9}.hea", "0x8DC", now))
                                .ToArray();
                            Interlocked.Add(ref written, await writer.WriteScoresAsync(rowsOfBatch, cancellationToken));
                        }
                    }));
                    return written;
                }

                // The warm-up: its rows go to another run of the same model, each round under its own record ids.
                var warmupClock = Stopwatch.StartNew();
                var warmedRows = 0L;
                var rounds = 0;
                if (warmup > 0)
                {
                    warmedRows += await WriteAsync(warmupRun, $"warmup{rounds++}", warmup);
                }

                if (settleSeconds > 0)
                {
                    // A round of a few batches per writer, so the check comes often; the runtime compiles on a background thread.
                    var roundRows = (int)Math.Min(int.MaxValue, 4L * size * concurrency);
                    var compiled = JitInfo.GetCompiledMethodCount();
                    var quietSince = warmupClock.Elapsed.TotalSeconds;
                    var settleStart = quietSince;
                    while (warmupClock.Elapsed.TotalSeconds - quietSince < settleSeconds && warmupClock.Elapsed.TotalSeconds - settleStart < MaxSettleSeconds)
                    {
                        warmedRows += await WriteAsync(warmupRun, $"warmup{rounds++}", roundRows);
                        var now = JitInfo.GetCompiledMethodCount();
                        if (now != compiled)
                        {
                            compiled = now;
                            quietSince = warmupClock.Elapsed.TotalSeconds;
                        }
                    }
                }

                warmupClock.Stop();
                var compiledBefore = JitInfo.GetCompiledMethodCount();

                var serverBefore = await BackendCpu.ReadAsync(db, cancellationToken);
                var clientBefore = Process.GetCurrentProcess().TotalProcessorTime;
                var stopwatch = Stopwatch.StartNew();
                var written = await WriteAsync(runId, "bench", total);
                stopwatch.Stop();
                var clientCpu = Process.GetCurrentProcess().TotalProcessorTime - clientBefore;
                var compiledWhileMeasuring = JitInfo.GetCompiledMethodCount() - compiledBefore;
                var serverAfter = await BackendCpu.ReadAsync(db, cancellationToken);

                await using var count = db.CreateCommand("select count(*) from scores where run_id = @run");
                count.Parameters.AddWithValue("run", runId);
                var stored = (long)(await count.ExecuteScalarAsync(cancellationToken))!;
                if (stored != total || written != total)
                {
                    Console.Error.WriteLine($"error: wrote {written} rows, {stored} stored, expected {total}");
                    return 1;
                }

                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"rows: {total} ({labelCount} probabilities + {hidden}-float embedding each, stored {PackedEmbeddings.Name(embeddingPrecision)}), batches of {size}, {concurrency} writer(s), {stopwatch.Elapsed.TotalSeconds:F2} s, {distinct} distinct vectors"));
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"warm-up: {warmedRows} rows in {warmupClock.Elapsed.TotalSeconds:F1} s; methods compiled while measuring: {compiledWhileMeasuring}"));
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"client_cpu_us_per_row={clientCpu.TotalMicroseconds / total:F1}"));
                if (BackendCpu.Delta(serverBefore, serverAfter) is { } serverCpu)
                {
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"server_backend_cpu_us_per_row={serverCpu.TotalMicroseconds / total:F1}"));
                }

                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"rows_per_second={total / stopwatch.Elapsed.TotalSeconds:F0}"));
                return 0;
            }
            finally
            {
                NpgsqlConnection.ClearAllPools();
                await using var admin = server.CreateDataSource();
                await using var drop = admin.CreateCommand($"drop database if exists \"{scratch}\" with (force)");
                await drop.ExecuteNonQueryAsync(CancellationToken.None);
            }
        });
        return command;
    }

    private const double MaxSettleSeconds = 60;
}

/// <summary>
/// CPU time of the server backends connected to a database, read from /proc when the server runs on this machine (the
/// backends' process ids from <c>pg_stat_activity</c>); null when they cannot be read (a remote server, another OS).
/// </summary>
internal static class BackendCpu
{
    public static async Task<Dictionary<int, TimeSpan>?> ReadAsync(NpgsqlDataSource db, CancellationToken cancellationToken)
    {
        if (!OperatingSystem.IsLinux())
        {
            return null;
        }

        var pids = new List<int>();
        await using (var command = db.CreateCommand("select pid from pg_stat_activity where datname = current_database() and backend_type = 'client backend'"))
        await using (var reader = await command.ExecuteReaderAsync(cancellationToken))
        {
            while (await reader.ReadAsync(cancellationToken))
            {
                pids.Add(reader.GetInt32(0));
            }
        }

        var ticksPerSecond = 100.0; // USER_HZ: the unit of utime and stime in /proc/PID/stat on Linux
        var times = new Dictionary<int, TimeSpan>();
        foreach (var pid in pids)
        {
            string stat;
            try
            {
                stat = await File.ReadAllTextAsync($"/proc/{pid}/stat", cancellationToken);
            }
            catch (IOException)
            {
                return null;
            }
            catch (UnauthorizedAccessException)
            {
                return null;
            }

            // Fields after the command name, which is in parentheses and may hold spaces: state is the first; utime and stime the 12th and 13th.
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            if (fields.Length < 13
                || !long.TryParse(fields[11], NumberStyles.None, CultureInfo.InvariantCulture, out var user)
                || !long.TryParse(fields[12], NumberStyles.None, CultureInfo.InvariantCulture, out var system))
            {
                return null;
            }

            times[pid] = TimeSpan.FromSeconds((user + system) / ticksPerSecond);
        }

        return times;
    }

    /// <summary>The CPU the backends used between two readings (a backend that started between them counts in full).</summary>
    public static TimeSpan? Delta(Dictionary<int, TimeSpan>? before, Dictionary<int, TimeSpan>? after)
    {
        if (before is null || after is null)
        {
            return null;
        }

        var total = TimeSpan.Zero;
        foreach (var (pid, time) in after)
        {
            total += time - before.GetValueOrDefault(pid);
        }

        return total;
    }
}
