using System.Buffers;
using System.Text;
using System.Text.Json;
using HubertEcg.Worker;

namespace HubertEcg.Storage;

/// <summary>
/// A batch's label positives counted by the writer, in the form the scores insert trigger takes them from the
/// transaction setting <c>hubert.label_positives</c> (0018_fast_score_writes.sql). Counting 164 labels over a batch
/// in SQL costs the server more than the rest of the insert; here it is a few microseconds per row.
/// </summary>
internal static class LabelPositives
{
    /// <summary>
    /// The claim for <paramref name="rows"/>: per run, its row count and, for each label in
    /// <paramref name="positions"/> order, how many rows have <c>probabilities[position] &gt; threshold</c> compared as
    /// Postgres compares reals (NaN above every threshold; a probability the row lacks is not positive).
    /// </summary>
    public static string Claim(IReadOnlyList<ScoreRow> rows, IReadOnlyList<int> positions, IReadOnlyList<float> thresholds)
    {
        var counts = new Dictionary<Guid, (int Rows, long[] Positives)>();
        foreach (var row in rows)
        {
            if (!counts.TryGetValue(row.RunId, out var run))
            {
                run = (0, new long[positions.Count]);
            }

            var probabilities = row.Probabilities;
            for (var i = 0; i < positions.Count; i++)
            {
                var position = positions[i];
                if ((uint)position < (uint)probabilities.Length)
                {
                    var p = probabilities[position];
                    if (float.IsNaN(p) || p > thresholds[i])
                    {
                        run.Positives[i]++;
                    }
                }
            }

            counts[row.RunId] = (run.Rows + 1, run.Positives);
        }

        var buffer = new ArrayBufferWriter<byte>(1024 + 8 * positions.Count * (counts.Count + 2));
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteStartArray("positions");
            foreach (var position in positions)
            {
                json.WriteNumberValue(position);
            }

            json.WriteEndArray();
            json.WriteStartArray("thresholds");
            foreach (var threshold in thresholds)
            {
                // The shortest text that reads back as the same float; the trigger compares it as real.
                json.WriteNumberValue(threshold);
            }

            json.WriteEndArray();
            json.WriteStartArray("runs");
            foreach (var (runId, run) in counts)
            {
                json.WriteStartObject();
                json.WriteString("run", runId);
                json.WriteNumber("rows", run.Rows);
                json.WriteStartArray("positives");
                foreach (var n in run.Positives)
                {
                    json.WriteNumberValue(n);
                }

                json.WriteEndArray();
                json.WriteEndObject();
            }

            json.WriteEndArray();
            json.WriteEndObject();
        }

        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }
}
