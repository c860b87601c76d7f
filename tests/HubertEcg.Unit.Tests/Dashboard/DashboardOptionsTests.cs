using System.Net;
using HubertEcg.Silo.Dashboard;
using HubertEcg.Storage;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace HubertEcg.Unit.Tests.Dashboard;

/// <summary>The dashboard's bind and token rules and its access check (pure logic, no server).</summary>
public sealed class DashboardOptionsTests
{
    private const string Token = "0123456789abcdef0123";

    [Theory]
    [InlineData("http://127.0.0.1:8480", "127.0.0.1", false, 8480)]
    [InlineData("http://127.0.0.1:0", "127.0.0.1", false, 0)]
    [InlineData("http://127.3.4.5:80/", "127.3.4.5", false, 80)]
    [InlineData("http://[::1]:9000", "::1", false, 9000)]
    [InlineData("https://localhost:8443", null, true, 8443)]
    [InlineData("http://LOCALHOST", null, true, 80)]
    public void LoopbackAddressesNeedNoToken(string url, string? address, bool localhost, int port)
    {
        var endpoint = Assert.Single(Load(url, token: "").Endpoints());

        Assert.True(endpoint.IsLoopback);
        Assert.Equal(address is null ? null : IPAddress.Parse(address), endpoint.Address);
        Assert.Equal(localhost, endpoint.Localhost);
        Assert.Equal(port, endpoint.Port);
        Assert.Equal(url.StartsWith("https", StringComparison.Ordinal), endpoint.Https);
    }

