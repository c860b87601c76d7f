using System.CommandLine;
using System.Globalization;
using HubertEcg.Storage;
using HubertEcg.Client.Results;

namespace HubertEcg.Client.Commands;

/// <summary>
/// <c>hubert-ecg results export --run ID --out FILE.csv|FILE.parquet [--with-embedding] [--layout list|wide] [--row-group-mb N]</c>:
/// one row per scored record; rows stream in the order <see cref="ResultsExport"/> documents. CSV has a column per label
/// code; Parquet the probabilities as one list column (label codes in the file's metadata) or, with
/// <c>--layout wide</c>, a column per label code (<see cref="ParquetLayout"/>).
/// </summary>
public static class ResultsExportCommand
{
    public static Command Build()
    {
        var run = new Option<string>("--run") { Description = "Run id", Required = true };
        var output = new Option<FileInfo>("--out") { Description = "Output file; .csv or .parquet", Required = true };
        var embedding = new Option<bool>("--with-embedding") { Description = "Also write the embedding: CSV columns embedding_0 ..., Parquet one list<float> column embedding" };
        var layout = new Option<string>("--layout")
        {
            Description = "Parquet: list (default: the probabilities as one list<float> column 'probabilities', label codes in the file's " +
                "key-value metadata 'hubert_ecg.label_codes'; memory flat, the footer about 1 MB per million rows with the embedding) or " +
                "wide (a float column per label code, as CSV; the footer about 1 MB per million rows, 4 MB with the embedding)",
            DefaultValueFactory = _ => "list",
        };
        layout.AcceptOnlyFromAmong("list", "wide");
        var rowGroupMegabytes = new Option<int?>("--row-group-mb")
        {
            Description = "Parquet: uncompressed megabytes of values per row group (the tool holds one group in memory; " +
                $"default {ResultsExport.DefaultRowGroupBytes(ParquetLayout.List) >> 20} in the list layout, {ResultsExport.DefaultRowGroupBytes(ParquetLayout.Wide) >> 20} in the wide one)",
        };
        var command = new Command("export", "Export a run's scores to CSV or Parquet");
        command.Options.Add(run);
        command.Options.Add(output);
        command.Options.Add(embedding);
        command.Options.Add(layout);
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
            var options = new ExportOptions(
                parseResult.GetValue(embedding),
                parseResult.GetValue(layout) == "wide" ? ParquetLayout.Wide : ParquetLayout.List,
                megabytes is { } mb ? (long)mb << 20 : null);
            var summary = await ResultsExport.ExportAsync(db, runId, parseResult.GetValue(output)!.FullName, options, cancellationToken);
            var labelsText = summary.Format == "parquet" && options.Layout == ParquetLayout.List
                ? $"a {summary.LabelColumns}-probability list"
                : $"{summary.LabelColumns} label columns";
            var embeddingText = summary.EmbeddingColumns == 0 ? ""
                : summary.Format == "parquet" ? $", a {summary.EmbeddingColumns}-float embedding list" : $", {summary.EmbeddingColumns} embedding columns";
            var groupsText = summary.Format == "parquet" ? $" in {summary.RowGroups} row group(s)" : "";
            Console.WriteLine($"wrote {summary.Rows} rows ({labelsText}{embeddingText}){groupsText} to {summary.Path}");
            Console.WriteLine(string.Create(
                CultureInfo.InvariantCulture,
                $"first row after {summary.FirstRow.TotalMilliseconds:F0} ms, {summary.Elapsed.TotalSeconds:F1} s in all, {summary.Rows / Math.Max(summary.Elapsed.TotalSeconds, 1e-3):F0} rows/s"));
            return 0;
        });
        return command;
    }
}
