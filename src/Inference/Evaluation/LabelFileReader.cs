namespace HubertEcg.Inference.Evaluation;

/// <summary>
/// Reads a diagnoses file in either layout, told apart by its header: <c>record_id,codes</c> is the long layout,
/// <c>record_id</c> followed by label codes the wide one. Codes are checked against the scores' label codes: codes the
/// scores do not have are an error naming each (with the first line it is on).
/// </summary>
public static class LabelFileReader
{
    public static LabelSet Read(string path, ScoreTable scores)
    {
        var sha = File.Exists(path) ? LabelSet.HashFile(path) : "";
        using var csv = new CsvLines(path);
        var header = csv.Next() ?? throw EvaluationInputException.In(csv.Name, "the file is empty (no header line)");
        var names = CsvLines.Split(header, csv.Name, 1);
        if (names[0] != "record_id")
        {
            throw EvaluationInputException.At(csv.Name, 1, $"the first column must be record_id, not '{names[0]}'");
        }

        var set = names.Count == 2 && names[1] == "codes"
            ? ReadLong(csv, scores, sha)
            : ReadWide(csv, names, scores, sha);
        if (set.Count == 0)
        {
            throw EvaluationInputException.In(csv.Name, "has a header but no records");
        }

        return set;
    }

    private static LabelSet ReadLong(CsvLines csv, ScoreTable scores, string sha)
    {
        var all = Enumerable.Range(0, scores.Codes.Count).ToArray();
        var set = new LabelSet(csv.Name, LabelLayout.Long, scores.Codes.Count, all, sha);
        var unknown = new Dictionary<string, long>(StringComparer.Ordinal);
        string? line;
        while ((line = csv.Next()) is not null)
        {
            var lineNo = csv.LineNumber;
            if (line.Length == 0)
            {
                throw EvaluationInputException.At(csv.Name, lineNo, "empty line");
            }

            var fields = CsvLines.Split(line, csv.Name, lineNo);
            if (fields.Count != 2)
            {
                throw EvaluationInputException.At(csv.Name, lineNo, $"has {fields.Count} fields where the header has 2 (record_id,codes); quote a codes field that holds a comma");
            }

            var row = set.AddRecord(fields[0], lineNo);
            foreach (var part in fields[1].Split(';'))
            {
                var code = part.Trim();
                if (code.Length == 0)
                {
                    continue;
                }

                var label = scores.LabelIndex(code);
                if (label < 0)
                {
                    unknown.TryAdd(code, lineNo);
                    continue;
                }

                set.SetPositive(label, row);
            }
        }

        ThrowUnknown(csv.Name, unknown);
        return set;
    }

    private static LabelSet ReadWide(CsvLines csv, List<string> names, ScoreTable scores, string sha)
    {
        var map = new int[names.Count];
        var unknown = new Dictionary<string, long>(StringComparer.Ordinal);
        var evaluated = new List<int>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (var c = 1; c < names.Count; c++)
        {
            if (!seen.Add(names[c]))
            {
                throw EvaluationInputException.At(csv.Name, 1, $"column '{names[c]}' appears twice");
            }

            map[c] = scores.LabelIndex(names[c]);
            if (map[c] < 0)
            {
                unknown.TryAdd(names[c], 1);
            }
            else
            {
                evaluated.Add(map[c]);
            }
        }

        ThrowUnknown(csv.Name, unknown);
        if (evaluated.Count == 0)
        {
            throw EvaluationInputException.At(csv.Name, 1, "no label columns: expected record_id,codes (long layout) or record_id followed by label codes (wide layout)");
        }

        var set = new LabelSet(csv.Name, LabelLayout.Wide, scores.Codes.Count, evaluated, sha);
        var ranges = new Range[names.Count + 1];
        string? line;
        while ((line = csv.Next()) is not null)
        {
            var lineNo = csv.LineNumber;
            if (line.Length == 0)
            {
                throw EvaluationInputException.At(csv.Name, lineNo, "empty line");
            }

            if (line.Contains('"', StringComparison.Ordinal))
            {
                var fields = CsvLines.Split(line, csv.Name, lineNo);
                CheckCount(fields.Count, names.Count, csv.Name, lineNo);
                var row = set.AddRecord(fields[0], lineNo);
                for (var c = 1; c < fields.Count; c++)
                {
                    if (ParseFlag(fields[c], csv.Name, lineNo, names[c]))
                    {
                        set.SetPositive(map[c], row);
                    }
                }
            }
            else
            {
                var count = CsvLines.SplitUnquoted(line, ranges);
                CheckCount(count, names.Count, csv.Name, lineNo);
                var row = set.AddRecord(line[ranges[0]], lineNo);
                var span = line.AsSpan();
                for (var c = 1; c < count; c++)
                {
                    if (ParseFlag(span[ranges[c]], csv.Name, lineNo, names[c]))
                    {
                        set.SetPositive(map[c], row);
                    }
                }
            }
        }

        return set;
    }

    private static bool ParseFlag(ReadOnlySpan<char> text, string file, long line, string column) => text switch
    {
        "1" => true,
        "0" => false,
        _ => throw EvaluationInputException.At(file, line, $"'{text}' in column {column} is not 0 or 1"),
    };

    private static void CheckCount(int count, int expected, string file, long line)
    {
        if (count != expected)
        {
            throw EvaluationInputException.At(file, line, $"has {count} fields where the header has {expected}");
        }
    }

    private static void ThrowUnknown(string file, Dictionary<string, long> unknown)
    {
        if (unknown.Count > 0)
        {
            var list = string.Join(", ", unknown.Take(20).Select(u => $"'{u.Key}' (line {u.Value})"));
            throw EvaluationInputException.In(
                file, $"{unknown.Count} label code(s) the scores have no column for: {list}{(unknown.Count > 20 ? ", ..." : "")}");
        }
    }
}
