using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using HubertEcg.Client.Evaluation;
using HubertEcg.Inference.Evaluation;
using HubertEcg.Inference.Model;

namespace HubertEcg.Client.Commands;

/// <summary>
/// <c>hubert-ecg bench evaluate [--records 1000000] [--labels 164] [--dir DIR] [--format csv|parquet] [--bootstrap N]</c>:
/// the time of <c>evaluate</c> on a synthetic cohort (scores rounded to 3 decimals, so ties are frequent, and a long
/// label file with prevalences from 0.1% to 30%), written to DIR once and reused. Reports reading the scores, reading
/// the labels, computing the metrics and writing them; the last line is <c>evaluate_seconds=...</c> (all four).
/// </summary>
public static class BenchEvaluateCommand
{
    public static Command Build()
    {
        var records = new Option<int>("--records") { Description = "Records in the synthetic cohort", DefaultValueFactory = _ => 1_000_000 };
        var labels = new Option<int>("--labels") { Description = "Labels per record", DefaultValueFactory = _ => 164 };
        var directory = new Option<DirectoryInfo>("--dir") { Description = "Where the synthetic files are written (and reused)", DefaultValueFactory = _ => new DirectoryInfo(Path.Combine(Path.GetTempPath(), "hubert-ecg-bench-evaluate")) };
        var format = new Option<string>("--format") { Description = "Scores file format: csv or parquet", DefaultValueFactory = _ => "csv" };
        var bootstrap = new Option<int>("--bootstrap") { Description = "Bootstrap resamples (0: none)" };
        var command = new Command("evaluate", "Time of evaluate on a synthetic cohort (files generated once)");
        foreach (var o in new Option[] { records, labels, directory, format, bootstrap })
        {
            command.Options.Add(o);
        }

        command.SetAction(async (parseResult, cancellationToken) =>
        {
            var n = parseResult.GetValue(records);
            var l = parseResult.GetValue(labels);
            var fmt = parseResult.GetValue(format)!.ToLowerInvariant();
            if (n < 2 || l < 1 || fmt is not ("csv" or "parquet"))
            {
                throw new ArgumentException("--records must be at least 2, --labels positive, --format csv or parquet");
            }

            var dir = parseResult.GetValue(directory)!.FullName;
            Directory.CreateDirectory(dir);
            var codes = Codes(l);
            var scoresPath = Path.Combine(dir, $"scores-{n}x{l}.{fmt}");
            var labelsPath = Path.Combine(dir, $"labels-{n}x{l}.csv");
            if (!File.Exists(scoresPath) || !File.Exists(labelsPath))
            {
                var generate = Stopwatch.StartNew();
                await GenerateAsync(scoresPath, labelsPath, codes, n, fmt, cancellationToken);
                Console.WriteLine($"generated {scoresPath} ({new FileInfo(scoresPath).Length / 1e6:F0} MB) and {labelsPath} in {generate.Elapsed.TotalSeconds:F1} s");
            }

            // Wall and CPU (user + system, all threads) per phase: on a shared machine the CPU time says what the work costs.
            var process = Process.GetCurrentProcess();
            var total = Stopwatch.StartNew();
            var clock = Stopwatch.StartNew();
            var cpu = process.TotalProcessorTime;
            var phases = new List<string>();
            void Phase(string name)
            {
                process.Refresh();
                var now = process.TotalProcessorTime;
                phases.Add(string.Create(CultureInfo.InvariantCulture, $"{name}={clock.Elapsed.TotalSeconds:F1}s (cpu {(now - cpu).TotalSeconds:F1}s)"));
                cpu = now;
                clock.Restart();
            }

            var cpuStart = process.TotalProcessorTime;
            var scores = await ScoreSources.ReadFileAsync(scoresPath, cancellationToken);
            Phase("read_scores");
            var labelSet = LabelFileReader.Read(labelsPath, scores);
            Phase("read_labels");
            var result = Evaluator.Evaluate(scores, labelSet, new EvaluationOptions(parseResult.GetValue(bootstrap)));
            Phase("metrics");
            MetricsCsv.Write(Path.Combine(dir, "metrics.csv"), result.Labels, result.Bootstrap > 0);
            Phase("write");
            var seconds = total.Elapsed.TotalSeconds;
            process.Refresh();
            Console.WriteLine($"records={result.Matched} labels={result.Labels.Count} cores={Environment.ProcessorCount}");
            Console.WriteLine(string.Join(' ', phases));
            Console.WriteLine(string.Create(
                CultureInfo.InvariantCulture,
                $"cpu_seconds={(process.TotalProcessorTime - cpuStart).TotalSeconds:F1} peak_working_set={process.PeakWorkingSet64 / (1 << 20)}MiB"));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"evaluate_seconds={seconds:F1}"));
            return 0;
        });
        return command;
    }

    private static List<string> Codes(int count)
    {
        if (count == LabelCatalog.CardioLearningCount && LabelCatalog.FindCardioLearningFile() is { } file)
        {
            return [.. LabelCatalog.LoadCodes(file)];
        }

        return [.. Enumerable.Range(0, count).Select(i => $"L{i:D3}")];
    }

    /// <summary>Deterministic synthetic cohort: label l has prevalence from 0.1% to 30%; a positive's score is shifted up.</summary>
    private static async Task GenerateAsync(string scoresPath, string labelsPath, List<string> codes, int n, string format, CancellationToken cancellationToken)
    {
        var prevalence = Enumerable.Range(0, codes.Count).Select(i => 0.001 + (0.3 * i / Math.Max(1, codes.Count - 1))).ToArray();
        var ids = Enumerable.Range(0, n).Select(i => $"bench/{i:D7}").ToList();

        // One generator per record, so a record's values do not depend on the order they are made in.
        static (bool Positive, int Milli) Value(int record, int label, double prevalence)
        {
            var state = ((ulong)(uint)record << 20) ^ (ulong)label ^ 0x5DEECE66DUL;
            var u1 = Unit(ref state);
            var u2 = Unit(ref state);
            var positive = u1 < prevalence;
            var logit = (positive ? 1.0 : -1.5) + (2.0 * (u2 - 0.5) * 3.0);
            return (positive, (int)Math.Round(1000.0 / (1.0 + Math.Exp(-logit))));
        }

        var milli = Enumerable.Range(0, 1001).Select(k => (k / 1000.0).ToString("0.###", CultureInfo.InvariantCulture)).ToArray();
        await using (var labels = new StreamWriter(labelsPath, false, new UTF8Encoding(false)))
        {
            labels.NewLine = "\n";
            await labels.WriteLineAsync("record_id,codes");
            var line = new StringBuilder();
            for (var r = 0; r < n; r++)
            {
                line.Clear().Append(ids[r]).Append(',');
                var first = true;
                for (var l = 0; l < codes.Count; l++)
                {
                    if (Value(r, l, prevalence[l]).Positive)
                    {
                        line.Append(first ? "" : ";").Append(codes[l]);
                        first = false;
                    }
                }

                await labels.WriteLineAsync(line, cancellationToken);
            }
        }

        if (format == "parquet")
        {
            await ScoreSources.WriteParquetAsync(scoresPath, codes, ids, (r, l) => Value(r, l, prevalence[l]).Milli / 1000f, cancellationToken);
            return;
        }

        await using var scores = new StreamWriter(scoresPath, false, new UTF8Encoding(false), 1 << 20);
        scores.NewLine = "\n";
        await scores.WriteLineAsync("record_id," + string.Join(',', codes.Select(c => c.Contains(',', StringComparison.Ordinal) ? $"\"{c}\"" : c)));
        var row = new StringBuilder();
        for (var r = 0; r < n; r++)
        {
            row.Clear().Append(ids[r]);
            for (var l = 0; l < codes.Count; l++)
            {
                row.Append(',').Append(milli[Value(r, l, prevalence[l]).Milli]);
            }

            await scores.WriteLineAsync(row, cancellationToken);
        }
    }

    private static double Unit(ref ulong state)
    {
        state += 0x9E3779B97F4A7C15UL;
        var z = state;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        z ^= z >> 31;
        return (z >> 11) * (1.0 / (1UL << 53));
    }
}
