using System.CommandLine;
using HubertEcg.Storage;
using HubertEcg.Client.Results;

namespace HubertEcg.Client.Commands;

/// <summary><c>hubert-ecg results export --run ID --out FILE.csv|FILE.parquet</c>: one row per scored record, label codes as column names.</summary>
public static class ResultsExportCommand
{
    public static Command Build()
    {
        var run = new Option<string>("--run") { Description = "Run id", Required = true };
        var output = new Option<FileInfo>("--out") { Description = "Output file; .csv or .parquet", Required = true };
        var embedding = new Option<bool>("--with-embedding") { Description = "Also write the embedding (embedding_0 ...)" };
        var command = new Command("export", "Export a run's scores to CSV or Parquet");
        command.Options.Add(run);
        command.Options.Add(output);
        command.Options.Add(embedding);
        command.SetAction(async (parseResult, cancellationToken) =>
        {
            var runId = RunCommands.ParseRunId(parseResult.GetValue(run)!);
            await using var db = RunCommands.OpenDatabase(parseResult);
            var summary = await ResultsExport.ExportAsync(
                db, runId, parseResult.GetValue(output)!.FullName, parseResult.GetValue(embedding), cancellationToken);
            Console.WriteLine($"wrote {summary.Rows} rows ({summary.LabelColumns} label columns{(summary.EmbeddingColumns > 0 ? $", {summary.EmbeddingColumns} embedding columns" : "")}) to {summary.Path}");
            return 0;
        });
        return command;
    }
}
