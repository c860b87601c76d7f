using System.Globalization;
using System.Text;
using HubertEcg.Client.Evaluation;
using HubertEcg.Inference.Evaluation;
using Npgsql;

namespace HubertEcg.Integration.Tests.Dashboard;

/// <summary>
/// What the evaluation and review pages read, made by the product's own paths: a run's stored scores evaluated against
/// a long-layout label file (<see cref="Evaluator"/>, <see cref="EvaluationStore"/>, as <c>hubert-ecg evaluate --run</c>
/// does) and a threshold set fitted by hand and activated (as <c>thresholds activate</c> does).
/// </summary>
public static class ReviewSeed
{
    /// <summary>Evaluates the run's scores against <paramref name="diagnoses"/> (record id to its codes); returns the stored evaluation's id and result.</summary>
    public static async Task<(Guid EvaluationId, EvaluationResult Result)> EvaluateRunAsync(
        NpgsqlDataSource dataSource, Guid runId, IReadOnlyDictionary<string, string[]> diagnoses, int bootstrap = 0)
    {
        var scores = await ScoreSources.ReadRunAsync(dataSource, runId, CancellationToken.None);
        var path = Path.Combine(Path.GetTempPath(), $"hubert-review-labels-{Guid.NewGuid():N}.csv");
        var text = new StringBuilder("record_id,codes\n");
        foreach (var (record, codes) in diagnoses)
        {
            text.Append(record).Append(',').Append(string.Join(';', codes)).Append('\n');
        }

        await File.WriteAllTextAsync(path, text.ToString());
        try
        {
            var labels = LabelFileReader.Read(path, scores);
            var result = Evaluator.Evaluate(scores, labels, new EvaluationOptions(Bootstrap: bootstrap, AllowUnscored: false));
            var id = await new EvaluationStore(dataSource).SaveEvaluationAsync(scores, runId, labels, "labels.csv", result, CancellationToken.None);
            return (id, result);
        }
        finally
        {
            File.Delete(path);
        }
    }

    /// <summary>Stores a threshold set named <paramref name="name"/> for the model with these thresholds and makes it the active one.</summary>
    public static async Task ActivateThresholdsAsync(NpgsqlDataSource dataSource, string modelId, string name, params (string Code, float Threshold)[] thresholds)
    {
        var store = new EvaluationStore(dataSource);
        var (setId, _) = await store.CreateSetAsync(
            modelId, name, ThresholdRule.Parse("youden"), "test", "labels.csv", new string('a', 64), 1,
            thresholds.Select(t => (t.Code, (float?)t.Threshold)).ToList(), CancellationToken.None);
        await store.ActivateAsync(setId, CancellationToken.None);
    }

    public static string Invariant(float value) => value.ToString("R", CultureInfo.InvariantCulture);
}
