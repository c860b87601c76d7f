using System.CommandLine;
using System.Globalization;
using System.Text;
using HubertEcg.Client.Evaluation;
using HubertEcg.Inference.Evaluation;
using HubertEcg.Storage;

namespace HubertEcg.Client.Commands;

/// <summary>
/// <c>hubert-ecg thresholds fit|list|activate|export</c>: named, versioned per-label threshold sets of a model; the
/// active set of a run's model is what the dashboard's prevalence and findings views count with.
/// </summary>
public static class ThresholdsCommands
{
    public static Command Build()
    {
        var command = new Command("thresholds", "Per-label threshold sets of a model");
        command.Subcommands.Add(Fit());
        command.Subcommands.Add(List());
        command.Subcommands.Add(Activate());
        command.Subcommands.Add(Export());
        return command;
    }

    private static Command Fit()
    {
        var run = EvaluateCommand.RunOption();
        var scores = EvaluateCommand.ScoresOption();
        var labels = EvaluateCommand.LabelsOption();
        var allowUnscored = EvaluateCommand.AllowUnscoredOption();
        var rule = new Option<string>("--rule") { Description = "youden, f1, sensitivity=X (the highest threshold reaching X) or ppv=X (the lowest reaching X)", Required = true };
        var name = new Option<string>("--name") { Description = "Set name (default: the rule); fitting an existing name adds a version" };
        var model = new Option<string>("--model") { Description = "Model id, for a scores file without a model_id column" };
        var activate = new Option<bool>("--activate") { Description = "Make the new set its model's active one" };
        var exact = new Option<bool>("--exact")
        {
            Description = "Pick thresholds among the probability values themselves, not on the 1/1000 grid (activating such a set recounts those labels from every score row of the model)",
        };
        var command = new Command("fit", "Fit per-label thresholds on scores and diagnoses and store them as a new set version");
        foreach (var o in new Option[] { run, scores, labels, allowUnscored, rule, name, model, activate, exact })
        {
            command.Options.Add(o);
        }

        command.SetAction(async (parseResult, cancellationToken) =>
        {
            var parsedRule = ThresholdRule.Parse(parseResult.GetValue(rule)!);
            var inputs = await EvaluateCommand.ReadInputsAsync(parseResult, run, scores, labels, cancellationToken);
            var modelId = parseResult.GetValue(model) ?? inputs.Scores.ModelId
                ?? throw new ArgumentException($"{inputs.Scores.Source} does not name its model (no model_id column); give --model");
            if (inputs.Scores.ModelId is { } fileModel && fileModel != modelId)
            {
                throw new ArgumentException($"--model {modelId} but the scores are of model {fileModel}");
            }

            var options = new EvaluationOptions(AllowUnscored: parseResult.GetValue(allowUnscored));
            var thresholds = Evaluator.FitThresholds(inputs.Scores, inputs.Labels, parsedRule, options, onGrid: !parseResult.GetValue(exact));
            var setName = parseResult.GetValue(name) ?? parsedRule.ToString();
            var cohort = CohortSize(inputs);
            await using var db = RunCommands.OpenDatabase(parseResult);
            var store = new EvaluationStore(db);
            var (setId, version) = await store.CreateSetAsync(
                modelId, setName, parsedRule, inputs.Scores.Source, inputs.LabelsFile, inputs.Labels.Sha256, cohort, thresholds, cancellationToken);
            var missing = thresholds.Where(t => t.Threshold is null).Select(t => t.Code).ToList();
            Console.WriteLine($"threshold set '{setName}' version {version} ({setId}) for model {modelId}: rule {parsedRule}" +
                $"{(parseResult.GetValue(exact) ? ", exact" : $", on the 1/{ThresholdGrid.Steps} grid")}, {thresholds.Count - missing.Count} of {thresholds.Count} labels with a threshold");
            if (missing.Count > 0)
            {
                Console.WriteLine($"no threshold (rule not met; the label keeps the global one): {string.Join(", ", missing.Take(30))}{(missing.Count > 30 ? ", ..." : "")}");
            }

            WarnOffGrid(thresholds.Select(t => t.Threshold));
            if (parseResult.GetValue(activate))
            {
                var changed = await store.ActivateAsync(setId, cancellationToken);
                Console.WriteLine($"active for model {modelId}; {changed.Length} labels recounted");
            }

            return 0;
        });
        return command;
    }

    private static int CohortSize(EvaluateCommand.Inputs inputs) =>
        inputs.Scores.RecordIds.Count(id => inputs.Labels.TryGetRow(id, out _));

