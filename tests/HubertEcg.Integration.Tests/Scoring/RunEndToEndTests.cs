using HubertEcg.Grains;
using HubertEcg.Inference.Ecg;
using HubertEcg.Inference.Formats;
using HubertEcg.Inference.Model;
using HubertEcg.Inference.Preprocessing;
using HubertEcg.Storage;
using HubertEcg.Testing;

namespace HubertEcg.Integration.Tests.Scoring;

/// <summary>
/// A whole run on three in-process silos against real Postgres and Azurite, with the real readers, preprocessing and
/// a tiny random-weight ONNX model. The synthetic .npy record count is <c>HUBERT_E2E_RECORDS</c> (default 3000, the
/// issue's acceptance size; about a minute on a busy 2-core machine, most of it uploading the cohort), plus a real
/// PTB-XL WFDB record, a CODE-15% HDF5 shard and corrupt records.
/// </summary>
public sealed class RunEndToEndTests(PostgresDatabaseFixture database, BlobContainerFixture blobs)
    : IClassFixture<PostgresDatabaseFixture>, IClassFixture<BlobContainerFixture>
{
    private static int RecordCount =>
        int.TryParse(Environment.GetEnvironmentVariable("HUBERT_E2E_RECORDS"), out var n) && n > 0 ? n : 3000;

    [Fact]
    public async Task ThreeSilosScoreEveryGoodRecordOnceAndQuarantineTheCorruptOnes()
    {
        using var model = new TinyModel();
        var cohort = await SyntheticCohort.UploadAsync(blobs.Container, "cohort/", RecordCount, mixed: true);
        var store = new RunStore(database.DataSource);
        await using var cluster = await ScoringCluster.StartAsync(
            3, database.ConnectionString, blobs.ConnectionString,
            settings: new Dictionary<string, string?> { ["Coordinator:ListPageSize"] = "97", ["Workers:IntraOpThreads"] = "1" });

        var runId = await Runs.SubmitAsync(store, model.Descriptor, blobs.ContainerName, "cohort/", shardSize: 25, modelPath: model.Path);
        var run = await Runs.WaitFinishedAsync(store, runId, TimeSpan.FromMinutes(10));

        Assert.Equal(RunState.Completed, run.State);
        Assert.Equal(cohort.GoodRecords.Count, run.RecordsDone);
        Assert.Equal(cohort.CorruptRecords.Count, run.RecordsQuarantined);
        Assert.Equal(0, run.RecordsFailed);
        Assert.Equal(run.ShardsPlanned, run.ShardsDone);
        Assert.NotNull(run.FinishedAt);

        // Exactly one score row per good record, 164 probabilities, the model's embedding size.
        var scored = new Dictionary<string, (float[] Probs, float[] Embedding, int Windows, string Etag)>();
        await using (var cmd = database.DataSource.CreateCommand(
            "select record_id, probabilities, score_embedding(embedding, embedding_packed), windows_used, source_etag from scores where run_id = @run"))
        {
            cmd.Parameters.AddWithValue("run", runId);
            await using var reader = await cmd.ExecuteReaderAsync();
            while (await reader.ReadAsync())
            {
                Assert.True(scored.TryAdd(
                    reader.GetString(0),
                    (reader.GetFieldValue<float[]>(1), reader.GetFieldValue<float[]>(2), reader.GetInt32(3), reader.GetString(4))));
            }
        }

        Assert.Equal(cohort.GoodRecords.Order(StringComparer.Ordinal), scored.Keys.Order(StringComparer.Ordinal));
        Assert.All(scored.Values, v =>
        {
            Assert.Equal(164, v.Probs.Length);
            Assert.All(v.Probs, p => Assert.InRange(p, 0f, 1f));
            Assert.Equal(model.Descriptor.HiddenSize, v.Embedding.Length);
            Assert.All(v.Embedding, e => Assert.True(float.IsFinite(e)));
            Assert.Equal(2, v.Windows);
            Assert.False(string.IsNullOrEmpty(v.Etag));
        });

        // One quarantine row per corrupt record, each with its reason.
        var quarantined = new Dictionary<string, string>();
        await using (var cmd = database.DataSource.CreateCommand("select record_id, reason from quarantine where run_id = @run"))
        {
            cmd.Parameters.AddWithValue("run", runId);
            await using var reader = await cmd.ExecuteReaderAsync();
            while (await reader.ReadAsync())
            {
                quarantined.Add(reader.GetString(0), reader.GetString(1));
            }
        }

        Assert.Equal(cohort.CorruptRecords.Order(StringComparer.Ordinal), quarantined.Keys.Order(StringComparer.Ordinal));
        Assert.All(quarantined.Values, reason => Assert.False(string.IsNullOrWhiteSpace(reason)));
        Assert.Contains("no reader", quarantined["cohort/corrupt-orphan"], StringComparison.Ordinal);

        // The real PTB-XL record's row is what the library computes for it offline (mean over its two windows).
        var expected = ScoreOffline(model, RepoPaths.SharedFile("ecg-samples", "ptb-xl", "00001_lr"));
        var row = scored["cohort/ptbxl/00001_lr"];
        Assert.Equal(expected.Probabilities.Length, row.Probs.Length);
        for (var i = 0; i < row.Probs.Length; i++)
        {
            Assert.Equal(expected.Probabilities[i], row.Probs[i], 1e-5f);
        }

        for (var i = 0; i < row.Embedding.Length; i++)
        {
            Assert.Equal(expected.Embedding[i], row.Embedding[i], 1e-4f);
        }
    }

    private static (float[] Probabilities, float[] Embedding) ScoreOffline(TinyModel model, string recordPath)
    {
        var signal = FormatRegistry.Default.Load(recordPath).ToStandard12Lead();
        var windows = new EcgPreprocessor(new EcgPreprocessorOptions { MaxWindows = 4 }).Preprocess(signal);
        using var scorer = new OnnxEcgScorer(model.Path, new ScorerOptions { IntraOpThreads = 1 });
        var hidden = scorer.Model.HiddenSize;
        var labels = scorer.Model.LabelCount;
        var embeddings = new float[windows.WindowCount * hidden];
        var probabilities = new float[windows.WindowCount * labels];
        scorer.Score(windows.Windows, windows.WindowCount, embeddings, probabilities);
        var meanP = new float[labels];
        var meanE = new float[hidden];
        for (var w = 0; w < windows.WindowCount; w++)
        {
            for (var l = 0; l < labels; l++)
            {
                meanP[l] += probabilities[(w * labels) + l] / windows.WindowCount;
            }

            for (var h = 0; h < hidden; h++)
            {
                meanE[h] += embeddings[(w * hidden) + h] / windows.WindowCount;
            }
        }

        return (meanP, meanE);
    }
}

