using System.Text.Json;
using HubertEcg.Client.Evaluation;
using HubertEcg.Client.Results;
using HubertEcg.Inference.Evaluation;
using Parquet;
using Parquet.Schema;

namespace HubertEcg.Unit.Tests.Evaluation;

/// <summary>
/// The evaluation reads the export's Parquet list layout (probabilities as one list column, label codes in the file's
/// metadata), and refuses a file whose lists do not match its codes with a message naming the file and the row.
/// </summary>
public sealed class ParquetListScoresTests : IDisposable
{
    private static readonly string[] Codes = ["AF", "PAC|SVPB", "+ROT"];

    private readonly string dir = Path.Combine(Path.GetTempPath(), $"eval-list-{Guid.NewGuid():N}");

    public ParquetListScoresTests() => Directory.CreateDirectory(dir);

    public void Dispose() => Directory.Delete(dir, recursive: true);

    [Fact]
    public async Task ListLayoutReadsEveryRowsProbabilitiesByTheCodesOfTheMetadataAcrossRowGroups()
    {
        float[][] rows = [[0.1f, 0.2f, 0.3f], [0f, 1f, 0.99999994f], [float.Epsilon, 0.5f, 1f / 3]];
        var path = await WriteAsync("ok.parquet", [["a", "b"], ["c"]], [rows[..2], rows[2..]], JsonSerializer.Serialize(Codes));

        var table = await ScoreSources.ReadParquetAsync(path, CancellationToken.None);

        Assert.Equal(Codes, table.Codes);
        Assert.Equal(3, table.Count);
        Assert.Equal("model-x", table.ModelId);
        string[] ids = ["a", "b", "c"];
        for (var r = 0; r < ids.Length; r++)
        {
            for (var l = 0; l < Codes.Length; l++)
            {
                Assert.True(table.TryGetRow(ids[r], out var row));
                Assert.Equal(BitConverter.SingleToInt32Bits(rows[r][l]), BitConverter.SingleToInt32Bits(table.Get(l, row)));
            }
        }
    }

    [Fact]
    public async Task AListShorterThanTheCodesNamesTheRow()
    {
        var path = await WriteAsync("short.parquet", [["a", "b"]], [[[0.1f, 0.2f, 0.3f], [0.4f, 0.5f]]], JsonSerializer.Serialize(Codes));
        Assert.Equal("short.parquet line 2: record b: 2 probabilities where the file names 3 labels", await ErrorAsync(path));
    }

    [Fact]
    public async Task AListLongerThanTheCodesNamesTheRow()
    {
        var path = await WriteAsync("long.parquet", [["a"]], [[[0.1f, 0.2f, 0.3f, 0.4f]]], JsonSerializer.Serialize(Codes));
        Assert.Equal("long.parquet line 1: record a: 4 probabilities where the file names 3 labels", await ErrorAsync(path));
    }

    [Fact]
    public async Task AProbabilityOutsideTheUnitIntervalNamesRowAndLabel()
    {
        var path = await WriteAsync("range.parquet", [["a", "b"]], [[[0.1f, 0.2f, 0.3f], [0.4f, 1.5f, 0.6f]]], JsonSerializer.Serialize(Codes));
        Assert.Equal("range.parquet line 2: record b: probability 1.5 of label PAC|SVPB is outside [0, 1]", await ErrorAsync(path));
    }

    [Fact]
    public async Task AListWithoutLabelCodesInTheMetadataIsRefused()
    {
        var path = await WriteAsync("nocodes.parquet", [["a"]], [[[0.1f, 0.2f, 0.3f]]], codesJson: null);
        Assert.Equal("nocodes.parquet: has a probabilities list column but no hubert_ecg.label_codes in its metadata", await ErrorAsync(path));
    }

    [Fact]
    public async Task LabelCodesThatAreNotAJsonArrayAreRefused()
    {
        var path = await WriteAsync("badcodes.parquet", [["a"]], [[[0.1f, 0.2f, 0.3f]]], "AF,PAC");
        Assert.StartsWith("badcodes.parquet: its hubert_ecg.label_codes metadata is not a JSON array of strings", await ErrorAsync(path));
    }

    [Fact]
    public async Task ACodeNamedTwiceIsRefused()
    {
        var path = await WriteAsync("twice.parquet", [["a"]], [[[0.1f, 0.2f]]], JsonSerializer.Serialize(new[] { "AF", "AF" }));
        Assert.Equal("twice.parquet: its hubert_ecg.label_codes metadata must name each label once, none empty", await ErrorAsync(path));
    }

    private static async Task<string> ErrorAsync(string path) =>
        (await Assert.ThrowsAnyAsync<EvaluationInputException>(() => ScoreSources.ReadParquetAsync(path, CancellationToken.None))).Message;

    /// <summary>A file of the list layout: record_id, model_id and a probabilities list per row, one row group per entry.</summary>
    private async Task<string> WriteAsync(string name, string[][] groupIds, float[][][] groupRows, string? codesJson)
    {
        var path = Path.Combine(dir, name);
        var record = new DataField<string>("record_id");
        var model = new DataField<string>("model_id");
        var element = new DataField<float>(ListField.ElementName);
        var schema = new ParquetSchema(record, model, new ListField(ParquetExportSink.ProbabilitiesColumn, element));
        await using var file = File.Create(path);
        await using var writer = await ParquetWriter.CreateAsync(schema, file);
        if (codesJson is not null)
        {
            writer.CustomMetadata = new Dictionary<string, string> { [ParquetExportSink.LabelCodesKey] = codesJson };
        }

        for (var g = 0; g < groupIds.Length; g++)
        {
            var values = groupRows[g].SelectMany(r => r).ToArray();
            var repetitions = groupRows[g].SelectMany(r => r.Select((_, i) => i == 0 ? 0 : 1)).ToArray();
            var definitions = Enumerable.Repeat(element.MaxDefinitionLevel, values.Length).ToArray();
            using var group = writer.CreateRowGroup();
            await group.WriteAsync(record, groupIds[g]);
            await group.WriteAsync(model, groupIds[g].Select(_ => "model-x").ToArray());
            await group.WriteAllPartsAsync<float>(element, values.AsMemory(), definitions.AsMemory(), repetitions.AsMemory(), CancellationToken.None);
        }

        return path;
    }
}
