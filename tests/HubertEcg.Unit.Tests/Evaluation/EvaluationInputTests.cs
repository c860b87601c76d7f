using HubertEcg.Inference.Evaluation;

namespace HubertEcg.Unit.Tests.Evaluation;

/// <summary>Bad score and label files are refused with a message naming the file and the line.</summary>
public sealed class EvaluationInputTests : IDisposable
{
    private readonly string dir = Path.Combine(Path.GetTempPath(), $"eval-input-{Guid.NewGuid():N}");

    public EvaluationInputTests() => Directory.CreateDirectory(dir);

    public void Dispose() => Directory.Delete(dir, recursive: true);

    private string Write(string name, string text)
    {
        var path = Path.Combine(dir, name);
        File.WriteAllText(path, text);
        return path;
    }

    private ScoreTable Scores() => ScoreCsvReader.Read(Write("scores.csv", "record_id,PAC|SVPB,LAFB/LPFB,+ROT\na,0.9,0.1,0.5\nb,0.2,0.8,0.5\nc,0.6,0.4,0.1\n"));

    private static string Error(Action action) => Assert.ThrowsAny<EvaluationInputException>(action).Message;

    [Fact]
    public void DuplicatedLabelRecordNamesBothLines()
    {
        var scores = Scores();
        var path = Write("labels.csv", "record_id,codes\na,PAC|SVPB\nb,\na,+ROT\n");
        Assert.Equal("labels.csv line 4: record a appears again (first at line 2)", Error(() => LabelFileReader.Read(path, scores)));
    }

    [Fact]
    public void DuplicatedScoreRecordNamesTheLine()
    {
        var path = Write("dup.csv", "record_id,AF\nx,0.1\nx,0.2\n");
        Assert.Equal("dup.csv line 3: record x appears again (first at line 2)", Error(() => ScoreCsvReader.Read(path)));
    }

    [Fact]
    public void LabelledRecordWithoutScoreIsRefusedUnlessAllowed()
    {
        var scores = Scores();
        var labels = LabelFileReader.Read(Write("labels.csv", "record_id,codes\na,PAC|SVPB\nzz,+ROT\nb,\n"), scores);
        var message = Error(() => Evaluator.Evaluate(scores, labels, new EvaluationOptions()));
        Assert.StartsWith("labels.csv line 3: record zz has no score in scores.csv", message, StringComparison.Ordinal);

        var result = Evaluator.Evaluate(scores, labels, new EvaluationOptions(AllowUnscored: true));
        Assert.Equal((2, 1, 1), (result.Matched, result.ScoresOnly, result.LabelsOnly));
        Assert.Equal(["zz"], result.LabelsOnlyExamples);
        Assert.Equal(1, result.Labels[0].Positives);
        Assert.Equal(1, result.Labels[0].Negatives);
    }

    [Fact]
    public void EmptyFilesAndHeaderOnlyFilesAreRefused()
    {
        var scores = Scores();
        Assert.Equal("empty.csv: the file is empty (no header line)", Error(() => LabelFileReader.Read(Write("empty.csv", ""), scores)));
        Assert.Equal("empty.csv: the file is empty (no header line)", Error(() => ScoreCsvReader.Read(Write("empty.csv", ""))));
        Assert.Equal("head.csv: has a header but no records", Error(() => LabelFileReader.Read(Write("head.csv", "record_id,codes\n"), scores)));
    }

    [Theory]
    [InlineData("1.5")]
    [InlineData("-0.1")]
    [InlineData("NaN")]
    public void ProbabilityOutsideTheUnitIntervalNamesLineAndColumn(string value)
    {
        var path = Write("bad.csv", $"record_id,AF,AFL\na,0.1,0.2\nb,0.3,{value}\n");
        Assert.Equal($"bad.csv line 3: probability {value} in column AFL is outside [0, 1]", Error(() => ScoreCsvReader.Read(path)));
    }

    [Fact]
    public void NonNumericProbabilityNamesLineAndColumn() =>
        Assert.Equal("bad.csv line 2: 'high' in column AF is not a number", Error(() => ScoreCsvReader.Read(Write("bad.csv", "record_id,AF\na,high\n"))));

