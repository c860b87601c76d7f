using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using HubertEcg.Grains;
using HubertEcg.Integration.Tests.Scoring;
using HubertEcg.Silo.Dashboard;
using HubertEcg.Storage;
using HubertEcg.Storage.Access;
using HubertEcg.Testing;
using HubertEcg.Worker;
using Npgsql;

namespace HubertEcg.Integration.Tests.Dashboard;

/// <summary>
/// The dashboard's JSON API and access control over real HTTP (Kestrel on a port the OS chose) against a real Postgres
/// holding a run written through the product's own paths (<see cref="RunStore"/>, <see cref="ResultWriter"/>).
/// </summary>
public sealed class DashboardApiTests(PostgresDatabaseFixture database) : IClassFixture<PostgresDatabaseFixture>
{
    private const string Token = "test-token-0123456789abcdef";
    private const string ModelId = "dashboard-api-model";
    private const string HostileName = "<img src=x onerror=alert(1)> nightly'; drop table runs; --";
    private const string HostileRecord = "p/'); delete from scores; --<script>";
    private const string Reason = "header: lead V4 missing <b>\"quoted\"</b>";

    [Fact]
    public async Task WithoutTheTokenEverythingIs401AndWithItTheApiAnswers()
    {
        var runId = await SeedRunAsync();
        await using var server = await DashboardServer.StartAsync(database.ConnectionString, Token);

        foreach (var path in new[] { "/api/runs", $"/api/runs/{runId}", $"/api/runs/{runId}/quarantine", "/orleans/ClusterStats", "/nothing" })
        {
            using var anonymous = await server.Client.GetAsync(path);
            Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);
            Assert.Equal("Bearer", Assert.Single(anonymous.Headers.WwwAuthenticate).Scheme);
            Assert.Contains("needs its token", (await JsonAsync(anonymous)).GetProperty("error").GetString(), StringComparison.Ordinal);

            using var wrong = await GetAsync(server, path, "not-the-token-not-the-token");
            Assert.Equal(HttpStatusCode.Unauthorized, wrong.StatusCode);
        }

        using var runs = await GetAsync(server, "/api/runs", Token);
        Assert.Equal(HttpStatusCode.OK, runs.StatusCode);
        Assert.Contains((await JsonAsync(runs)).EnumerateArray(), r => r.GetProperty("run_id").GetGuid() == runId);

        // A person's browser is sent to the login form instead, and the form's assets need no token.
        using var page = await server.Client.SendAsync(new HttpRequestMessage(HttpMethod.Get, $"/runs/{runId}") { Headers = { { "Accept", "text/html" } } });
        Assert.Equal(HttpStatusCode.Redirect, page.StatusCode);
        Assert.Equal($"/login?return=%2Fruns%2F{runId}", page.Headers.Location!.OriginalString);
        using var login = await server.Client.GetAsync("/login");
        Assert.Equal(HttpStatusCode.OK, login.StatusCode);
        Assert.Contains("<form method=\"post\" action=\"/login\">", await login.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        using var css = await server.Client.GetAsync("/assets/dashboard.css");
        Assert.Equal(HttpStatusCode.OK, css.StatusCode);
    }

