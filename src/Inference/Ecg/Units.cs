namespace HubertEcg.Inference.Ecg;

/// <summary>Physical units of ECG channels.</summary>
public static class Units
{
    /// <summary>The factor that turns a value in <paramref name="units"/> into millivolts, or null when the units are not a voltage.</summary>
    public static double? ToMillivolts(string? units)
    {
        var u = (units ?? "mV").Trim();
        if (u.Length == 0)
        {
            return 1.0;
        }

        return u.ToUpperInvariant() switch
        {
            "MV" or "MILLIVOLT" or "MILLIVOLTS" => 1.0,
            "UV" or "µV" or "ΜV" or "MICROVOLT" or "MICROVOLTS" => 1e-3,
            "NV" or "NANOVOLT" or "NANOVOLTS" => 1e-6,
            "V" or "VOLT" or "VOLTS" => 1e3,
            _ => null,
        };
    }
}

/// <summary>Record metadata (age, sex, diagnoses) parsed from free-text header comments.</summary>
public static class RecordMetadata
{
    /// <summary>
    /// Keeps all comments under "comments" and extracts "key: value" pairs, including the PhysioNet Challenge form
    /// "&lt;age&gt;: 25 &lt;sex&gt;: M" and "Age: 53", under lower-case keys.
    /// </summary>
    public static IReadOnlyDictionary<string, string> FromComments(IReadOnlyList<string> comments)
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        if (comments.Count == 0)
        {
            return result;
        }

        result["comments"] = string.Join('\n', comments);
        foreach (var comment in comments)
        {
            if (comment.Contains('<', StringComparison.Ordinal) && comment.Contains(">:", StringComparison.Ordinal))
            {
                var parts = comment.Split('<', StringSplitOptions.RemoveEmptyEntries);
                foreach (var part in parts)
                {
                    var close = part.IndexOf(">:", StringComparison.Ordinal);
                    if (close > 0)
                    {
                        Add(result, part[..close], part[(close + 2)..]);
                    }
                }
            }
            else
            {
                var colon = comment.IndexOf(':', StringComparison.Ordinal);
                if (colon > 0 && colon < 40)
                {
                    Add(result, comment[..colon], comment[(colon + 1)..]);
                }
            }
        }

        return result;
    }

    private static void Add(Dictionary<string, string> result, string key, string value)
    {
        key = key.Trim().ToLowerInvariant();
        value = value.Trim();
        if (key.Length > 0 && value.Length > 0 && key != "comments")
        {
            result.TryAdd(key, value);
        }
    }
}
