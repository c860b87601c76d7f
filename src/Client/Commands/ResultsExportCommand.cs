using System.CommandLine;
using System.Globalization;
using HubertEcg.Storage;
using HubertEcg.Client.Results;

namespace HubertEcg.Client.Commands;

/// <summary>
/// <c>hubert-ecg results export --run ID --out FILE.csv|FILE.parquet [--with-embedding]</c>: one row per scored record,
/// label codes as column names; rows stream in the order <see cref="ResultsExport"/> documents.
/// </summary>
public static class ResultsExportCommand
{
    public static Command Build()
    {
        var run = new Option<string>("--run") { Description = "Run id", Required = true };
        var output = new Option<FileInfo>("--out") { Description = "Output file; .csv or .parquet", Required = true };
        var embedding = new Option<bool>("--with-embedding") { Description = "Also write the embedding: CSV columns embedding_0 ..., Parquet one list<float> column embedding" };
        var rowGroupMegabytes = new Option<int>("--row-group-mb")
        {
            Description = "Parquet: uncompressed megabytes of values per row group (the tool holds one group in memory)",
            DefaultValueFactory = _ => (int)(ResultsExport.DefaultRowGroupBytes >> 20),
        };
        var command = new Command("export", "Export a run's scores to CSV or Parquet");
        command.Options.Add(run);
        command.Options.Add(output);
        command.Options.Add(embedding);
        command.Options.Add(rowGroupMegabytes);
        command.SetAction(async (parseResult, cancellationToken) =>
        {
            var runId = RunCommands.ParseRunId(parseResult.GetValue(run)!);
            var megabytes = parseResult.GetValue(rowGroupMegabytes);
            if (megabytes is < 1 or > 1024)
            {
                throw new ArgumentException($"--row-group-mb must be from 1 to 1024, not {megabytes}");
            }

            await using var db = RunCommands.OpenDatabase(parseResult);
            var summary = await ResultsExport.ExportAsync(
                db, runId, parseResult.GetValue(output)!.FullName, parseResult.GetValue(embedding), (long)megabytes << 20, cancellationToken);
            var embeddingText = summary.EmbeddingColumns == 0 ? ""
                : summary.Format == "parquet" ? $", a {summary.EmbeddingColumns}-float embedding list" : $", {summary.EmbeddingColumns} embedding columns";
            var groupsText = summary.Format == "parquet" ? $" in {summary.RowGroups} row group(s)" : "";
            Console.WriteLine($"wrote {summary.Rows} rows ({summary.LabelColumns} label columns{embeddingText}){groupsText} to {summary.Path}");
            Console.WriteLine(string.Create(
                CultureInfo.InvariantCulture,
                $"first row after {summary.FirstRow.TotalMilliseconds:F0} ms, {summary.Elapsed.TotalSeconds:F1} s in all, {summary.Rows / Math.Max(summary.Elapsed.TotalSeconds, 1e-3):F0} rows/s"));
            return 0;
        });
        return command;
    }
}
