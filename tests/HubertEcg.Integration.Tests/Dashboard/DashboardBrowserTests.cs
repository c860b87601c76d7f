using System.Globalization;
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

            await ReviewTheRunAsync(page, site, runId, model.Descriptor.ModelId, shots);

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

    /// <summary>
    /// The run evaluated and given an active threshold for AF, then read as a clinician would: the evaluation page's
    /// table sorted by AUROC both ways, AF's ROC and precision-recall curves with the threshold marked, the records the
    /// run flagged for AF, and the first of them drawn: twelve leads and the rhythm strip, each point where 25 mm/s
    /// and 10 mm/mV put the record's own samples (read here from the blob, independently of the server).
    /// </summary>
    private async Task ReviewTheRunAsync(IPage page, Uri site, Guid runId, string modelId, string shots)
    {
        var af = await ProbabilitiesAsync(runId, "AF");
        var random = new Random(17);
        var codes = new[] { "AF", "NORM", "SBRAD", "STACH", "1AVB", "LVH", "IRBBB", "PAC|SVPB" };
        var diagnoses = af.Keys.ToDictionary(r => r, _ => codes.Where(_ => random.NextDouble() < 0.5).ToArray());
        var (evaluationId, result) = await ReviewSeed.EvaluateRunAsync(database.DataSource, runId, diagnoses);
        var threshold = af.Values.Order().ElementAt(af.Count / 2);
        await ReviewSeed.ActivateThresholdsAsync(database.DataSource, modelId, "browser-" + Guid.NewGuid().ToString("N")[..6], ("AF", threshold));

        // The evaluations list leads to the evaluation's page.
        await page.GotoAsync(new Uri(site, "/evaluations").ToString());
        await page.Locator($"tr[data-evaluation-id='{evaluationId}'] a.run-name").ClickAsync();
        await Expect(page).ToHaveURLAsync(new Uri(site, $"/evaluations/{evaluationId}").ToString());
        var rows = page.Locator("#labels tbody tr");
        await Expect(rows).ToHaveCountAsync(result.Labels.Count);

        // Sorted by AUROC: highest first, labels without one last; again: lowest first, still last.
        var defined = result.Labels.Where(m => m.Auroc is not null).ToList();
        Assert.True(defined.Select(m => m.Auroc).Distinct().Count() > 2, "the seeded diagnoses should give several AUROC values");
        var header = page.Locator("#labels thead th[data-key='auroc']");
        await header.Locator("button").ClickAsync();
        await Expect(header).ToHaveAttributeAsync("aria-sort", "descending");
        await Expect(rows.First.Locator("td[data-key='auroc']")).ToHaveAttributeAsync("data-value", Invariant(defined.Max(m => m.Auroc!.Value)));
        Assert.Equal(defined.Select(m => m.Auroc!.Value).OrderByDescending(v => v), await AurocColumnAsync(page, defined.Count));
        await header.Locator("button").ClickAsync();
        await Expect(header).ToHaveAttributeAsync("aria-sort", "ascending");
        await Expect(rows.First.Locator("td[data-key='auroc']")).ToHaveAttributeAsync("data-value", Invariant(defined.Min(m => m.Auroc!.Value)));
        Assert.Equal(defined.Select(m => m.Auroc!.Value).Order(), await AurocColumnAsync(page, defined.Count));

        // AF's curves, the active threshold marked on both.
        await page.Locator("#labels tbody tr[data-code='AF'] .label-button").ClickAsync();
        await Expect(page.Locator("#curves-card")).ToHaveAttributeAsync("data-code", "AF");
        await Expect(page.Locator("#roc polyline.curve")).ToBeVisibleAsync();
        await Expect(page.Locator("#pr polyline.curve")).ToBeVisibleAsync();
        await Expect(page.Locator("#roc circle.marker")).ToHaveCountAsync(1);
        await Expect(page.Locator("#pr circle.marker")).ToHaveCountAsync(1);
        await Expect(page.Locator("#operating-point")).ToContainTextAsync("Active threshold ≥");
        var curvePoints = result.Labels.Single(m => m.Code == "AF").Curve!.Thresholds.Length;
        Assert.Equal(curvePoints + 1, (await page.Locator("#roc polyline.curve").GetAttributeAsync("points"))!.Split(' ').Length);
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(shots, "dashboard-evaluation.png"), FullPage = true });

        // The records flagged for AF, highest first; the first one opens its ECG.
        await page.GotoAsync(new Uri(site, $"/runs/{runId}/flagged?label=AF").ToString());
        var flagged = af.Where(p => p.Value >= threshold).OrderByDescending(p => p.Value).ThenByDescending(p => p.Key, StringComparer.Ordinal).ToList();
        var firstRow = page.Locator("#flagged tbody tr").First;
        await Expect(firstRow).ToHaveAttributeAsync("data-record-id", flagged[0].Key);
        await Expect(page.Locator("#flagged tbody tr")).ToHaveCountAsync(Math.Min(25, flagged.Count));
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(shots, "dashboard-flagged.png"), FullPage = true });
        await firstRow.Locator("a.record-link").ClickAsync();
        await Expect(page.Locator("#record-id")).ToHaveTextAsync(flagged[0].Key);
        await Expect(page.Locator("#ecg polyline.lead")).ToHaveCountAsync(12);
        await Expect(page.Locator("#ecg polyline.rhythm")).ToHaveCountAsync(1);
        // Flagged for AF, so its top findings start with a flagged label (the most probable of them).
        await Expect(page.Locator("#findings tbody tr")).ToHaveCountAsync(10);
        await Expect(page.Locator("#findings tbody tr").First.Locator("td").Nth(4)).ToHaveTextAsync("yes");
        await Expect(page.Locator("#provenance")).ToContainTextAsync(modelId);
        Assert.True(await page.Locator("#changed").IsHiddenAsync());
        Assert.True(await page.Locator("#problem").IsHiddenAsync());

        // Each lead where the paper puts it: column c shows seconds 2.5c to 2.5(c+1); x = x0 + 25 mm/s, y = baseline - 10 mm/mV.
        var samples = await NpySamplesAsync(flagged[0].Key + ".npy");
        var names = new[] { "I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6" };
        var leads = new[] { ("II", 0), ("aVL", 1), ("V3", 2), ("V6", 3) };
        foreach (var (lead, column) in leads)
        {
            var line = page.Locator($"#ecg polyline.lead[data-lead='{lead}']");
            Assert.Equal(column * 1250, int.Parse((await line.GetAttributeAsync("data-first-sample"))!, CultureInfo.InvariantCulture));
            await AssertTraceAsync(line, samples[Array.IndexOf(names, lead)], 1250);
        }

        await AssertTraceAsync(page.Locator("#ecg polyline.rhythm[data-lead='II']"), samples[1], 5000);
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(shots, "dashboard-record.png"), FullPage = true });
    }

    /// <summary>Checks a drawn trace's point count and, at a few points, its coordinates (mm) against the samples (mV).</summary>
    private static async Task AssertTraceAsync(ILocator line, float[] samples, int points)
    {
        var first = int.Parse((await line.GetAttributeAsync("data-first-sample"))!, CultureInfo.InvariantCulture);
        var x0 = double.Parse((await line.GetAttributeAsync("data-x0"))!, CultureInfo.InvariantCulture);
        var baseline = double.Parse((await line.GetAttributeAsync("data-baseline"))!, CultureInfo.InvariantCulture);
        var drawn = (await line.GetAttributeAsync("points"))!.Split(' ')
            .Select(p => p.Split(','))
            .Select(p => (X: double.Parse(p[0], CultureInfo.InvariantCulture), Y: double.Parse(p[1], CultureInfo.InvariantCulture)))
            .ToList();
        Assert.Equal(points, drawn.Count);
        foreach (var k in new[] { 0, 1, 97, points / 2, points - 1 })
        {
            Assert.Equal(x0 + (25.0 * k / 500), drawn[k].X, 0.002);
            Assert.Equal(baseline - (10.0 * samples[first + k]), drawn[k].Y, 0.002);
        }
    }

    /// <summary>The values in the AUROC column from the top, as many as are defined.</summary>
    private static async Task<List<double>> AurocColumnAsync(IPage page, int count)
    {
        var values = await page.Locator("#labels tbody td[data-key='auroc']").EvaluateAllAsync<string[]>("cells => cells.map(c => c.dataset.value)");
        Assert.All(values.Skip(count), v => Assert.Equal("", v));
        return values.Take(count).Select(v => double.Parse(v, CultureInfo.InvariantCulture)).ToList();
    }

    private static string Invariant(double value) => value.ToString("R", CultureInfo.InvariantCulture);

    /// <summary>A 12 x N float32 .npy blob of the cohort, read here byte by byte: one array per lead, in mV.</summary>
    private async Task<float[][]> NpySamplesAsync(string blobName)
    {
        var bytes = (await blobs.Container.GetBlobClient(blobName).DownloadContentAsync()).Value.Content.ToArray();
        Assert.Equal(1, bytes[6]); // format version 1.0
        var headerLength = BitConverter.ToUInt16(bytes, 8);
        var header = System.Text.Encoding.ASCII.GetString(bytes, 10, headerLength);
        Assert.Contains("'descr': '<f4'", header, StringComparison.Ordinal);
        Assert.Contains("'fortran_order': False", header, StringComparison.Ordinal);
        var start = 10 + headerLength;
        var n = (bytes.Length - start) / 4 / 12;
        return Enumerable.Range(0, 12)
            .Select(lead => Enumerable.Range(0, n).Select(i => BitConverter.ToSingle(bytes, start + (((lead * n) + i) * 4))).ToArray())
            .ToArray();
    }

    /// <summary>Each record the run scored, with its probability for the label.</summary>
    private async Task<Dictionary<string, float>> ProbabilitiesAsync(Guid runId, string code)
    {
        await using var cmd = database.DataSource.CreateCommand(
            "select s.record_id, s.probabilities[l.position + 1] from scores s join labels l on l.code = @code where s.run_id = @run");
        cmd.Parameters.AddWithValue("run", runId);
        cmd.Parameters.AddWithValue("code", code);
        await using var reader = await cmd.ExecuteReaderAsync();
        var values = new Dictionary<string, float>(StringComparer.Ordinal);
        while (await reader.ReadAsync())
        {
            values[reader.GetString(0)] = reader.GetFloat(1);
        }

        return values;
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
