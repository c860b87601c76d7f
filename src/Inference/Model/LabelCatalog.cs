namespace HubertEcg.Inference.Model;

/// <summary>The Cardio-Learning label list (<c>labels/cardio-learning-164.csv</c>: index, code, name, group).</summary>
public static class LabelCatalog
{
    public const string CardioLearningFileName = "cardio-learning-164.csv";
    public const int CardioLearningCount = 164;

    /// <summary>Reads the label codes in index order.</summary>
    public static IReadOnlyList<string> LoadCodes(string path)
    {
        string[] lines;
        try
        {
            lines = File.ReadAllLines(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new CheckpointFormatException(path, null, $"cannot read the label list: {e.Message}", e);
        }

        if (lines.Length == 0 || !lines[0].StartsWith("index,code", StringComparison.Ordinal))
        {
            throw new CheckpointFormatException(path, null, "label list must start with the header 'index,code,...'");
        }

        var codes = new List<string>();
        for (var i = 1; i < lines.Length; i++)
        {
            if (lines[i].Length == 0)
            {
                continue;
            }

            var fields = lines[i].Split(',');
            if (fields.Length < 2 || !int.TryParse(fields[0], out var index) || index != codes.Count || fields[1].Length == 0)
            {
                throw new CheckpointFormatException(path, $"line {i + 1}", $"expected index {codes.Count} followed by a label code");
            }

            codes.Add(fields[1]);
        }

        return codes;
    }

    /// <summary>
    /// Looks for <c>labels/cardio-learning-164.csv</c> in a <c>shared</c> folder beside or above the current folder or
    /// the application's folder (the checkout layout keeps it at <c>../shared</c>); null when none is found.
    /// </summary>
    public static string? FindCardioLearningFile()
    {
        foreach (var start in new[] { Environment.CurrentDirectory, AppContext.BaseDirectory })
        {
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                foreach (var candidate in new[] { Path.Combine(dir.FullName, "shared", "labels", CardioLearningFileName), Path.Combine(dir.FullName, "labels", CardioLearningFileName) })
                {
                    if (File.Exists(candidate))
                    {
                        return candidate;
                    }
                }
            }
        }

        return null;
    }
}
