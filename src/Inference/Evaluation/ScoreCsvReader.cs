using System.Globalization;

namespace HubertEcg.Inference.Evaluation;

/// <summary>
/// Reads a scores CSV: a header whose first column is <c>record_id</c>, then one probability column per label code.
/// The files <c>hubert-ecg results export</c> writes are read as they are: their other fixed columns
/// (<see cref="ExportColumns"/>) are skipped, except <c>model_id</c>, which names the model when every row has the same
/// one, and so are <c>embedding_N</c> columns.
/// </summary>
public static class ScoreCsvReader
{
    /// <summary>The non-label columns of an export, besides <c>record_id</c>.</summary>
    public static readonly IReadOnlySet<string> ExportColumns = new HashSet<string>(StringComparer.Ordinal)
    {
        "model_id", "run_id", "windows_used", "source_blob", "source_etag", "scored_at",
    };

    public static bool IsEmbeddingColumn(string name) =>
        name.StartsWith("embedding_", StringComparison.Ordinal) && name.Length > 10 && name.AsSpan(10).IndexOfAnyExceptInRange('0', '9') < 0;

    public static ScoreTable Read(string path)
    {
        using var csv = new CsvLines(path);
        var header = csv.Next() ?? throw EvaluationInputException.In(csv.Name, "the file is empty (no header line)");
        var names = CsvLines.Split(header, csv.Name, 1);
        if (names[0] != "record_id")
        {
            throw EvaluationInputException.At(csv.Name, 1, $"the first column must be record_id, not '{names[0]}'");
        }

        // Per column: label index, or -1 skipped, or -2 model_id.
        var map = new int[names.Count];
        var codes = new List<string>();
        for (var c = 1; c < names.Count; c++)
        {
            var name = names[c];
            if (name == "model_id")
            {
                map[c] = -2;
            }
            else if (ExportColumns.Contains(name) || IsEmbeddingColumn(name))
            {
                map[c] = -1;
            }
            else if (name.Length == 0)
            {
                throw EvaluationInputException.At(csv.Name, 1, $"column {c + 1} has no name");
            }
            else
            {
                map[c] = codes.Count;
                codes.Add(name);
            }
        }

        if (codes.Count == 0)
        {
            throw EvaluationInputException.At(csv.Name, 1, "no label columns: expected record_id followed by one probability column per label code");
        }

        var table = new ScoreTable(csv.Name, codes);
        var probabilities = new float[codes.Count];
        var ranges = new Range[names.Count + 1];
        string? model = null;
        var modelsAgree = true;
        string? line;
        while ((line = csv.Next()) is not null)
        {
            var lineNo = csv.LineNumber;
            if (line.Length == 0)
            {
                throw EvaluationInputException.At(csv.Name, lineNo, "empty line");
            }

            string recordId;
            string? rowModel = null;
            if (line.Contains('"', StringComparison.Ordinal))
            {
                var fields = CsvLines.Split(line, csv.Name, lineNo);
                CheckCount(fields.Count, names.Count, csv.Name, lineNo);
                recordId = fields[0];
                for (var c = 1; c < fields.Count; c++)
                {
                    if (map[c] >= 0)
                    {
                        probabilities[map[c]] = ParseProbability(fields[c], csv.Name, lineNo, names[c]);
                    }
                    else if (map[c] == -2)
                    {
                        rowModel = fields[c];
                    }
                }
            }
            else
            {
                var count = CsvLines.SplitUnquoted(line, ranges);
                CheckCount(count, names.Count, csv.Name, lineNo);
                recordId = line[ranges[0]];
                var span = line.AsSpan();
                for (var c = 1; c < count; c++)
                {
                    if (map[c] >= 0)
                    {
                        probabilities[map[c]] = ParseProbability(span[ranges[c]], csv.Name, lineNo, names[c]);
                    }
                    else if (map[c] == -2)
                    {
                        rowModel = line[ranges[c]];
                    }
                }
            }

            if (rowModel is not null)
            {
                if (model is null && table.Count == 0)
                {
                    model = rowModel;
                }
                else if (model != rowModel)
                {
                    modelsAgree = false;
                }
            }

            table.Add(recordId, probabilities, lineNo);
        }

        if (table.Count == 0)
        {
            throw EvaluationInputException.In(csv.Name, "has a header but no records");
        }

        table.ModelId = modelsAgree ? model : null;
        return table;
    }

    private static void CheckCount(int count, int expected, string file, long line)
    {
        if (count != expected)
        {
            throw EvaluationInputException.At(file, line, $"has {count} fields where the header has {expected}");
        }
    }

    public static float ParseProbability(ReadOnlySpan<char> text, string file, long line, string column)
    {
        if (!float.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var p))
        {
            throw EvaluationInputException.At(file, line, $"'{text}' in column {column} is not a number");
        }

        if (!(p >= 0f && p <= 1f))
        {
            throw EvaluationInputException.At(file, line, $"probability {text} in column {column} is outside [0, 1]");
        }

        return p;
    }
}
