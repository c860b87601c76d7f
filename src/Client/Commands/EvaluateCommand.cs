using System.CommandLine;
using System.Diagnostics;
using HubertEcg.Client.Evaluation;
using HubertEcg.Inference.Evaluation;

namespace HubertEcg.Client.Commands;

/// <summary>
/// <c>hubert-ecg evaluate --run ID | --scores FILE.csv|FILE.parquet --labels FILE.csv --out FILE.csv [--bootstrap N]</c>:
/// per-label metrics of scores against diagnoses, written to a CSV and stored in Postgres.
/// </summary>
public static class EvaluateCommand
{
    /// <summary>The scores and diagnoses of an evaluation or a threshold fit, read and matched.</summary>
    internal sealed record Inputs(ScoreTable Scores, Guid? RunId, LabelSet Labels, string LabelsFile);

    internal static Option<string> RunOption() => new("--run") { Description = "Evaluate a run's stored scores (run id)" };

    internal static Option<FileInfo> ScoresOption() =>
        new("--scores") { Description = "Evaluate a scores file: what `results export` writes (.csv or .parquet), or record_id plus one column per label code" };

    internal static Option<FileInfo> LabelsOption() =>
        new("--labels")
        {
            Description = "Diagnoses: long layout (record_id,codes with codes separated by ';') or wide (record_id plus one 0/1 column per code)",
            Required = true,
        };

    internal static Option<bool> AllowUnscoredOption() =>
        new("--allow-unscored") { Description = "Evaluate the labelled records that have a score and report the others, instead of refusing the label file" };

    public static Command Build()
    {
        var run = RunOption();
        var scores = ScoresOption();
        var labels = LabelsOption();
        var output = new Option<FileInfo>("--out") { Description = "Per-label metrics CSV to write", Required = true };
        var bootstrap = new Option<int>("--bootstrap") { Description = "Resamples for 95% percentile intervals of AUROC and AUPRC (0: none)" };
        var seed = new Option<long>("--seed") { Description = "Seed of the bootstrap resamples", DefaultValueFactory = _ => (long)EvaluationOptions.DefaultSeed };
        var allowUnscored = AllowUnscoredOption();
        var noStore = new Option<bool>("--no-store") { Description = "Do not store the evaluation in Postgres" };
        var command = new Command("evaluate", "Per-label AUROC, AUPRC and threshold metrics of scores against diagnoses");
        foreach (var o in new Option[] { run, scores, labels, output, bootstrap, seed, allowUnscored, noStore })
        {
            command.Options.Add(o);
        }

        command.SetAction(async (parseResult, cancellationToken) =>
        {
            var replicates = parseResult.GetValue(bootstrap);
            var seedValue = parseResult.GetValue(seed);
            if (replicates < 0 || seedValue < 0)
            {
                throw new ArgumentException("--bootstrap and --seed must not be negative");
            }

            var store = !parseResult.GetValue(noStore);
            var clock = Stopwatch.StartNew();
            var inputs = await ReadInputsAsync(parseResult, run, scores, labels, cancellationToken);
            var result = Evaluator.Evaluate(
                inputs.Scores,
                inputs.Labels,
                new EvaluationOptions(replicates, (ulong)seedValue, parseResult.GetValue(allowUnscored)));
            var path = parseResult.GetValue(output)!.FullName;
            MetricsCsv.Write(path, result.Labels, replicates > 0);
            Console.WriteLine(
                $"cohort: {result.Matched} records with scores and diagnoses; {result.ScoresOnly} scored records without diagnoses; " +
                $"{result.LabelsOnly} labelled records without a score{(result.LabelsOnlyExamples.Count > 0 ? $" (e.g. {string.Join(", ", result.LabelsOnlyExamples)})" : "")}");
            Console.WriteLine($"wrote {result.Labels.Count} labels to {path}");
            if (store)
            {
                await using var db = RunCommands.OpenDatabase(parseResult);
                var id = await new EvaluationStore(db).SaveEvaluationAsync(inputs.Scores, inputs.RunId, inputs.Labels, inputs.LabelsFile, result, cancellationToken);
                Console.WriteLine($"evaluation {id} stored");
            }

            Console.Error.WriteLine($"evaluated in {clock.Elapsed.TotalSeconds:F1} s");
            return 0;
        });
        return command;
    }

    internal static async Task<Inputs> ReadInputsAsync(
        ParseResult parseResult, Option<string> run, Option<FileInfo> scores, Option<FileInfo> labels, CancellationToken cancellationToken)
    {
        var runText = parseResult.GetValue(run);
        var scoresFile = parseResult.GetValue(scores);
        if ((runText is null) == (scoresFile is null))
        {
            throw new ArgumentException("give either --run ID or --scores FILE");
        }

        var labelsFile = parseResult.GetValue(labels)!;
        if (!labelsFile.Exists)
        {
            throw new FileNotFoundException($"{labelsFile.FullName}: no such file", labelsFile.FullName);
        }

        Guid? runId = null;
        ScoreTable table;
        if (runText is not null)
        {
            runId = RunCommands.ParseRunId(runText);
            await using var db = RunCommands.OpenDatabase(parseResult);
            table = await ScoreSources.ReadRunAsync(db, runId.Value, cancellationToken);
        }
        else
        {
            table = await ScoreSources.ReadFileAsync(scoresFile!.FullName, cancellationToken);
        }

        return new Inputs(table, runId, LabelFileReader.Read(labelsFile.FullName, table), labelsFile.Name);
    }
}
