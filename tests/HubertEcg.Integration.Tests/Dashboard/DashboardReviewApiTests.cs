using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using HubertEcg.Integration.Tests.Scoring;
using HubertEcg.Storage;
using HubertEcg.Storage.Folders;
using HubertEcg.Testing;
using HubertEcg.Worker;
using Microsoft.Extensions.DependencyInjection;

namespace HubertEcg.Integration.Tests.Dashboard;

/// <summary>
/// The evaluation and review endpoints over real HTTP against a real Postgres and Azurite: a run of 30 scored records
/// evaluated and given an active threshold set through the product's own paths, its flagged records paged by keyset,
/// and records read back from blob storage (current, changed since scoring, gone).
/// </summary>
public sealed class DashboardReviewApiTests(PostgresDatabaseFixture database, BlobContainerFixture blobs)
    : IClassFixture<PostgresDatabaseFixture>, IClassFixture<BlobContainerFixture>
{
    private const string Token = "review-token-0123456789abcdef";
    private const int Records = 30;
    private const int Samples = 5000;
    private const int Af = 50;
    private const int Norm = 3;

    [Fact]
    public async Task AnEvaluationIsListedWithItsLabelsCurvesAndTheActiveThreshold()
    {
        var seed = await SeedAsync();
        await using var server = await DashboardServer.StartAsync(database.ConnectionString, Token);

        var listed = (await GetJsonAsync(server, "/api/evaluations")).EnumerateArray().Single(e => e.GetProperty("evaluation_id").GetGuid() == seed.EvaluationId);
        Assert.Equal(Records, listed.GetProperty("cohort_size").GetInt32());
        Assert.Equal(seed.RunId, listed.GetProperty("run_id").GetGuid());
        Assert.Equal(164, listed.GetProperty("labels").GetInt32());

        var page = await GetJsonAsync(server, $"/api/evaluations/{seed.EvaluationId}");
        Assert.Equal(seed.ModelId, page.GetProperty("evaluation").GetProperty("model_id").GetString());
        var labels = page.GetProperty("labels").EnumerateArray().ToList();
        Assert.Equal(164, labels.Count);
        Assert.Equal(Enumerable.Range(0, 164), labels.Select(l => l.GetProperty("position").GetInt32()));
        var af = labels.Single(l => l.GetProperty("code").GetString() == "AF");
        var expected = seed.Result.Labels.Single(m => m.Code == "AF");
        Assert.Equal(expected.Auroc, af.GetProperty("auroc").GetDouble());
        Assert.Equal(expected.Auprc, af.GetProperty("auprc").GetDouble());
        Assert.Equal(expected.Positives, af.GetProperty("positives").GetInt64());
        Assert.Equal("atrial fibrillation", af.GetProperty("name").GetString());
        Assert.Equal(0.5, af.GetProperty("threshold").GetDouble());
        Assert.True(af.GetProperty("threshold_inclusive").GetBoolean());
        Assert.Equal("review", af.GetProperty("threshold_set_name").GetString());
        Assert.True(af.GetProperty("has_curve").GetBoolean());

        // NORM is positive everywhere (no negative): no AUROC, no curve; its threshold stays the global 0.5, strictly above.
        var norm = labels.Single(l => l.GetProperty("code").GetString() == "NORM");
        Assert.Equal(JsonValueKind.Null, norm.GetProperty("auroc").ValueKind);
        Assert.False(norm.GetProperty("has_curve").GetBoolean());
        Assert.False(norm.GetProperty("threshold_inclusive").GetBoolean());

        var curve = await GetJsonAsync(server, $"/api/evaluations/{seed.EvaluationId}/curve?label=AF");
        var thresholds = curve.GetProperty("thresholds").EnumerateArray().Select(v => v.GetSingle()).ToList();
        var tpr = curve.GetProperty("tpr").EnumerateArray().Select(v => v.GetSingle()).ToList();
        var fpr = curve.GetProperty("fpr").EnumerateArray().Select(v => v.GetSingle()).ToList();
        Assert.Equal(expected.Curve!.Thresholds, thresholds);
        Assert.Equal(thresholds.Count, tpr.Count);
        Assert.Equal(thresholds.Count, fpr.Count);
        Assert.Equal(thresholds.Count, curve.GetProperty("precision").GetArrayLength());
        Assert.Equal((1f, 1f), (tpr[^1], fpr[^1]));
        Assert.Equal(0.5, curve.GetProperty("threshold").GetDouble());
        var noCurve = await GetJsonAsync(server, $"/api/evaluations/{seed.EvaluationId}/curve?label=NORM");
        Assert.Equal(JsonValueKind.Null, noCurve.GetProperty("thresholds").ValueKind);

        // A label code with the characters codes have travels in the query string.
        var rbbb = await GetJsonAsync(server, $"/api/evaluations/{seed.EvaluationId}/curve?label={Uri.EscapeDataString("CRBBB|RBBB")}");
        Assert.Equal("CRBBB|RBBB", rbbb.GetProperty("code").GetString());

        await AssertErrorAsync(server, "/api/evaluations/not-a-guid", HttpStatusCode.BadRequest, "'not-a-guid' is not an evaluation id");
        var unknown = Guid.NewGuid();
        await AssertErrorAsync(server, $"/api/evaluations/{unknown}", HttpStatusCode.NotFound, $"there is no evaluation {unknown}");
        await AssertErrorAsync(server, $"/api/evaluations/{unknown}/curve?label=AF", HttpStatusCode.NotFound, $"there is no evaluation {unknown}");
        await AssertErrorAsync(server, $"/api/evaluations/{seed.EvaluationId}/curve", HttpStatusCode.BadRequest, "label is required");
        await AssertErrorAsync(server, $"/api/evaluations/{seed.EvaluationId}/curve?label=NOPE", HttpStatusCode.NotFound, "has no label 'NOPE'");
        await AssertErrorAsync(server, "/api/evaluations?limit=0", HttpStatusCode.BadRequest, "limit must be a whole number from 1 to 1000");
    }

    [Fact]
    public async Task FlaggedRecordsComePagedByKeysetHighestFirstThroughTies()
    {
        var seed = await SeedAsync();
        await using var server = await DashboardServer.StartAsync(database.ConnectionString, Token);

        // At or above the active set's 0.5: records 20 to 29; 25 and 26 tie, so the record id (ascending) orders them.
        var expected = Enumerable.Range(0, Records)
            .Select(i => (Record: RecordId(seed.RunId, i), P: AfProbability(i)))
            .Where(r => r.P >= 0.5f)
            .OrderByDescending(r => r.P).ThenBy(r => r.Record, StringComparer.Ordinal)
            .ToList();
        Assert.Equal(10, expected.Count);

        var seen = new List<(string, float)>();
        var query = "";
        var pages = 0;
        while (true)
        {
            var page = await GetJsonAsync(server, $"/api/runs/{seed.RunId}/flagged?label=AF&limit=3{query}");
            pages++;
            var label = page.GetProperty("label");
            Assert.Equal(10, label.GetProperty("records_positive").GetInt64());
            Assert.Equal("review", label.GetProperty("threshold_set_name").GetString());
            seen.AddRange(page.GetProperty("records").EnumerateArray().Select(r => (r.GetProperty("record_id").GetString()!, r.GetProperty("probability").GetSingle())));
            if (page.GetProperty("next").ValueKind == JsonValueKind.Null)
            {
                break;
            }

            var next = page.GetProperty("next");
            query = $"&after_probability={next.GetProperty("after_probability").GetString()}&after_record={Uri.EscapeDataString(next.GetProperty("after_record").GetString()!)}";
        }

        Assert.Equal(4, pages);
        Assert.Equal(expected, seen);

        // NORM keeps the global threshold (0.9 > 0.5): all 30 are flagged, on one page.
        var norm = await GetJsonAsync(server, $"/api/runs/{seed.RunId}/flagged?label=NORM&limit=500");
        Assert.Equal(Records, norm.GetProperty("records").GetArrayLength());
        Assert.Equal(JsonValueKind.Null, norm.GetProperty("next").ValueKind);

        var path = $"/api/runs/{seed.RunId}/flagged";
        await AssertErrorAsync(server, path, HttpStatusCode.BadRequest, "label is required");
        await AssertErrorAsync(server, $"{path}?label=AF&limit=0", HttpStatusCode.BadRequest, "limit must be a whole number from 1 to 500");
        await AssertErrorAsync(server, $"{path}?label=AF&after_probability=0.5", HttpStatusCode.BadRequest, "after_probability and after_record go together");
        await AssertErrorAsync(server, $"{path}?label=AF&after_probability=high&after_record=x", HttpStatusCode.BadRequest, "after_probability must be a probability from 0 to 1, not 'high'");
        await AssertErrorAsync(server, $"{path}?label=NOPE", HttpStatusCode.NotFound, $"the model of run {seed.RunId} has no label 'NOPE'");
        var unknown = Guid.NewGuid();
        await AssertErrorAsync(server, $"/api/runs/{unknown}/flagged?label=AF", HttpStatusCode.NotFound, $"there is no run {unknown}");
        await AssertErrorAsync(server, "/api/runs/run-7/flagged?label=AF", HttpStatusCode.BadRequest, "'run-7' is not a run id");
    }

    [Fact]
    public async Task ARecordIsReadFromStorageWithItsFindingsAndSaysWhenItsBlobChangedOrIsGone()
    {
        var seed = await SeedAsync();
        await using var server = await DashboardServer.StartAsync(
            database.ConnectionString,
            Token,
            configure: builder => builder.Services.AddSingleton<IInputStore>(new InputStores(new BlobStore(blobs.ConnectionString), new FolderStore())));
        var path = $"/api/runs/{seed.RunId}/record?id=";

        // Record 29: read as scored, every sample in mV as written.
        var current = await GetJsonAsync(server, path + Uri.EscapeDataString(RecordId(seed.RunId, 29)));
        Assert.Equal(RecordId(seed.RunId, 29), current.GetProperty("record").GetProperty("record_id").GetString());
        Assert.Equal(seed.ModelId, current.GetProperty("record").GetProperty("model_id").GetString());
        Assert.Equal(blobs.ContainerName, current.GetProperty("source").GetProperty("container").GetString());
        Assert.False(current.GetProperty("source").GetProperty("changed").GetBoolean());
        Assert.Equal(JsonValueKind.Null, current.GetProperty("problem").ValueKind);
        var signal = current.GetProperty("signal");
        Assert.Equal(500, signal.GetProperty("sampling_rate").GetDouble());
        Assert.Equal(["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"], signal.GetProperty("leads").EnumerateArray().Select(l => l.GetString()));
        Assert.Equal(10, signal.GetProperty("seconds").GetDouble());
        var samples = signal.GetProperty("samples");
        Assert.Equal(12, samples.GetArrayLength());
        for (var lead = 0; lead < 12; lead++)
        {
            Assert.Equal(Samples, samples[lead].GetArrayLength());
            foreach (var i in new[] { 0, 137, 2499, 4999 })
            {
                Assert.Equal(Math.Round(Sample(29, lead, i), 4), samples[lead][i].GetDouble(), 9);
            }
        }

        // Its findings: AF (0.725, at or above the set's 0.5) and NORM (0.9, above the global 0.5) first, highest first.
        var findings = current.GetProperty("findings").EnumerateArray().ToList();
        Assert.Equal(10, findings.Count);
        Assert.Equal(["NORM", "AF"], findings.Take(2).Select(f => f.GetProperty("code").GetString()));
        Assert.All(findings.Take(2), f => Assert.True(f.GetProperty("positive").GetBoolean()));
        Assert.All(findings.Skip(2), f => Assert.False(f.GetProperty("positive").GetBoolean()));

        // Record 28's blob was rewritten after scoring: drawn from what is there now, and said so.
        var changed = await GetJsonAsync(server, path + Uri.EscapeDataString(RecordId(seed.RunId, 28)));
        Assert.True(changed.GetProperty("source").GetProperty("changed").GetBoolean());
        Assert.Equal("\"scored-version\"", changed.GetProperty("source").GetProperty("stored_version").GetString());
        Assert.Equal(JsonValueKind.Object, changed.GetProperty("signal").ValueKind);

        // Record 27's blob is gone: the page gets the reason, not a server error.
        var gone = await GetJsonAsync(server, path + Uri.EscapeDataString(RecordId(seed.RunId, 27)));
        Assert.Equal(JsonValueKind.Null, gone.GetProperty("signal").ValueKind);
        Assert.Equal($"the record's source blob '{RecordId(seed.RunId, 27)}.npy' no longer exists in '{blobs.ContainerName}'", gone.GetProperty("problem").GetString());
        Assert.Equal(JsonValueKind.Null, gone.GetProperty("source").GetProperty("changed").ValueKind);

        // Record 26's blob is no ECG: the reader's reason.
        var corrupt = await GetJsonAsync(server, path + Uri.EscapeDataString(RecordId(seed.RunId, 26)));
        Assert.Equal(JsonValueKind.Null, corrupt.GetProperty("signal").ValueKind);
        Assert.StartsWith($"{RecordId(seed.RunId, 26)} could not be read: ", corrupt.GetProperty("problem").GetString(), StringComparison.Ordinal);

        await AssertErrorAsync(server, $"/api/runs/{seed.RunId}/record", HttpStatusCode.BadRequest, "id is required");
        await AssertErrorAsync(server, path + "elsewhere%2Frec", HttpStatusCode.NotFound, $"run {seed.RunId} has no score for record 'elsewhere/rec'");
        var unknown = Guid.NewGuid();
        await AssertErrorAsync(server, $"/api/runs/{unknown}/record?id=x", HttpStatusCode.NotFound, $"there is no run {unknown}");
        await AssertErrorAsync(server, "/api/runs/nope/record?id=x", HttpStatusCode.BadRequest, "'nope' is not a run id");

        // A dashboard without an input store (no scoring services in its host) says so on the page.
        await using var bare = await DashboardServer.StartAsync(database.ConnectionString, Token);
        var unreadable = await GetJsonAsync(bare, path + Uri.EscapeDataString(RecordId(seed.RunId, 29)));
        Assert.Contains("no input store configured", unreadable.GetProperty("problem").GetString(), StringComparison.Ordinal);
        Assert.Equal(2, unreadable.GetProperty("findings").EnumerateArray().Count(f => f.GetProperty("positive").GetBoolean()));
    }

    [Fact]
    public async Task TheReviewPagesAreServedWithTheirScriptsAndRefuseMalformedIds()
    {
        await using var server = await DashboardServer.StartAsync(database.ConnectionString, Token);
        var id = Guid.NewGuid();
        foreach (var (path, script) in new[]
        {
            ("/evaluations", "evaluations.js"), ($"/evaluations/{id}", "evaluation.js"), ($"/runs/{id}/flagged", "flagged.js"), ($"/runs/{id}/record", "record.js"),
        })
        {
            using var page = await GetAsync(server, path);
            Assert.Equal(HttpStatusCode.OK, page.StatusCode);
            Assert.Contains($"<script src=\"/assets/{script}\" defer></script>", await page.Content.ReadAsStringAsync(), StringComparison.Ordinal);
            Assert.Contains("script-src 'self'", page.Headers.GetValues("Content-Security-Policy").Single(), StringComparison.Ordinal);
            using var asset = await GetAsync(server, $"/assets/{script}");
            Assert.Equal(HttpStatusCode.OK, asset.StatusCode);
        }

        foreach (var path in new[] { "/evaluations/x", "/runs/x/flagged", "/runs/x/record" })
        {
            using var page = await GetAsync(server, path);
            Assert.Equal(HttpStatusCode.NotFound, page.StatusCode);
        }
    }

    private sealed record Seeded(Guid RunId, string ModelId, Guid EvaluationId, Inference.Evaluation.EvaluationResult Result);

    private static string RecordId(Guid runId, int i) => $"rev-{runId:N}/rec{i:D2}";

    /// <summary>AF's probability of record i: i / 40, except records 25 and 26, which tie at 0.6.</summary>
    private static float AfProbability(int i) => i is 25 or 26 ? 0.6f : i / 40f;

    private static float Sample(int record, int lead, int i) =>
        (float)((0.8 * Math.Sin((2 * Math.PI * 1.1 * i / 500.0) + lead)) - (0.05 * lead) + (0.001 * record));

    /// <summary>
    /// A run of 30 records (AF probability <see cref="AfProbability"/>, NORM 0.9), evaluated against diagnoses where
    /// AF is records 18 and up and NORM everyone; its model's active set puts AF at 0.5. Records 29 and 28 have blobs
    /// (28's rewritten since it was scored), 27 has none, 26's blob is not an array.
    /// </summary>
    private async Task<Seeded> SeedAsync()
    {
        var modelId = "review-model-" + Guid.NewGuid().ToString("N")[..8];
        var store = new RunStore(database.DataSource);
        var runId = await Runs.SubmitAsync(store, TestModels.Descriptor(modelId), blobs.ContainerName, "rev/", shardSize: 10);
        var etags = new Dictionary<int, string>();
        foreach (var r in new[] { 29, 28 })
        {
            var data = new float[12 * Samples];
            for (var lead = 0; lead < 12; lead++)
            {
                for (var i = 0; i < Samples; i++)
                {
                    data[(lead * Samples) + i] = Sample(r, lead, i);
                }
            }

            var uploaded = await blobs.Container.GetBlobClient(RecordId(runId, r) + ".npy").UploadAsync(new BinaryData(SyntheticCohort.NpyBytes(data, 12, Samples)));
            etags[r] = uploaded.Value.ETag.ToString("H");
        }

        await blobs.Container.GetBlobClient(RecordId(runId, 26) + ".npy").UploadAsync(new BinaryData("not an array"u8.ToArray()));
        etags[28] = "\"scored-version\"";

        var at = DateTime.UtcNow;
        var rows = Enumerable.Range(0, Records).Select(i =>
        {
            var p = new float[164];
            Array.Fill(p, 0.01f + (0.001f * i));
            p[Norm] = 0.9f;
            p[Af] = AfProbability(i);
            return new ScoreRow(modelId, RecordId(runId, i), runId, p, [0.5f], 2, RecordId(runId, i) + ".npy", etags.GetValueOrDefault(i, "\"e\""), at);
        }).ToList();
        await new ResultWriter(database.DataSource).WriteScoresAsync(rows, "worker-r");

        var diagnoses = Enumerable.Range(0, Records).ToDictionary(i => RecordId(runId, i), i => i >= 18 ? new[] { "AF", "NORM" } : ["NORM"]);
        var (evaluationId, result) = await ReviewSeed.EvaluateRunAsync(database.DataSource, runId, diagnoses);
        await ReviewSeed.ActivateThresholdsAsync(database.DataSource, modelId, "review", ("AF", 0.5f));
        return new Seeded(runId, modelId, evaluationId, result);
    }

    private static async Task<HttpResponseMessage> GetAsync(DashboardServer server, string path)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, path);
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", Token);
        return await server.Client.SendAsync(request);
    }

    private static async Task<JsonElement> GetJsonAsync(DashboardServer server, string path)
    {
        using var response = await GetAsync(server, path);
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, $"{path}: {(int)response.StatusCode} {body}");
        using var document = JsonDocument.Parse(body);
        return document.RootElement.Clone();
    }

    private static async Task AssertErrorAsync(DashboardServer server, string path, HttpStatusCode status, string message)
    {
        using var response = await GetAsync(server, path);
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(status == response.StatusCode, $"{path}: expected {(int)status}, got {(int)response.StatusCode} {body}");
        using var document = JsonDocument.Parse(body);
        Assert.Contains(message, document.RootElement.GetProperty("error").GetString(), StringComparison.Ordinal);
    }
}