    [Fact]
    public async Task TheLoginFormSetsASessionCookieThatOpensThePages()
    {
        var runId = await SeedRunAsync();
        await using var server = await DashboardServer.StartAsync(database.ConnectionString, Token);

        using var failed = await PostLoginAsync(server, "wrong-token-wrong-token", $"/runs/{runId}");
        Assert.Equal(HttpStatusCode.Redirect, failed.StatusCode);
        Assert.Equal($"/login?failed=1&return=%2Fruns%2F{runId}", failed.Headers.Location!.OriginalString);
        Assert.False(failed.Headers.Contains("Set-Cookie"));

        using var signedIn = await PostLoginAsync(server, Token, $"/runs/{runId}");
        Assert.Equal(HttpStatusCode.Redirect, signedIn.StatusCode);
        Assert.Equal($"/runs/{runId}", signedIn.Headers.Location!.OriginalString);
        var cookie = Assert.Single(signedIn.Headers.GetValues("Set-Cookie"));
        Assert.StartsWith($"{DashboardAccess.CookieName}=", cookie, StringComparison.Ordinal);
        Assert.Contains("httponly", cookie, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("samesite=strict", cookie, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain(Token, cookie, StringComparison.Ordinal);

        var session = cookie.Split(';')[0];
        using var request = new HttpRequestMessage(HttpMethod.Get, $"/runs/{runId}") { Headers = { { "Cookie", session }, { "Accept", "text/html" } } };
        using var page = await server.Client.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        Assert.Contains("script-src 'self'", page.Headers.GetValues("Content-Security-Policy").Single(), StringComparison.Ordinal);
        Assert.Contains("<script src=\"/assets/run.js\" defer></script>", await page.Content.ReadAsStringAsync(), StringComparison.Ordinal);

        using var api = new HttpRequestMessage(HttpMethod.Get, "/api/runs") { Headers = { { "Cookie", session } } };
        using var runs = await server.Client.SendAsync(api);
        Assert.Equal(HttpStatusCode.OK, runs.StatusCode);

        // A login may only send the browser back to this server.
        using var offsite = await PostLoginAsync(server, Token, "//evil.example/");
        Assert.Equal("/", offsite.Headers.Location!.OriginalString);
    }

    [Fact]
    public async Task EachEndpointReturnsItsViewWithNamesAndReasonsVerbatim()
    {
        var runId = await SeedRunAsync();
        await using var server = await DashboardServer.StartAsync(database.ConnectionString, Token);

        var run = await GetJsonAsync(server, $"/api/runs/{runId}");
        Assert.Equal(HostileName, run.GetProperty("name").GetString());
        Assert.Equal("running", run.GetProperty("state").GetString());
        Assert.Equal(12, run.GetProperty("records_planned").GetInt64());
        Assert.Equal(5, run.GetProperty("records_done").GetInt64()); // rows written beat the coordinator's 3
        Assert.Equal(1, run.GetProperty("records_quarantined").GetInt64());
        Assert.Equal(50m, run.GetProperty("percent_done").GetDecimal());
        Assert.Equal(6, run.GetProperty("records_remaining").GetInt64());
        Assert.True(run.GetProperty("rate_last_minute").GetDouble() > 0);

        var listed = (await GetJsonAsync(server, "/api/runs")).EnumerateArray().Single(r => r.GetProperty("run_id").GetGuid() == runId);
        Assert.Equal(HostileName, listed.GetProperty("name").GetString());
        Assert.Equal(50m, listed.GetProperty("percent_done").GetDecimal());

        var throughput = (await GetJsonAsync(server, $"/api/runs/{runId}/throughput")).EnumerateArray()
            .Select(r => (r.GetProperty("worker").GetString(), r.GetProperty("records_scored").GetInt64(), r.GetProperty("records_quarantined").GetInt64()))
            .OrderBy(r => r.Item1, StringComparer.Ordinal)
            .ToList();
        Assert.Equal([("worker-a", 3L, 1L), ("worker-b", 2L, 0L)], throughput);

        var workers = (await GetJsonAsync(server, $"/api/runs/{runId}/workers")).EnumerateArray()
            .Select(w => (w.GetProperty("worker").GetString(), w.GetProperty("shards_leased").GetInt64(), w.GetProperty("shards_done").GetInt64(), w.GetProperty("lease_expired").ValueKind))
            .ToList();
        Assert.Equal([("worker-a", 0L, 1L, JsonValueKind.Null), ("worker-b", 1L, 0L, JsonValueKind.False)], workers);

        var shards = await GetJsonAsync(server, $"/api/runs/{runId}/shards");
        Assert.Equal(
            [1L, 1L, 1L, 0L, 3L, 0L],
            new[] { "pending", "leased", "done", "failed", "total", "expired_leases" }.Select(k => shards.GetProperty(k).GetInt64()));

        var quarantine = Assert.Single((await GetJsonAsync(server, $"/api/runs/{runId}/quarantine")).EnumerateArray());
        Assert.Equal(Reason, quarantine.GetProperty("reason").GetString());
        Assert.Equal(1, quarantine.GetProperty("records").GetInt64());
        Assert.Equal(HostileRecord, quarantine.GetProperty("example_record_id").GetString());

        var prevalence = (await GetJsonAsync(server, $"/api/runs/{runId}/prevalence")).EnumerateArray().ToList();
        Assert.Equal(164, prevalence.Count);
        Assert.Equal(("NORM", 5L, 1.0), (prevalence[0].GetProperty("code").GetString(), prevalence[0].GetProperty("records_positive").GetInt64(), prevalence[0].GetProperty("prevalence").GetDouble()));
        Assert.Equal(("AF", 2L, 0.4), (prevalence[1].GetProperty("code").GetString(), prevalence[1].GetProperty("records_positive").GetInt64(), prevalence[1].GetProperty("prevalence").GetDouble()));
    }

    [Fact]
    public async Task MalformedIdsAre400AndUnknownRunsAre404WithAMessage()
    {
        var runId = await SeedRunAsync();
        await using var server = await DashboardServer.StartAsync(database.ConnectionString, Token);
        var unknown = Guid.NewGuid();

        foreach (var (path, status, message) in new[]
        {
            ("/api/runs/not-a-run", HttpStatusCode.BadRequest, "'not-a-run' is not a run id"),
            ("/api/runs/1'%20or%20'1'='1/quarantine", HttpStatusCode.BadRequest, "'1' or '1'='1' is not a run id"),
            ($"/api/runs/{unknown}", HttpStatusCode.NotFound, $"there is no run {unknown}"),
            ($"/api/runs/{unknown}/throughput", HttpStatusCode.NotFound, $"there is no run {unknown}"),
            ($"/api/runs/{unknown}/workers", HttpStatusCode.NotFound, $"there is no run {unknown}"),
            ($"/api/runs/{unknown}/shards", HttpStatusCode.NotFound, $"there is no run {unknown}"),
            ($"/api/runs/{unknown}/quarantine", HttpStatusCode.NotFound, $"there is no run {unknown}"),
            ($"/api/runs/{unknown}/prevalence", HttpStatusCode.NotFound, $"there is no run {unknown}"),
            ($"/api/runs/{runId}/throughput?minutes=0", HttpStatusCode.BadRequest, "minutes must be a whole number from 1 to 10080"),
            ("/api/runs?limit=1;drop", HttpStatusCode.BadRequest, "limit must be a whole number from 1 to 1000"),
        })
        {
            using var response = await GetAsync(server, path, Token);
            Assert.Equal(status, response.StatusCode);
            Assert.StartsWith(message, (await JsonAsync(response)).GetProperty("error").GetString(), StringComparison.Ordinal);
        }

        // A run that exists but has nothing of a kind yet is an empty list, not a 404.
        var empty = await Runs.SubmitAsync(new RunStore(database.DataSource), TestModels.Descriptor(ModelId), "c", "p/", shardSize: 4);
        Assert.Equal(0, (await GetJsonAsync(server, $"/api/runs/{empty}/quarantine")).GetArrayLength());
    }

    [Fact]
    public async Task AQueryPastTheStatementTimeoutIsA503ThatSaysSo()
    {
        var runId = await SeedRunAsync();
        await using var server = await DashboardServer.StartAsync(database.ConnectionString, Token);

        // Another session holds scores locked, so the flagged page's read of the run's rows waits until the dashboard
        // session's statement timeout stops it (10 s).
        await using var connection = await database.DataSource.OpenConnectionAsync();
        await using var transaction = await connection.BeginTransactionAsync();
        await using (var lockScores = new NpgsqlCommand("lock table scores in access exclusive mode", connection, transaction))
        {
            await lockScores.ExecuteNonQueryAsync();
        }

        using (var response = await GetAsync(server, $"/api/runs/{runId}/flagged?label=AF&after_probability=0.5&after_record=p%2F0", Token))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
            var error = (await JsonAsync(response)).GetProperty("error").GetString()!;
            Assert.StartsWith($"/api/runs/{runId}/flagged: the query ran past the dashboard's limit of 10 s and was stopped", error, StringComparison.Ordinal);
            Assert.DoesNotContain("p/0", error, StringComparison.Ordinal);
        }

        await transaction.RollbackAsync();
        Assert.Equal(JsonValueKind.Object, (await GetJsonAsync(server, $"/api/runs/{runId}/flagged?label=AF")).ValueKind);
    }

    [Fact]
    public async Task WithoutATokenOnlyRequestsForLoopbackHostsAreAnswered()
    {
        await SeedRunAsync();
        await using var server = await DashboardServer.StartAsync(database.ConnectionString, token: "");

        using var runs = await server.Client.GetAsync("/api/runs");
        Assert.Equal(HttpStatusCode.OK, runs.StatusCode);

        // A page whose DNS name was rebound to 127.0.0.1 sends its own name as Host.
        using var rebound = await server.Client.SendAsync(new HttpRequestMessage(HttpMethod.Get, "/api/runs") { Headers = { Host = "evil.example" } });
        Assert.Equal(HttpStatusCode.BadRequest, rebound.StatusCode);
        Assert.Contains("answers only requests for localhost", await rebound.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task TheDashboardReadsAsTheReadOnlyRoleAndItsSessionsCannotWrite()
    {
        var runId = await SeedRunAsync();
        var role = "test_dash_" + Guid.NewGuid().ToString("N")[..12];
        await ExecuteAsync($"create role {role} login in role hubert_dashboard");
        try
        {
            var readOnly = new NpgsqlConnectionStringBuilder(database.ConnectionString) { Username = role }.ConnectionString;
            await using (var server = await DashboardServer.StartAsync(database.ConnectionString, Token, dashboardConnectionString: readOnly))
            {
                foreach (var part in new[] { "", "/throughput", "/workers", "/shards", "/quarantine", "/prevalence" })
                {
                    await GetJsonAsync(server, $"/api/runs/{runId}{part}");
                }

                Assert.Equal(HostileName, (await GetJsonAsync(server, $"/api/runs/{runId}")).GetProperty("name").GetString());
                await using var sessions = database.DataSource.CreateCommand(
                    "select count(*) from pg_stat_activity where usename = @role and application_name = 'hubert-ecg-dashboard'");
                sessions.Parameters.AddWithValue("role", role);
                Assert.True((long)(await sessions.ExecuteScalarAsync())! > 0, "the dashboard did not connect as the read-only role");
            }

            // Even with the writer's own credentials, the dashboard's sessions refuse to write.
            await using var dashboard = DashboardQueries.CreateDataSource(new PostgresConnections(new PostgresOptions { ConnectionString = database.ConnectionString }));
            await using var write = dashboard.CreateCommand("update runs set name = 'changed' where run_id = @run");
            write.Parameters.AddWithValue("run", runId);
            var e = await Assert.ThrowsAsync<PostgresException>(() => write.ExecuteNonQueryAsync());
            Assert.Equal(PostgresErrorCodes.ReadOnlySqlTransaction, e.SqlState);

            // And they give up after 10 s and plan without JIT compilation.
            await using var settings = dashboard.CreateCommand("select current_setting('statement_timeout') || ' ' || current_setting('jit')");
            Assert.Equal("10s off", (string?)await settings.ExecuteScalarAsync());
        }
        finally
        {
            NpgsqlConnection.ClearAllPools();
            await ExecuteAsync($"drop role {role}");
        }
    }

    /// <summary>
    /// A running run of 3 shards of 4 records: shard 0 done by worker-a (3 scored, 1 quarantined), shard 1 leased by
    /// worker-b (2 scored so far), shard 2 pending. Every score is positive for NORM, the first two for AF too.
    /// </summary>
    private async Task<Guid> SeedRunAsync()
    {
        var store = new RunStore(database.DataSource);
        var runId = await Runs.SubmitAsync(store, TestModels.Descriptor(ModelId), "c", "p/", shardSize: 4, name: HostileName);
        var plan = Enumerable.Range(0, 3)
            .Select(n => new ShardRecord(runId, n, ShardKind.Records, [$"p/{n}.hea"], 4, ShardState.Pending, 0, null, null, 0, 0, null))
            .ToList();
        await store.Shards.AppendPlanAsync(runId, plan, null, [], planningComplete: true);
        await store.Shards.SaveAsync(plan[0] with { State = ShardState.Done, Attempts = 1, LeaseOwner = "worker-a", RecordsDone = 3, RecordsQuarantined = 1 });
        await store.Shards.SaveAsync(plan[1] with { State = ShardState.Leased, Attempts = 1, LeaseOwner = "worker-b", LeaseDeadline = DateTime.UtcNow.AddMinutes(10) });

        var now = DateTime.UtcNow;
        var writer = new ResultWriter(database.DataSource);
        await writer.WriteScoresAsync([Score(runId, "a-0", now, af: true), Score(runId, "a-1", now, af: true), Score(runId, "a-2", now, af: false)], "worker-a");
        await writer.WriteQuarantineAsync([new QuarantineRow(runId, HostileRecord, 0, "p/0.hea", Reason, now)], "worker-a");
        await writer.WriteScoresAsync([Score(runId, "b-0", now, af: false), Score(runId, "b-1", now, af: false)], "worker-b");
        await store.SaveProgressAsync(new RunProgressUpdate(runId, RunState.Running, 12, 3, 1, 0, 1, 0, 0, null, null, now.AddMinutes(-1), null));
        return runId;
    }

    private async Task ExecuteAsync(string sql)
    {
        await using var cmd = database.DataSource.CreateCommand(sql);
        await cmd.ExecuteNonQueryAsync();
    }

    private static ScoreRow Score(Guid runId, string record, DateTime at, bool af)
    {
        var probabilities = new float[164];
        Array.Fill(probabilities, 0.01f);
        probabilities[3] = 0.9f; // NORM
        probabilities[50] = af ? 0.7f : 0.2f; // AF
        return new ScoreRow(ModelId, $"{runId:N}/{record}", runId, probabilities, [0.5f], 1, $"p/{record}.hea", "\"etag\"", at);
    }

    private static async Task<HttpResponseMessage> GetAsync(DashboardServer server, string path, string token)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, path);
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return await server.Client.SendAsync(request);
    }

    private static async Task<JsonElement> GetJsonAsync(DashboardServer server, string path)
    {
        using var response = await GetAsync(server, path, Token);
        Assert.True(response.IsSuccessStatusCode, $"{path}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
        return await JsonAsync(response);
    }

    private static async Task<JsonElement> JsonAsync(HttpResponseMessage response)
    {
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        using var document = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        return document.RootElement.Clone();
    }

    private static Task<HttpResponseMessage> PostLoginAsync(DashboardServer server, string token, string back) =>
        server.Client.PostAsync("/login", new FormUrlEncodedContent(new Dictionary<string, string> { ["token"] = token, ["return"] = back }));
}
