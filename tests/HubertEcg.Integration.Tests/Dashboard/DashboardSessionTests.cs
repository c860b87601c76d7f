using System.Net;
using System.Net.Sockets;
using HubertEcg.Integration.Tests.Scoring;
using HubertEcg.Integration.Tests.Telemetry;
using HubertEcg.Silo.Dashboard;
using HubertEcg.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace HubertEcg.Integration.Tests.Dashboard;

/// <summary>
/// The dashboard's operator surface over real HTTP (Kestrel on a port the OS chose, against a real Postgres): sessions
/// that expire and end at sign-out, tokens refused in query strings and kept out of every log line, and a login whose
/// return path is not ASCII (issue 12, finding 7).
/// </summary>
public sealed class DashboardSessionTests(PostgresDatabaseFixture database) : IClassFixture<PostgresDatabaseFixture>
{
    private const string Token = "session-test-token-0123456789";

    [Fact]
    public async Task SigningOutEndsTheSessionSoACopyOfTheCookieOpensNothing()
    {
        await using var server = await DashboardServer.StartAsync(database.ConnectionString, Token);
        var session = await SignInAsync(server);
        using (var before = await GetWithCookieAsync(server, "/api/runs", session))
        {
            Assert.Equal(HttpStatusCode.OK, before.StatusCode);
        }

        using (var logout = new HttpRequestMessage(HttpMethod.Post, "/logout") { Headers = { { "Cookie", session } } })
        using (var signedOut = await server.Client.SendAsync(logout))
        {
            Assert.Equal(HttpStatusCode.Redirect, signedOut.StatusCode);
            Assert.Equal("/login", signedOut.Headers.Location!.OriginalString);
        }

        // The browser dropped its cookie; a copy kept elsewhere (a stolen one) must not work either.
        using var after = await GetWithCookieAsync(server, "/api/runs", session);
        Assert.Equal(HttpStatusCode.Unauthorized, after.StatusCode);
    }

    [Fact]
    public async Task ASessionCookieStopsWorkingWhenTheSessionLifetimeHasPassed()
    {
        var clock = new ManualClock(DateTimeOffset.UtcNow);
        await using var server = await DashboardServer.StartAsync(
            database.ConnectionString,
            Token,
            configure: b =>
            {
                b.Services.AddSingleton<TimeProvider>(clock);
                b.Configuration["Dashboard:SessionLifetime"] = "01:00:00";
            });
        var session = await SignInAsync(server);

        clock.Advance(TimeSpan.FromMinutes(59));
        using (var within = await GetWithCookieAsync(server, "/api/runs", session))
        {
            Assert.Equal(HttpStatusCode.OK, within.StatusCode);
        }

        clock.Advance(TimeSpan.FromMinutes(1));
        using var expired = await GetWithCookieAsync(server, "/api/runs", session);
        Assert.Equal(HttpStatusCode.Unauthorized, expired.StatusCode);
        using var bearer = new HttpRequestMessage(HttpMethod.Get, "/api/runs") { Headers = { { "Authorization", $"Bearer {Token}" } } };
        using var withToken = await server.Client.SendAsync(bearer);
        Assert.Equal(HttpStatusCode.OK, withToken.StatusCode); // the token itself does not expire
    }

