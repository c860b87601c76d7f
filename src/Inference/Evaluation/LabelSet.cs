using System.Security.Cryptography;

namespace HubertEcg.Inference.Evaluation;

/// <summary>The layout a label file was read in.</summary>
public enum LabelLayout
{
    /// <summary><c>record_id,codes</c>, the positive codes separated by <c>;</c>.</summary>
    Long,

    /// <summary><c>record_id</c> and one 0/1 column per label code.</summary>
    Wide,
}

/// <summary>
/// A cohort's diagnoses against a score table's label codes: one bit per record and evaluated label. In the long
/// layout every label of the scores is evaluated (a code not listed is a negative); in the wide layout the labels
/// with a column.
/// </summary>
public sealed class LabelSet
{
    private readonly ulong[]?[] bits;
    private readonly List<string> recordIds = [];
    private readonly List<long> lines = [];
    private readonly Dictionary<string, int> rows = new(StringComparer.Ordinal);

    internal LabelSet(string source, LabelLayout layout, int labelCount, IReadOnlyList<int> evaluated, string sha256)
    {
        Source = source;
        Layout = layout;
        bits = new ulong[]?[labelCount];
        foreach (var l in evaluated)
        {
            bits[l] = [];
        }

        Evaluated = evaluated;
        Sha256 = sha256;
    }

    public string Source { get; }

    public LabelLayout Layout { get; }

    /// <summary>The score table's label indices this file gives diagnoses for, in column order.</summary>
    public IReadOnlyList<int> Evaluated { get; }

    /// <summary>SHA-256 of the file's bytes, lower-case hex.</summary>
    public string Sha256 { get; }

    public int Count => recordIds.Count;

    public IReadOnlyList<string> RecordIds => recordIds;

    public bool TryGetRow(string recordId, out int row) => rows.TryGetValue(recordId, out row);

    public long LineOf(int row) => lines[row];

    public bool IsPositive(int label, int row) => (bits[label]![row >> 6] & (1UL << (row & 63))) != 0;

    internal int AddRecord(string recordId, long line)
    {
        if (recordId.Length == 0)
        {
            throw EvaluationInputException.At(Source, line, "empty record id");
        }

        if (!rows.TryAdd(recordId, recordIds.Count))
        {
            throw EvaluationInputException.At(Source, line, $"record {recordId} appears again (first at line {lines[rows[recordId]]})");
        }

        var row = recordIds.Count;
        if ((row & 63) == 0)
        {
            foreach (var l in Evaluated)
            {
                var words = bits[l]!;
                if (words.Length <= row >> 6)
                {
                    Array.Resize(ref bits[l], Math.Max(16, words.Length * 2));
                }
            }
        }

        recordIds.Add(recordId);
        lines.Add(line);
        return row;
    }

    internal void SetPositive(int label, int row) => bits[label]![row >> 6] |= 1UL << (row & 63);

    internal static string HashFile(string path)
    {
        using var stream = File.OpenRead(path);
        return Convert.ToHexStringLower(SHA256.HashData(stream));
    }
}
