using System.Globalization;
using System.Text.Json;

namespace HubertEcg.Inference.Model;

/// <summary>Summarises an ONNX Runtime profiler trace (JSON array of events): kernel time per operator type.</summary>
public static class OrtProfileSummary
{
    /// <summary>Total kernel microseconds per operator type, largest first.</summary>
    public static IReadOnlyList<(string OpType, long Microseconds, int Calls)> ByOperator(string tracePath)
    {
        using var stream = File.OpenRead(tracePath);
        using var doc = JsonDocument.Parse(stream);
        var totals = new Dictionary<string, (long Us, int Calls)>(StringComparer.Ordinal);
        foreach (var e in doc.RootElement.EnumerateArray())
        {
            if (!e.TryGetProperty("cat", out var cat) || cat.GetString() != "Node"
                || !e.TryGetProperty("name", out var name) || name.GetString()?.EndsWith("_kernel_time", StringComparison.Ordinal) != true
                || !e.TryGetProperty("args", out var args) || !args.TryGetProperty("op_name", out var op)
                || !e.TryGetProperty("dur", out var dur))
            {
                continue;
            }

            var key = op.GetString() ?? "?";
            var current = totals.GetValueOrDefault(key);
            totals[key] = (current.Us + dur.GetInt64(), current.Calls + 1);
        }

        return totals.Select(p => (p.Key, p.Value.Us, p.Value.Calls)).OrderByDescending(p => p.Us).ToList();
    }

    /// <summary>Lines "op: ms (percent, calls)" for the <paramref name="top"/> operators.</summary>
    public static IEnumerable<string> Summarise(string tracePath, int top)
    {
        var ops = ByOperator(tracePath);
        var total = Math.Max(1, ops.Sum(o => o.Microseconds));
        yield return string.Create(CultureInfo.InvariantCulture, $"kernel time by operator (total {total / 1000.0:F0} ms):");
        foreach (var (opType, us, calls) in ops.Take(top))
        {
            yield return string.Create(CultureInfo.InvariantCulture, $"  {opType,-28} {us / 1000.0,10:F1} ms {100.0 * us / total,6:F1}% {calls,7} calls");
        }
    }
}
