using System.Globalization;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Npgsql;

namespace HubertEcg.Silo.Dashboard;

/// <summary>
/// The dashboard's JSON API under <c>/api</c>: the dashboard views, one endpoint each, as arrays of objects whose
/// keys are the views' column names. A malformed run id is a 400, an unknown run a 404, and a query stopped by the
/// dashboard sessions' 10 s <c>statement_timeout</c> a 503, each with <c>{"error": "..."}</c>.
/// </summary>
public static class DashboardApi
{
    public static void MapDashboardApi(this IEndpointRouteBuilder endpoints)
    {
        var api = endpoints.MapGroup("/api");

        // A query past the sessions' statement timeout (DashboardQueries.CreateDataSource) is stopped by Postgres: say so,
        // and what to do, rather than answer 500. Only the path is named: a query string may hold a record id.
        api.AddEndpointFilter(async (context, next) =>
        {
            try
            {
                return await next(context);
            }
            catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.QueryCanceled && !context.HttpContext.RequestAborted.IsCancellationRequested)
            {
                return Error(
                    StatusCodes.Status503ServiceUnavailable,
                    $"{context.HttpContext.Request.Path}: the query ran past the dashboard's limit of {StatementTimeoutSeconds} s and was stopped; " +
                    "the database is busy or locked, or the view reads more rows than fit in that time (a run's flagged records past the " +
                    "top 1,000 of a label, or below a threshold lower than its list holds, are read from all of its rows: for a run of " +
                    "millions, `hubert-ecg results export --run ID` gives every row)");
            }
        });
        api.MapGet("/runs", async (string? limit, DashboardQueries queries, CancellationToken ct) =>
            TryIntParameter(limit, "limit", 50, 1, 1000, out var n, out var error)
                ? Results.Json(await queries.RunsAsync(n, ct))
                : Error(StatusCodes.Status400BadRequest, error));
        api.MapGet("/runs/{id}", (string id, DashboardQueries queries, CancellationToken ct) =>
            ForRunAsync(id, queries, runId => queries.RunAsync(runId, ct), ct));
        api.MapGet("/runs/{id}/throughput", async (string id, string? minutes, DashboardQueries queries, CancellationToken ct) =>
            TryIntParameter(minutes, "minutes", 60, 1, 7 * 24 * 60, out var n, out var error)
                ? await ForRunAsync(id, queries, runId => queries.ThroughputAsync(runId, n, ct), ct)
                : Error(StatusCodes.Status400BadRequest, error));
        api.MapGet("/runs/{id}/workers", (string id, DashboardQueries queries, CancellationToken ct) =>
            ForRunAsync(id, queries, runId => queries.WorkersAsync(runId, ct), ct));
        api.MapGet("/runs/{id}/shards", (string id, DashboardQueries queries, CancellationToken ct) =>
            ForRunAsync(id, queries, runId => queries.ShardsAsync(runId, ct), ct));
        api.MapGet("/runs/{id}/quarantine", (string id, DashboardQueries queries, CancellationToken ct) =>
            ForRunAsync(id, queries, runId => queries.QuarantineAsync(runId, ct), ct));
        api.MapGet("/runs/{id}/prevalence", (string id, DashboardQueries queries, CancellationToken ct) =>
            ForRunAsync(id, queries, runId => queries.PrevalenceAsync(runId, ct), ct));
        api.MapDashboardReviewApi();
    }

    /// <summary>The dashboard sessions' <c>statement_timeout</c>, in seconds.</summary>
    public const int StatementTimeoutSeconds = 10;

    /// <summary>A JSON error body with the given status.</summary>
    public static IResult Error(int status, string message) => Results.Json(new { error = message }, statusCode: status);

    /// <summary>Parses a run id, or says why it is not one (quoting at most 80 characters of it).</summary>
    public static bool TryParseRunId(string id, out Guid runId, out string error)
    {
        error = "";
        if (Guid.TryParse(id, out runId))
        {
            return true;
        }

        var shown = id.Length > 80 ? id[..80] + "..." : id;
        error = $"'{shown}' is not a run id: expected a GUID such as 0f8fad5b-d9cb-469f-a165-70867728950e";
        return false;
    }

    private static async Task<IResult> ForRunAsync<T>(string id, DashboardQueries queries, Func<Guid, Task<T>> read, CancellationToken ct)
    {
        if (!TryParseRunId(id, out var runId, out var error))
        {
            return Error(StatusCodes.Status400BadRequest, error);
        }

        var result = await read(runId);
        if (result is null || (result is IReadOnlyList<Row> { Count: 0 } && !await queries.RunExistsAsync(runId, ct)))
        {
            return Error(StatusCodes.Status404NotFound, $"there is no run {runId}");
        }

        return Results.Json(result);
    }

    /// <summary>An optional whole-number query parameter within [min, max] (the fallback when absent), or the message why not.</summary>
    internal static bool TryIntParameter(string? text, string name, int fallback, int min, int max, out int value, out string error)
    {
        error = "";
        value = fallback;
        if (text is null
            || (int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out value) && value >= min && value <= max))
        {
            return true;
        }

        error = $"{name} must be a whole number from {min} to {max}";
        return false;
    }
}
