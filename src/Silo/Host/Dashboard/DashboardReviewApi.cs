using System.Globalization;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Routing;

namespace HubertEcg.Silo.Dashboard;

/// <summary>
/// The JSON API of the evaluation and review pages, read-only like the rest:
/// <list type="bullet">
/// <item><c>GET /api/evaluations[?limit=N]</c>: stored evaluations, newest first.</item>
/// <item><c>GET /api/evaluations/{id}</c>: one evaluation and its labels' metrics with the threshold each is marked at.</item>
/// <item><c>GET /api/evaluations/{id}/curve?label=CODE</c>: a label's stored ROC and precision-recall points.</item>
/// <item><c>GET /api/runs/{id}/flagged?label=CODE[&amp;limit=N][&amp;after_probability=P&amp;after_record=R]</c>: a page of
/// the run's records at or above the label's active threshold, highest first; <c>next</c> holds the keyset of the
/// following page, null on the last.</item>
/// <item><c>GET /api/runs/{id}/record?id=RECORD</c>: a record the run scored: provenance, top findings, and its first
/// 10 s of the 12 standard leads in mV read from storage now, or the problem that prevented it.</item>
/// </list>
/// A malformed id or parameter is a 400, an unknown evaluation, run, label or record a 404, each with
/// <c>{"error": "..."}</c>.
/// </summary>
public static class DashboardReviewApi
{
    /// <summary>Seconds of each lead the record endpoint returns: the 10 s of a standard 12-lead printout.</summary>
    public const double RecordSeconds = 10;

    private const int Findings = 10;

    public static void MapDashboardReviewApi(this RouteGroupBuilder api)
    {
        api.MapGet("/evaluations", async (string? limit, DashboardQueries queries, CancellationToken ct) =>
            DashboardApi.TryIntParameter(limit, "limit", 50, 1, 1000, out var n, out var error)
                ? Results.Json(await queries.EvaluationsAsync(n, ct))
                : DashboardApi.Error(StatusCodes.Status400BadRequest, error));
        api.MapGet("/evaluations/{id}", async (string id, DashboardQueries queries, CancellationToken ct) =>
        {
            if (!TryParseEvaluationId(id, out var evaluationId, out var error))
            {
                return DashboardApi.Error(StatusCodes.Status400BadRequest, error);
            }

            var evaluation = await queries.EvaluationAsync(evaluationId, ct);
            return evaluation is null
                ? NoEvaluation(evaluationId)
                : Results.Json(new { evaluation, labels = await queries.EvaluationLabelsAsync(evaluationId, ct) });
        });
        api.MapGet("/evaluations/{id}/curve", async (string id, string? label, DashboardQueries queries, CancellationToken ct) =>
        {
            if (!TryParseEvaluationId(id, out var evaluationId, out var error) || !TryLabel(label, out error))
            {
                return DashboardApi.Error(StatusCodes.Status400BadRequest, error);
            }

            if (await queries.EvaluationAsync(evaluationId, ct) is null)
            {
                return NoEvaluation(evaluationId);
            }

            return await queries.EvaluationCurveAsync(evaluationId, label!, ct) is { } curve
                ? Results.Json(curve)
                : DashboardApi.Error(StatusCodes.Status404NotFound, $"evaluation {evaluationId} has no label '{Shown(label!)}'");
        });
        api.MapGet("/runs/{id}/flagged", FlaggedAsync);
        api.MapGet("/runs/{id}/record", RecordAsync);
    }

    private static async Task<IResult> FlaggedAsync(
        string id,
        string? label,
        string? limit,
        [FromQuery(Name = "after_probability")] string? afterProbability,
        [FromQuery(Name = "after_record")] string? afterRecord,
        DashboardQueries queries,
        CancellationToken ct)
    {
        if (!DashboardApi.TryParseRunId(id, out var runId, out var error)
            || !TryLabel(label, out error)
            || !DashboardApi.TryIntParameter(limit, "limit", 50, 1, 500, out var n, out error)
            || !TryKeyset(afterProbability, afterRecord, out var after, out error))
        {
            return DashboardApi.Error(StatusCodes.Status400BadRequest, error);
        }

        if (!await queries.RunExistsAsync(runId, ct))
        {
            return DashboardApi.Error(StatusCodes.Status404NotFound, $"there is no run {runId}");
        }

        if (await queries.RunLabelAsync(runId, label!, ct) is not { } labelRow)
        {
            return DashboardApi.Error(StatusCodes.Status404NotFound, $"the model of run {runId} has no label '{Shown(label!)}'");
        }

        // One more row than asked tells whether a next page exists without counting.
        var rows = await queries.FlaggedRecordsAsync(runId, label!, n + 1, after, ct);
        object? next = null;
        if (rows.Count > n)
        {
            rows = rows.Take(n).ToList();
            var last = rows[^1];
            next = new
            {
                after_probability = ((float)last["probability"]!).ToString("R", CultureInfo.InvariantCulture),
                after_record = (string)last["record_id"]!,
            };
        }

        return Results.Json(new { label = labelRow, records = rows, next });
    }