    [Fact]
    public void ByteOrderMarkAndCrlfLineEndsReadLikePlainLf()
    {
        var plain = Evaluator.Evaluate(Scores(), LabelFileReader.Read(Write("plain.csv", "record_id,codes\na,+ROT\nb,PAC|SVPB;+ROT\nc,\n"), Scores()), new EvaluationOptions());
        var path = Path.Combine(dir, "bom.csv");
        File.WriteAllBytes(path, [0xEF, 0xBB, 0xBF, .. "record_id,codes\r\na,+ROT\r\nb,PAC|SVPB;+ROT\r\nc,\r\n"u8.ToArray()]);
        var scores = ScoreCsvReader.Read(Write("scores-crlf.csv", "record_id,PAC|SVPB,LAFB/LPFB,+ROT\r\na,0.9,0.1,0.5\r\nb,0.2,0.8,0.5\r\nc,0.6,0.4,0.1\r\n"));
        var labels = LabelFileReader.Read(path, scores);
        Assert.Equal(["a", "b", "c"], labels.RecordIds);
        var crlf = Evaluator.Evaluate(scores, labels, new EvaluationOptions());
        Assert.Equal(plain.Labels, crlf.Labels);
        Assert.Equal(2, crlf.Labels.Single(m => m.Code == "+ROT").Positives);
    }

    [Fact]
    public void CarriageReturnInsideALineIsRefusedNamingTheLine() =>
        Assert.Equal(
            "cr.csv line 3: contains a carriage return (CR) inside the line; lines must end with LF or CRLF",
            Error(() => ScoreCsvReader.Read(Write("cr.csv", "record_id,AF\na,0.1\nb,0.2\rc,0.3\n"))));

    [Fact]
    public void Utf16FileIsRefusedOnLineOne()
    {
        var path = Path.Combine(dir, "utf16.csv");
        File.WriteAllText(path, "record_id,codes\na,\n", System.Text.Encoding.Unicode);
        Assert.Equal(
            "utf16.csv line 1: the file is UTF-16 (it starts with a UTF-16 byte order mark); save it as UTF-8",
            Error(() => LabelFileReader.Read(path, Scores())));
    }

    [Fact]
    public void UnknownCodesAreNamedWithTheirFirstLine()
    {
        var scores = Scores();
        Assert.Equal(
            "labels.csv: 2 label code(s) the scores have no column for: 'XYZ' (line 2), 'ABC' (line 3)",
            Error(() => LabelFileReader.Read(Write("labels.csv", "record_id,codes\na,XYZ;PAC|SVPB\nb,ABC;XYZ\n"), scores)));
        Assert.Equal(
            "wide.csv: 1 label code(s) the scores have no column for: 'NOPE' (line 1)",
            Error(() => LabelFileReader.Read(Write("wide.csv", "record_id,+ROT,NOPE\na,1,0\n"), scores)));
    }

    [Fact]
    public void WideFlagsMustBeZeroOrOne() =>
        Assert.Equal(
            "wide.csv line 3: '2' in column +ROT is not 0 or 1",
            Error(() => LabelFileReader.Read(Write("wide.csv", "record_id,+ROT\na,1\nb,2\n"), Scores())));

    [Fact]
    public void QuotedFieldsWithCommasAndCodesWithPunctuationAreRead()
    {
        var scores = ScoreCsvReader.Read(Write(
            "export.csv",
            "record_id,model_id,run_id,windows_used,source_blob,source_etag,scored_at,PAC|SVPB,\"A,B\",embedding_0\n" +
            "\"r,1\",m1,00000000-0000-0000-0000-000000000001,1,\"b,1.hea\",\"\"\"e\"\"\",2026-01-01T00:00:00.000000Z,0.75,0.25,3.5\n" +
            "r2,m1,00000000-0000-0000-0000-000000000001,1,b2.hea,e,2026-01-01T00:00:00.000000Z,0.5,1,-7\n"));
        Assert.Equal(["PAC|SVPB", "A,B"], scores.Codes);
        Assert.Equal("m1", scores.ModelId);
        Assert.True(scores.TryGetRow("r,1", out var row));
        Assert.Equal(0.25f, scores.Get(1, row));

        var labels = LabelFileReader.Read(Write("labels.csv", "record_id,codes\n\"r,1\",\"A,B;PAC|SVPB\"\nr2,\n"), scores);
        var result = Evaluator.Evaluate(scores, labels, new EvaluationOptions());
        Assert.Equal(["PAC|SVPB", "A,B"], result.Labels.Select(m => m.Code));
        Assert.Equal(1.0, result.Labels[0].Auroc);
        Assert.Equal(0.0, result.Labels[1].Auroc);
    }

    [Fact]
    public void WideFileWithSomeColumnsEvaluatesThoseInScoreOrder()
    {
        var scores = Scores();
        var labels = LabelFileReader.Read(Write("wide.csv", "record_id,+ROT,PAC|SVPB\na,1,1\nb,0,0\nc,1,0\n"), scores);
        var result = Evaluator.Evaluate(scores, labels, new EvaluationOptions());
        Assert.Equal(["PAC|SVPB", "+ROT"], result.Labels.Select(m => m.Code));
        Assert.Equal([1L, 2L], result.Labels.Select(m => m.Positives));
    }
}
