namespace HubertEcg.Inference.Evaluation;

/// <summary>
/// Probabilities of a cohort, one column per label code, kept column by column in blocks of
/// <see cref="BlockRows"/> rows (single precision, as the scores are stored): a label's values are read in one
/// sequential pass, and memory is the scores themselves (4 bytes per record and label) plus the record ids.
/// </summary>
public sealed class ScoreTable
{
    public const int BlockShift = 16;
    public const int BlockRows = 1 << BlockShift;

    private readonly List<float[][]> blocks = [];
    private readonly List<string> recordIds = [];
    private readonly List<long> lines = [];
    private readonly Dictionary<string, int> rows = new(StringComparer.Ordinal);
    private readonly Dictionary<string, int> codeIndex;

    /// <param name="source">The file or run the scores come from, for messages.</param>
    /// <param name="codes">The label codes in column order.</param>
    public ScoreTable(string source, IReadOnlyList<string> codes)
    {
        Source = source;
        Codes = codes;
        codeIndex = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var i = 0; i < codes.Count; i++)
        {
            if (!codeIndex.TryAdd(codes[i], i))
            {
                throw EvaluationInputException.In(source, $"label code '{codes[i]}' appears twice");
            }
        }
    }

    public string Source { get; }

    public IReadOnlyList<string> Codes { get; }

    /// <summary>The model the scores are from, when the source says (a run, or an export's <c>model_id</c> column).</summary>
    public string? ModelId { get; set; }

    public int Count => recordIds.Count;

    public IReadOnlyList<string> RecordIds => recordIds;

    public int LabelIndex(string code) => codeIndex.TryGetValue(code, out var i) ? i : -1;

    public bool TryGetRow(string recordId, out int row) => rows.TryGetValue(recordId, out row);

    /// <summary>
    /// Adds a record. <paramref name="line"/> is where it was read (a file line, or the row number of a query), for
    /// messages; a repeated record id or a probability outside [0, 1] is an error naming it.
    /// </summary>
    public void Add(string recordId, ReadOnlySpan<float> probabilities, long line)
    {
        if (probabilities.Length != Codes.Count)
        {
            throw EvaluationInputException.At(Source, line, $"record {recordId} has {probabilities.Length} probabilities where there are {Codes.Count} label columns");
        }

        for (var l = 0; l < probabilities.Length; l++)
        {
            var p = probabilities[l];
            if (!(p >= 0f && p <= 1f))
            {
                throw EvaluationInputException.At(Source, line, $"record {recordId}: probability {p.ToString("R", System.Globalization.CultureInfo.InvariantCulture)} for {Codes[l]} is outside [0, 1]");
            }
        }

        if (recordId.Length == 0)
        {
            throw EvaluationInputException.At(Source, line, "empty record id");
        }

        if (!rows.TryAdd(recordId, recordIds.Count))
        {
            throw EvaluationInputException.At(Source, line, $"record {recordId} appears again (first at line {lines[rows[recordId]]})");
        }

        var row = recordIds.Count;
        if ((row & (BlockRows - 1)) == 0)
        {
            var block = new float[Codes.Count][];
            for (var l = 0; l < block.Length; l++)
            {
                block[l] = new float[BlockRows];
            }

            blocks.Add(block);
        }

        var current = blocks[row >> BlockShift];
        var offset = row & (BlockRows - 1);
        for (var l = 0; l < probabilities.Length; l++)
        {
            current[l][offset] = probabilities[l];
        }

        recordIds.Add(recordId);
        lines.Add(line);
    }

    public float Get(int label, int row) => blocks[row >> BlockShift][label][row & (BlockRows - 1)];

    /// <summary>Where a record was read (file line or query row).</summary>
    public long LineOf(int row) => lines[row];
}