    [Fact]
    public async Task ATokenInTheQueryStringIsRefusedAndNeverLogged()
    {
        var logs = new CollectingLoggerProvider();
        await using var server = await DashboardServer.StartAsync(
            database.ConnectionString,
            Token,
            configure: b =>
            {
                // Everything the host would log at any level, as an operator who turned logging up would see it.
                b.Logging.AddProvider(logs);
                b.Logging.SetMinimumLevel(LogLevel.Trace);
            });

        foreach (var path in new[] { $"/api/runs?token={Token}", $"/?access_token={Token}", $"/orleans/?x=1&token={Token}" })
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, path) { Headers = { { "Accept", "text/html" } } };
            using var response = await server.Client.SendAsync(request);
            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
            Assert.Null(response.Headers.Location); // not sent on to /login with the token in its return path
            var body = await response.Content.ReadAsStringAsync();
            Assert.Contains("never accepted in a URL", body, StringComparison.Ordinal);
            Assert.DoesNotContain(Token, body, StringComparison.Ordinal);
        }

        // Even with the token in the header as well: a URL carrying it is refused.
        using (var both = new HttpRequestMessage(HttpMethod.Get, $"/api/runs?token={Token}") { Headers = { { "Authorization", $"Bearer {Token}" } } })
        using (var refused = await server.Client.SendAsync(both))
        {
            Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
        }

        Assert.NotEmpty(logs.Logs); // the host did log (Kestrel, routing): just never the token
        Assert.DoesNotContain(logs.Logs, l => l.AllText.Contains(Token, StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("/runs/é", "/runs/%C3%A9")]
    [InlineData("/runs/心電図?x=ü", "/runs/%E5%BF%83%E9%9B%BB%E5%9B%B3?x=%C3%BC")]
    public async Task ALoginReturnPathThatIsNotAsciiIsARedirectNotAServerError(string back, string location)
    {
        await using var server = await DashboardServer.StartAsync(database.ConnectionString, Token);

        using var signedIn = await server.Client.PostAsync("/login", new FormUrlEncodedContent(new Dictionary<string, string> { ["token"] = Token, ["return"] = back }));
        Assert.Equal(HttpStatusCode.Redirect, signedIn.StatusCode);
        Assert.Equal(location, signedIn.Headers.Location!.OriginalString);

        using var failed = await server.Client.PostAsync("/login", new FormUrlEncodedContent(new Dictionary<string, string> { ["token"] = "wrong-token-wrong-token", ["return"] = back }));
        Assert.Equal(HttpStatusCode.Redirect, failed.StatusCode);
        Assert.Equal("/login?failed=1&return=" + Uri.EscapeDataString(location), failed.Headers.Location!.OriginalString);
    }

    [Fact]
    public async Task WithoutATokenAListenerBeyondLoopbackIsClosedAndRefusedWhoeverOpenedIt()
    {
        // Kestrel told in code to listen on every interface (as a hosting add-in or any other source could): the
        // configuration rules never see it, the check of what Kestrel actually bound does.
        var port = int.Parse(SiloProcess.FreePort(), System.Globalization.CultureInfo.InvariantCulture);
        var refused = await Assert.ThrowsAsync<OptionsValidationException>(() => DashboardServer.StartAsync(
            database.ConnectionString,
            token: "",
            configure: b => b.WebHost.ConfigureKestrel(k => k.ListenAnyIP(port))));

        Assert.Contains($"the web server listened on 'http://[::]:{port}', which other machines can reach, but Dashboard:Token is not set", refused.Message, StringComparison.Ordinal);
        using var probe = new TcpClient();
        var closed = await Assert.ThrowsAsync<SocketException>(() => probe.ConnectAsync("127.0.0.1", port));
        Assert.Equal(SocketError.ConnectionRefused, closed.SocketErrorCode);

        // With a token the same listener is allowed: the token guards it.
        await using var guarded = await DashboardServer.StartAsync(
            database.ConnectionString, Token, configure: b => b.WebHost.ConfigureKestrel(k => k.ListenAnyIP(0)));
    }

    private static async Task<string> SignInAsync(DashboardServer server)
    {
        using var signedIn = await server.Client.PostAsync("/login", new FormUrlEncodedContent(new Dictionary<string, string> { ["token"] = Token, ["return"] = "/" }));
        Assert.Equal(HttpStatusCode.Redirect, signedIn.StatusCode);
        var cookie = Assert.Single(signedIn.Headers.GetValues("Set-Cookie"));
        Assert.StartsWith($"{DashboardAccess.CookieName}=", cookie, StringComparison.Ordinal);
        return cookie.Split(';')[0];
    }

    private static Task<HttpResponseMessage> GetWithCookieAsync(DashboardServer server, string path, string cookie) =>
        server.Client.SendAsync(new HttpRequestMessage(HttpMethod.Get, path) { Headers = { { "Cookie", cookie } } });

    /// <summary>A clock that moves only when told to.</summary>
    private sealed class ManualClock(DateTimeOffset start) : TimeProvider
    {
        private DateTimeOffset _now = start;

        public override DateTimeOffset GetUtcNow() => _now;

        public void Advance(TimeSpan by) => _now += by;
    }
}