    [Theory]
    [InlineData("http://0.0.0.0:8480")]
    [InlineData("http://[::]:8480")]
    [InlineData("http://*:8480")]
    [InlineData("http://+:8480")]
    [InlineData("http://192.168.1.20:8480")]
    [InlineData("http://10.0.0.5")]
    [InlineData("http://dashboard.example.org:8480")]
    [InlineData("http://127.0.0.1:8480;http://0.0.0.0:8481")]
    public void AnAddressOtherMachinesReachIsRefusedWithoutAToken(string urls)
    {
        var problem = Assert.Single(Load(urls, token: "").Problems());

        Assert.Contains("Dashboard:Token is not set", problem, StringComparison.Ordinal);
        Assert.Contains("HUBERTECG_Dashboard__Token", problem, StringComparison.Ordinal);
        Assert.Contains(urls.Split(';')[^1], problem, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("http://0.0.0.0:8480", true)]
    [InlineData("http://*:8480", true)]
    [InlineData("http://192.168.1.20:8480", false)]
    [InlineData("http://dashboard.example.org:8480", true)]
    public void WithATokenAnyAddressMayBeBound(string url, bool anyAddress)
    {
        var endpoint = Assert.Single(Load(url, Token).Endpoints());

        Assert.False(endpoint.IsLoopback);
        Assert.Equal(anyAddress, endpoint.AnyAddress);
    }

    [Theory]
    [InlineData("short-token")]
    [InlineData("                    ")]
    public void AShortOrBlankTokenIsRefused(string token)
    {
        var problem = Assert.Single(Load("http://127.0.0.1:8480", token).Problems());

        Assert.Contains($"at least {DashboardOptions.MinimumTokenLength} characters", problem, StringComparison.Ordinal);
        if (token.Trim().Length > 0)
        {
            Assert.DoesNotContain(token, problem, StringComparison.Ordinal); // a secret is never echoed
        }
    }

    [Theory]
    [InlineData("", "Dashboard:Urls is empty")]
    [InlineData("127.0.0.1:8480", "is not an address of the form")]
    [InlineData("ftp://127.0.0.1:21", "is not an address of the form")]
    [InlineData("http://127.0.0.1:8480/dashboard", "is not an address of the form")]
    [InlineData("http://127.0.0.1:70000", "not between 0 and 65535")]
    [InlineData("http://[not-ipv6]:80", "not an address of the form")]
    [InlineData("http://[fe80::zz]:80", "is not an IPv6 address")]
    [InlineData("http://localhost:0", "use http://127.0.0.1:0")]
    public void MalformedUrlsAreRefusedWithTheReason(string urls, string reason)
    {
        var problem = Assert.Single(Load(urls, Token).Problems());

        Assert.Contains(reason, problem, StringComparison.Ordinal);
        Assert.Contains(reason, Assert.Throws<InvalidOperationException>(() => Load(urls, Token).Endpoints()).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ADisabledDashboardIsNotChecked()
    {
        using var app = Dashboard(new() { ["Dashboard:Urls"] = "http://0.0.0.0:1", ["Kestrel:Endpoints:Open:Url"] = "http://0.0.0.0:5000" });
        app.Services.GetRequiredService<IStartupValidator>().Validate();

        Assert.False(app.Services.GetRequiredService<IOptions<DashboardOptions>>().Value.Enabled);
    }

    [Fact]
    public async Task ADisabledDashboardOpensNoListenerWhateverAspNetIsAskedFor()
    {
        var builder = WebApplication.CreateBuilder();
        builder.Logging.ClearProviders();
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["urls"] = "http://127.0.0.1:0",
            ["Postgres:ConnectionString"] = "Host=unused",
        });
        builder.AddHubertEcgDashboard();
        await using var app = builder.Build();
        await app.StartAsync();
        try
        {
            var server = Assert.IsType<DashboardHttpServer>(app.Services.GetRequiredService<IServer>());
            Assert.Empty(server.Features.Get<IServerAddressesFeature>()!.Addresses);
        }
        finally
        {
            await app.StopAsync();
        }
    }

    [Fact]
    public void KestrelEndpointsThatBypassTheCheckAreRefused()
    {
        using var app = Dashboard(new() { ["Dashboard:Enabled"] = "true", ["Kestrel:Endpoints:Open:Url"] = "http://0.0.0.0:5000" });

        var e = Assert.Throws<OptionsValidationException>(() => app.Services.GetRequiredService<IStartupValidator>().Validate());
        Assert.Contains("Kestrel:Endpoints is set", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void TheSectionIsBoundOnceAndEveryProblemIsRefusedAtStartOnOneLine()
    {
        // Registered twice, bound and checked once: each problem is reported once.
        using var app = Dashboard(new() { ["Dashboard:Enabled"] = "true", ["Dashboard:Urls"] = "http://0.0.0.0:8480;ftp://x", ["Dashboard:Token"] = "short-token" }, registrations: 2);

        var e = Assert.Throws<OptionsValidationException>(() => app.Services.GetRequiredService<IStartupValidator>().Validate());
        Assert.Equal(2, e.Failures.Count());
        var line = ValidatedOptions.RefusalReasons(e);
        Assert.NotNull(line);
        Assert.DoesNotContain('\n', line);
        Assert.Contains("Dashboard:Token must be at least", line, StringComparison.Ordinal);
        Assert.Contains("'ftp://x' is not an address", line, StringComparison.Ordinal);
        Assert.DoesNotContain("short-token", line, StringComparison.Ordinal);
    }

    [Fact]
    public void TheDefaultIsLoopbackWithoutAToken()
    {
        using var app = Dashboard(new() { ["Dashboard:Enabled"] = "true" });
        app.Services.GetRequiredService<IStartupValidator>().Validate();
        var options = app.Services.GetRequiredService<IOptions<DashboardOptions>>().Value;

        Assert.False(options.TokenRequired);
        Assert.Equal(IPAddress.Loopback, Assert.Single(options.Endpoints()).Address);
    }

    [Fact]
    public void TheTokenIsAcceptedAsBearerOrSessionCookieOnly()
    {
        var access = Access(Token);

        Assert.True(access.TokenMatches(Token));
        Assert.False(access.TokenMatches(Token + "x"));
        Assert.False(access.TokenMatches(Token[..^1]));
        Assert.False(access.TokenMatches(""));
        Assert.False(access.TokenMatches(null));
        Assert.True(access.IsAuthorized(Request(authorization: $"Bearer {Token}")));
        Assert.True(access.IsAuthorized(Request(authorization: $"bearer {Token}")));
        Assert.False(access.IsAuthorized(Request(authorization: $"Basic {Token}")));
        Assert.False(access.IsAuthorized(Request(authorization: "Bearer wrong-token-wrong-token")));
        Assert.False(access.IsAuthorized(Request()));
        var session = access.StartSession();
        Assert.True(access.IsAuthorized(Request(cookie: session)));
        Assert.False(access.IsAuthorized(Request(cookie: Token))); // the cookie is not the token itself
        Assert.DoesNotContain(Token, session, StringComparison.Ordinal);
        Assert.NotEqual(session, access.StartSession()); // random per sign-in, not derived from the token
        Assert.False(Access(Token).IsAuthorized(Request(cookie: session))); // another silo (or a restart) knows nothing of it
        Assert.True(Access("").IsAuthorized(Request()));
    }

    [Fact]
    public void ASessionEndsWhenItsLifetimeHasPassedFromTheSignIn()
    {
        var clock = new ManualClock();
        var access = new DashboardAccess(Token, TimeSpan.FromHours(8), clock);
        var session = access.StartSession();

        clock.Advance(TimeSpan.FromHours(8) - TimeSpan.FromSeconds(1));
        Assert.True(access.IsAuthorized(Request(cookie: session)));
        clock.Advance(TimeSpan.FromSeconds(1));
        Assert.False(access.IsAuthorized(Request(cookie: session)));

        // Expired sessions are dropped, so the table holds the live ones only.
        var live = access.StartSession();
        Assert.Equal(1, access.SessionCount);
        Assert.True(access.IsLiveSession(live));
    }

    [Fact]
    public void SigningOutEndsTheSessionForEveryCopyOfTheCookie()
    {
        var access = Access(Token);
        var session = access.StartSession();
        var other = access.StartSession();

        Assert.True(access.EndSession(session));
        Assert.False(access.IsAuthorized(Request(cookie: session)));
        Assert.True(access.IsAuthorized(Request(cookie: other))); // another person's sign-in stays
        Assert.False(access.EndSession(session));
        Assert.False(access.EndSession(null));
    }

    [Theory]
    [InlineData("00:00:59", false)]
    [InlineData("00:01:00", true)]
    [InlineData("08:00:00", true)]
    [InlineData("7.00:00:00", true)]
    [InlineData("7.00:00:01", false)]
    public void TheSessionLifetimeIsBetweenAMinuteAndAWeek(string lifetime, bool accepted)
    {
        var options = new DashboardOptions { Enabled = true, SessionLifetime = TimeSpan.Parse(lifetime, System.Globalization.CultureInfo.InvariantCulture) };

        Assert.Equal(accepted, !options.Problems().Any(p => p.StartsWith("Dashboard:SessionLifetime", StringComparison.Ordinal)));
    }

    [Theory]
    [InlineData("/api/runs?token=abc", "token")]
    [InlineData("/?Access_Token=abc", "Access_Token")]
    [InlineData("/runs/1?x=1&bearer=abc", "bearer")]
    [InlineData("/api/runs?limit=5", null)]
    [InlineData("/login?failed=1&return=%2F", null)]
    public void ACredentialInTheQueryStringIsRecognised(string url, string? parameter)
    {
        var context = new DefaultHttpContext();
        var question = url.IndexOf('?', StringComparison.Ordinal);
        context.Request.Path = url[..question];
        context.Request.QueryString = new QueryString(url[question..]);

        Assert.Equal(parameter, DashboardAccess.CredentialInQuery(context.Request));
    }

    [Theory]
    [InlineData("http://127.0.0.1:8480/", null)]
    [InlineData("http://127.0.0.2:8480", null)] // 127.0.0.0/8 is loopback (IPAddress.IsLoopback)
    [InlineData("http://[::1]:8480", null)]
    [InlineData("http://localhost:8480", null)]
    [InlineData("http://0.0.0.0:8480", "http://0.0.0.0:8480")]
    [InlineData("http://[::]:8480", "http://[::]:8480")]
    [InlineData("http://192.168.1.20:8480", "http://192.168.1.20:8480")]
    [InlineData("http://silo-1.example:8480", "http://silo-1.example:8480")]
    public void EveryAddressKestrelBoundMustBeLoopbackWithoutAToken(string bound, string? exposed)
    {
        var tokenless = new DashboardOptions { Enabled = true };
        var withToken = new DashboardOptions { Enabled = true, Token = Token };

        Assert.Equal(exposed, DashboardHttpServer.ExposedWithoutToken(tokenless, ["http://127.0.0.1:1", bound]));
        Assert.Null(DashboardHttpServer.ExposedWithoutToken(withToken, ["http://127.0.0.1:1", bound]));
    }

    [Theory]
    [InlineData("localhost:8480", true)]
    [InlineData("127.0.0.1:8480", true)]
    [InlineData("[::1]:8480", true)]
    [InlineData("LocalHost", true)]
    [InlineData("evil.example:8480", false)]
    [InlineData("192.168.1.20:8480", false)]
    [InlineData("", false)]
    public void WithoutATokenOnlyLoopbackHostNamesAreServed(string host, bool served)
    {
        Assert.Equal(served, DashboardAccess.IsLoopbackHost(new HostString(host)));
    }

    [Theory]
    [InlineData("/runs/1?x=2", "/runs/1?x=2")]
    [InlineData("/", "/")]
    [InlineData("//evil.example/", "/")]
    [InlineData("/\\evil.example", "/")]
    [InlineData("https://evil.example/", "/")]
    [InlineData("javascript:alert(1)", "/")]
    [InlineData("/runs\r\nSet-Cookie: x=1", "/")]
    [InlineData(null, "/")]
    [InlineData("/runs/é?x=ü", "/runs/%C3%A9?x=%C3%BC")] // a Location header holds ASCII only: encoded, not a 500
    [InlineData("/\u2028x", "/%E2%80%A8x")]
    [InlineData("/a\\b", "/")]
    public void LoginReturnsOnlyToAPathOnThisServer(string? path, string expected)
    {
        Assert.Equal(expected, DashboardWeb.LocalPath(path));
    }

    [Fact]
    public void ALoginReturnWithAnUnpairedSurrogateGoesHome()
    {
        // Built here: an attribute argument cannot carry an unpaired surrogate (it is stored as UTF-8).
        Assert.Equal("/", DashboardWeb.LocalPath("/runs/" + (char)0xD800));
        Assert.Equal("/runs/%EF%BF%BD", DashboardWeb.LocalPath("/runs/\uFFFD")); // a real replacement character is text
    }

    private static DashboardAccess Access(string token) => new(token, TimeSpan.FromHours(8), TimeProvider.System);

    private static DashboardOptions Load(string urls, string token) => new() { Enabled = true, Urls = urls, Token = token };

    /// <summary>The dashboard registered on a web application as the silo does it (built, not started).</summary>
    private static WebApplication Dashboard(Dictionary<string, string?> values, int registrations = 1)
    {
        var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions());
        builder.WebHost.UseKestrelCore();
        builder.Configuration.AddInMemoryCollection(values);
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?> { ["Postgres:ConnectionString"] = "Host=unused" });
        for (var i = 0; i < registrations; i++)
        {
            builder.AddHubertEcgDashboard();
        }

        return builder.Build();
    }

    private static HttpRequest Request(string? authorization = null, string? cookie = null)
    {
        var context = new DefaultHttpContext();
        if (authorization is not null)
        {
            context.Request.Headers.Authorization = authorization;
        }

        if (cookie is not null)
        {
            context.Request.Headers.Cookie = $"{DashboardAccess.CookieName}={cookie}";
        }

        return context.Request;
    }

    /// <summary>A clock that moves only when told to.</summary>
    private sealed class ManualClock : TimeProvider
    {
        private DateTimeOffset _now = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);

        public override DateTimeOffset GetUtcNow() => _now;

        public void Advance(TimeSpan by) => _now += by;
    }
}