    private static Command List()
    {
        var model = new Option<string>("--model") { Description = "Only this model's sets" };
        var command = new Command("list", "Threshold sets, their versions and which is active");
        command.Options.Add(model);
        command.SetAction(async (parseResult, cancellationToken) =>
        {
            await using var db = RunCommands.OpenDatabase(parseResult);
            var sets = await new EvaluationStore(db).ListSetsAsync(parseResult.GetValue(model), cancellationToken);
            Console.WriteLine("model\tname\tversion\tactive\trule\tlabels\tcohort\tcreated\tid");
            foreach (var s in sets)
            {
                Console.WriteLine(string.Join(
                    '\t',
                    s.ModelId, s.Name, s.Version.ToString(CultureInfo.InvariantCulture), s.Active ? "active" : "-", s.Rule,
                    $"{s.WithThreshold}/{s.Labels}", s.CohortSize.ToString(CultureInfo.InvariantCulture),
                    s.CreatedAt.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture), s.SetId.ToString()));
            }

            return 0;
        });
        return command;
    }

    // Thresholds on the 1/1000 grid are recounted from the per-run bucket counts when the set is activated (under a second at
    // 1M and at 3M rows: the counts do not grow with rows); one off the grid makes the activation recount its label from every score row of the model,
    // holding the model's writers back meanwhile (infra/sql/0025_threshold_buckets.sql, docs/queries.md).
    private static void WarnOffGrid(IEnumerable<float?> thresholds)
    {
        var off = thresholds.Count(t => t is { } value && LabelGrid.Index(value) is null);
        if (off > 0)
        {
            Console.WriteLine(
                $"note: {off} threshold(s) are off the 1/{LabelGrid.Steps} grid: activating the set recounts those labels from every score row " +
                "of the model (seconds per 10M rows, the model's writers waiting); grid thresholds recount from the bucket counts at once");
        }
    }

    private static (Argument<string> Set, Option<string> Model, Option<int?> Version) SetSelector(Command command)
    {
        var set = new Argument<string>("set") { Description = "Set name (its latest version unless --version) or set id" };
        var model = new Option<string>("--model") { Description = "The model, when sets of that name exist for several" };
        var version = new Option<int?>("--version") { Description = "Version of the named set" };
        command.Arguments.Add(set);
        command.Options.Add(model);
        command.Options.Add(version);
        return (set, model, version);
    }

    private static Command Activate()
    {
        var command = new Command("activate", "Make a set its model's active one (the dashboard counts with it)");
        var (set, model, version) = SetSelector(command);
        command.SetAction(async (parseResult, cancellationToken) =>
        {
            await using var db = RunCommands.OpenDatabase(parseResult);
            var store = new EvaluationStore(db);
            var row = await store.ResolveSetAsync(parseResult.GetValue(set)!, parseResult.GetValue(model), parseResult.GetValue(version), cancellationToken);
            WarnOffGrid((await store.SetLabelsAsync(row.SetId, cancellationToken)).Select(l => l.Threshold));
            var changed = await store.ActivateAsync(row.SetId, cancellationToken);
            Console.WriteLine($"threshold set '{row.Name}' version {row.Version} is active for model {row.ModelId}; {changed.Length} labels recounted");
            return 0;
        });
        return command;
    }

    private static Command Export()
    {
        var command = new Command("export", "Write a set's thresholds as CSV (label_code,position,threshold; empty: none)");
        var (set, model, version) = SetSelector(command);
        var output = new Option<FileInfo>("--out") { Description = "CSV file to write (default: standard output)" };
        command.Options.Add(output);
        command.SetAction(async (parseResult, cancellationToken) =>
        {
            await using var db = RunCommands.OpenDatabase(parseResult);
            var store = new EvaluationStore(db);
            var row = await store.ResolveSetAsync(parseResult.GetValue(set)!, parseResult.GetValue(model), parseResult.GetValue(version), cancellationToken);
            var text = new StringBuilder("label_code,position,threshold\n");
            foreach (var (position, code, threshold) in await store.SetLabelsAsync(row.SetId, cancellationToken))
            {
                var quoted = code.AsSpan().IndexOfAny(",\"") >= 0 ? "\"" + code.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"" : code;
                text.Append(quoted).Append(',').Append(position.ToString(CultureInfo.InvariantCulture)).Append(',')
                    .Append(threshold is { } t ? t.ToString("R", CultureInfo.InvariantCulture) : "").Append('\n');
            }

            if (parseResult.GetValue(output) is { } file)
            {
                await File.WriteAllTextAsync(file.FullName, text.ToString(), new UTF8Encoding(false), cancellationToken);
                Console.WriteLine($"wrote threshold set '{row.Name}' version {row.Version} to {file.FullName}");
            }
            else
            {
                Console.Write(text.ToString());
            }

            return 0;
        });
        return command;
    }
}