    private static async Task<IResult> RecordAsync(
        string id, HttpRequest request, DashboardQueries queries, DashboardRecords records, CancellationToken ct)
    {
        var recordId = request.Query["id"].ToString();
        if (!DashboardApi.TryParseRunId(id, out var runId, out var error))
        {
            return DashboardApi.Error(StatusCodes.Status400BadRequest, error);
        }

        if (recordId.Length == 0)
        {
            return DashboardApi.Error(StatusCodes.Status400BadRequest, "id is required: the record id, as the run's results name it");
        }

        if (!await queries.RunExistsAsync(runId, ct))
        {
            return DashboardApi.Error(StatusCodes.Status404NotFound, $"there is no run {runId}");
        }

        if (await queries.RunRecordAsync(runId, recordId, ct) is not { } record)
        {
            return DashboardApi.Error(StatusCodes.Status404NotFound, $"run {runId} has no score for record '{Shown(recordId)}'");
        }

        var findings = await queries.RecordFindingsAsync((string)record["model_id"]!, recordId, Findings, ct);
        var stored = (string)record["source_etag"]!;
        var read = await records.ReadAsync((string)record["container"]!, (string)record["source_blob"]!, recordId, ct);
        var source = new
        {
            container = record["container"],
            blob = record["source_blob"],
            stored_version = stored,
            current_version = read.CurrentVersion,
            // Unknown (null) when the version could not be read now, or was not known when the record was scored.
            changed = read.CurrentVersion is null || stored.Length == 0 ? (bool?)null : !string.Equals(read.CurrentVersion, stored, StringComparison.Ordinal),
        };
        return Results.Json(new { record, findings, source, signal = read.Signal is { } s ? Signal(s) : null, problem = read.Problem });
    }

    /// <summary>The first <see cref="RecordSeconds"/> of each standard lead in mV (4 decimals, 0.1 µV); null for a sample the source marked invalid.</summary>
    private static object Signal(Inference.Ecg.EcgSignal signal)
    {
        var count = Math.Min(signal.SampleCount, (int)Math.Round(RecordSeconds * signal.SamplingRate));
        var samples = signal.Leads.Select(lead =>
        {
            var values = new double?[count];
            for (var i = 0; i < count; i++)
            {
                values[i] = double.IsFinite(lead[i]) ? Math.Round(lead[i], 4) : null;
            }

            return values;
        }).ToArray();
        return new
        {
            sampling_rate = signal.SamplingRate,
            leads = signal.LeadNames,
            samples,
            seconds = count / signal.SamplingRate,
            total_seconds = signal.SampleCount / signal.SamplingRate,
        };
    }

    private static IResult NoEvaluation(Guid evaluationId) =>
        DashboardApi.Error(StatusCodes.Status404NotFound, $"there is no evaluation {evaluationId}");

    private static bool TryParseEvaluationId(string id, out Guid evaluationId, out string error)
    {
        error = "";
        if (Guid.TryParse(id, out evaluationId))
        {
            return true;
        }

        error = $"'{Shown(id)}' is not an evaluation id: expected a GUID such as 0f8fad5b-d9cb-469f-a165-70867728950e";
        return false;
    }

    private static bool TryLabel(string? label, out string error)
    {
        error = string.IsNullOrEmpty(label) ? "label is required: a label code such as AF or CRBBB|RBBB" : "";
        return error.Length == 0;
    }

    private static bool TryKeyset(string? probability, string? record, out (float, string)? after, out string error)
    {
        after = null;
        error = "";
        if (probability is null && record is null)
        {
            return true;
        }

        if (probability is null || record is null)
        {
            error = "after_probability and after_record go together: both from the previous page's next, or neither for the first page";
            return false;
        }

        if (!float.TryParse(probability, NumberStyles.Float, CultureInfo.InvariantCulture, out var p) || !(p >= 0 && p <= 1))
        {
            error = $"after_probability must be a probability from 0 to 1, not '{Shown(probability)}'";
            return false;
        }

        after = (p, record);
        return true;
    }

    private static string Shown(string text) => text.Length > 80 ? text[..80] + "..." : text;
}
