using System.Net;
using System.Net.Http.Headers;
using System.Text.RegularExpressions;
using HubertEcg.Grains;
using HubertEcg.Integration.Tests.Scoring;
using HubertEcg.Storage;
using HubertEcg.Testing;
using Microsoft.Playwright;
using static Microsoft.Playwright.Assertions;

namespace HubertEcg.Integration.Tests.Dashboard;

/// <summary>
/// The dashboard end to end: the real silo program with the dashboard on (token required, port chosen by the OS),
/// a small run over a synthetic cohort with corrupt records and a tiny model, and a real headless Chromium (Debian's
/// <c>/usr/bin/chromium</c>, driven by Playwright, never a downloaded browser) signing in and reading the pages as a
/// person would. Screenshots go to <c>.local/test-results/dashboard-*.png</c>.
/// </summary>
public sealed partial class DashboardBrowserTests(PostgresDatabaseFixture database, BlobContainerFixture blobs)
    : IClassFixture<PostgresDatabaseFixture>, IClassFixture<BlobContainerFixture>
{
    private const string Chromium = "/usr/bin/chromium";
    private const string Token = "browser-test-token-0123456789";

    // Hostile on purpose: were it ever put into the page as HTML, the image's handler would set window.__pwned.
    private const string RunName = "<img src=x onerror=\"window.__pwned=1\"> nightly & \"cohort\" </td>";

    /// <summary>
    /// How long any wait of this test may take: for the silo's dashboard, the browser, a page, and every
    /// <c>Expect</c> assertion, which polls until its condition holds (the run reaching 100% included). A busy machine
    /// is slow, not wrong; the waits end as soon as their condition holds.
    /// </summary>
    private static readonly TimeSpan Patience = TimeSpan.FromMinutes(3);

    [Fact]
    public async Task APersonSeesTheRunReach100PercentAndTheQuarantineReasons()
    {
        Assert.True(
            File.Exists(Chromium),
            $"Chromium is not installed at {Chromium}: install the Debian package (apt-get install -y chromium; infra/test.sh does it through infra/prereqs.sh)");
        using var model = new TinyModel(seed: 23);
        var cohort = await SyntheticCohort.UploadAsync(blobs.Container, "dash/", 24);
        using var silo = SiloProcess.Start(
            "dash-" + Guid.NewGuid().ToString("N")[..8],
            "dash0",
            database.ConnectionString,
            blobs.ConnectionString,
            new Dictionary<string, string>
            {
                ["Dashboard:Enabled"] = "true",
                ["Dashboard:Urls"] = "http://127.0.0.1:0",
                ["Dashboard:Token"] = Token,
                ["Logging:LogLevel:HubertEcg.Silo.Dashboard"] = "Information",
            });
        var listening = await silo.WaitForLogAsync(ListeningPattern(), Patience);
        var site = new Uri(listening.Groups["url"].Value);

        // Over plain HTTP first: the API and the Orleans Dashboard want the token.
        using (var http = new HttpClient { BaseAddress = site })
        {
            using var anonymous = await http.GetAsync("/api/runs");
            Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);
            using var orleansAnonymous = await http.GetAsync("/orleans/ClusterStats");
            Assert.Equal(HttpStatusCode.Unauthorized, orleansAnonymous.StatusCode);
            http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", Token);
            using var orleans = await http.GetAsync("/orleans/ClusterStats");
            Assert.Equal(HttpStatusCode.OK, orleans.StatusCode);
        }

        var profile = Path.Combine(Path.GetTempPath(), "hubert-chromium-" + Guid.NewGuid().ToString("N"));
        var shots = Path.Combine(RepoPaths.Root, ".local", "test-results");
        Directory.CreateDirectory(shots);
        try
        {
            Environment.SetEnvironmentVariable("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1");

            // Expect's own default is 5 s whatever the page's default timeout: every assertion gets the test's patience.
            // (A process-wide setting; this is the only test that drives a browser.)
            SetDefaultExpectTimeout((float)Patience.TotalMilliseconds);
            using var playwright = await Playwright.CreateAsync();
            await using var browser = await playwright.Chromium.LaunchPersistentContextAsync(profile, new BrowserTypeLaunchPersistentContextOptions
            {
                ExecutablePath = Chromium,
                Headless = true,
                Timeout = (float)Patience.TotalMilliseconds,
                Args =
                [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                ],
                ViewportSize = new ViewportSize { Width = 1360, Height = 900 },
            });
            var page = browser.Pages.Count > 0 ? browser.Pages[0] : await browser.NewPageAsync();
            page.SetDefaultTimeout((float)Patience.TotalMilliseconds);

            // Not signed in: the runs list sends the person to the login form, which brings them back.
            await page.GotoAsync(site.ToString());
            await Expect(page).ToHaveURLAsync(new Regex("/login\\?return=%2F$"));
            await page.Locator("#token").FillAsync(Token);
            await page.Locator("form button[type=submit]").ClickAsync();
            await Expect(page.Locator("h1")).ToHaveTextAsync("Runs");

            // The run is submitted while the list is open: it appears and fills up by itself.
            var store = new RunStore(database.DataSource);
            var runId = await Runs.SubmitAsync(store, model.Descriptor, blobs.ContainerName, "dash/", shardSize: 5, modelPath: model.Path, name: RunName);
            var row = page.Locator($"tr[data-run-id='{runId}']");
            await Expect(row.Locator("a.run-name")).ToHaveTextAsync(RunName);
            await Expect(row.Locator(".percent")).ToHaveTextAsync("100%");
            await Expect(row.Locator(".badge")).ToHaveTextAsync("completed");
            await Expect(row.Locator("td").Nth(5)).ToHaveTextAsync("done");
            await page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(shots, "dashboard-runs.png"), FullPage = true });

            var run = await store.GetRunAsync(runId);
            Assert.Equal(RunState.Completed, run!.State);
            Assert.Equal(cohort.GoodRecords.Count, run.RecordsDone);
            Assert.Equal(cohort.CorruptRecords.Count, run.RecordsQuarantined);

            // The run's own page.
            await row.Locator("a.run-name").ClickAsync();
            await Expect(page).ToHaveURLAsync(new Uri(site, $"/runs/{runId}").ToString());
            await Expect(page.Locator("#run-name")).ToHaveTextAsync(RunName);
            await Expect(page.Locator("#run-progress .percent")).ToHaveTextAsync("100%");
            await Expect(page.Locator("#run-state")).ToHaveTextAsync("completed");
            var stats = page.Locator("#run-stats");
            await Expect(stats.Locator("dt:text-is('Scored') + dd")).ToHaveTextAsync(cohort.GoodRecords.Count.ToString(System.Globalization.CultureInfo.InvariantCulture));
            await Expect(stats.Locator("dt:text-is('Quarantined') + dd")).ToHaveTextAsync(cohort.CorruptRecords.Count.ToString(System.Globalization.CultureInfo.InvariantCulture));

            // Every quarantine reason the silo wrote is in the table, as text.
            var reasons = await QuarantineReasonsAsync(runId);
            Assert.Contains(reasons, r => r.Contains("no reader", StringComparison.Ordinal)); // the orphan .dat
            foreach (var reason in reasons)
            {
                await Expect(page.Locator("#quarantine td.reason").GetByText(reason, new LocatorGetByTextOptions { Exact = true })).ToBeVisibleAsync();
            }

            await Expect(page.Locator("#quarantine tbody tr")).ToHaveCountAsync(reasons.Count);
            await Expect(page.Locator("#chart svg rect").First).ToBeVisibleAsync();
            await Expect(page.Locator("#workers tbody td.mono").First).ToContainTextAsync("dash0");
            await Expect(page.Locator("#shards dt:text-is('done') + dd")).ToHaveTextAsync(run.ShardsDone.ToString(System.Globalization.CultureInfo.InvariantCulture));
            await Expect(page.Locator("#prevalence tbody tr")).ToHaveCountAsync(25);
            await page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(shots, "dashboard-run.png"), FullPage = true });

            // The hostile name stayed text: no image element was made and its handler never ran.
            Assert.Equal(0, await page.Locator("img").CountAsync());
            Assert.True(await page.EvaluateAsync<bool>("() => window.__pwned === undefined"));

            // The Orleans Dashboard, through the same sign-in.
            var counters = page.WaitForResponseAsync(r => r.Url.Contains("/orleans/DashboardCounters", StringComparison.Ordinal) && r.Status == 200);
            await page.GotoAsync(new Uri(site, "/orleans/").ToString());
            await counters;
            await Expect(page).ToHaveTitleAsync("Orleans Dashboard");
            await page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(shots, "dashboard-orleans.png") });
        }
        finally
        {
            if (Directory.Exists(profile))
            {
                Directory.Delete(profile, recursive: true);
            }
        }
    }

    [Fact]
    public void ASiloAskedToServeTheDashboardToTheNetworkWithoutATokenRefusesToStart()
    {
        using var silo = SiloProcess.Start(
            "dash-" + Guid.NewGuid().ToString("N")[..8],
            "exposed",
            database.ConnectionString,
            blobs.ConnectionString,
            new Dictionary<string, string> { ["Dashboard:Enabled"] = "true", ["Dashboard:Urls"] = "http://0.0.0.0:0" });

        Assert.Equal(2, silo.WaitForExit(TimeSpan.FromMinutes(1)));
        Assert.Contains(
            "configuration refused: Dashboard:Urls asks to listen on 'http://0.0.0.0:0', which other machines can reach, but Dashboard:Token is not set",
            silo.Log,
            StringComparison.Ordinal);
    }

    private async Task<List<string>> QuarantineReasonsAsync(Guid runId)
    {
        await using var cmd = database.DataSource.CreateCommand("select distinct reason from quarantine where run_id = @run");
        cmd.Parameters.AddWithValue("run", runId);
        await using var reader = await cmd.ExecuteReaderAsync();
        var reasons = new List<string>();
        while (await reader.ReadAsync())
        {
            reasons.Add(reader.GetString(0));
        }

        return reasons;
    }

    [GeneratedRegex(@"Dashboard listening on (?<url>http://127\.0\.0\.1:[0-9]+)")]
    private static partial Regex ListeningPattern();
}
