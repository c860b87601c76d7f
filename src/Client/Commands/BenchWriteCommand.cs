using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using HubertEcg.Storage;
using Npgsql;
using HubertEcg.Grains;
using HubertEcg.Worker;

namespace HubertEcg.Client.Commands;

/// <summary>
/// <c>hubert-ecg bench write [--rows N] [--batch B] [--labels 164] [--embedding 512] [--writers W] [--embedding-precision fp32|fp16]</c>: score rows per
/// second through the workers' result writer (binary COPY straight into scores for new keys, else through staging) into a scratch database
/// created on the configured Postgres server with the project's schema and dropped afterwards.
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
        var command = new Command("write", "Postgres write rate of score rows through the result writer");
        command.Options.Add(rows);
        command.Options.Add(batch);
        command.Options.Add(labels);
        command.Options.Add(embedding);
        command.Options.Add(writers);
        command.Options.Add(precision);
        command.SetAction(async (parseResult, cancellationToken) =>
        {
            var total = parseResult.GetValue(rows);
            var size = parseResult.GetValue(batch);
            var labelCount = parseResult.GetValue(labels);
            var hidden = parseResult.GetValue(embedding);
            var concurrency = parseResult.GetValue(writers);
            if (total < 1 || size < 1 || labelCount < 1 || hidden < 1 || concurrency < 1)
            {
                Console.Error.WriteLine("error: --rows, --batch, --labels, --embedding and --writers must be positive");
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
                var runId = Guid.NewGuid();
                await store.CreateRunAsync(new NewRun(runId, "bench write", "bench", "", modelId, "bench.onnx", "hubert-ecg-2024", Aggregation.Mean, 6, 32, 100, 3, 60), cancellationToken);

                var random = new Random(1);
                var probabilities = Enumerable.Range(0, 64).Select(_ => Enumerable.Range(0, labelCount).Select(_ => random.NextSingle()).ToArray()).ToArray();
                var embeddings = Enumerable.Range(0, 64).Select(_ => Enumerable.Range(0, hidden).Select(_ => random.NextSingle() - 0.5f).ToArray()).ToArray();
                var writer = new ResultWriter(db, embeddingPrecision: embeddingPrecision);
                var next = -1;
                var written = 0L;
                var stopwatch = Stopwatch.StartNew();
                var tasks = Enumerable.Range(0, concurrency).Select(async _ =>
                {
                    while (true)
                    {
                        var start = Interlocked.Increment(ref next) * size;
                        if (start >= total)
                        {
                            return;
                        }

                        var now = DateTime.UtcNow;
                        var rowsOfBatch = Enumerable.Range(start, Math.Min(size, total - start))
                            .Select(i => new ScoreRow(modelId, $"bench/record{i:D9}", runId, probabilities[i % 64], embeddings[i % 64], 2, $"bench/record{i:D9}.hea", "0x8DC", now))
                            .ToArray();
                        Interlocked.Add(ref written, await writer.WriteScoresAsync(rowsOfBatch, cancellationToken));
                    }
                }).ToArray();
                await Task.WhenAll(tasks);
                stopwatch.Stop();

                await using var count = db.CreateCommand("select count(*) from scores");
                var stored = (long)(await count.ExecuteScalarAsync(cancellationToken))!;
                if (stored != total || written != total)
                {
                    Console.Error.WriteLine($"error: wrote {written} rows, {stored} stored, expected {total}");
                    return 1;
                }

                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"rows: {total} ({labelCount} probabilities + {hidden}-float embedding each, stored {PackedEmbeddings.Name(embeddingPrecision)}), batches of {size}, {concurrency} writer(s), {stopwatch.Elapsed.TotalSeconds:F2} s"));
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
}
