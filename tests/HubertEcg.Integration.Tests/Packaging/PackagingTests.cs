using System.Diagnostics;
using HubertEcg.Testing;
using Xunit.Abstractions;

namespace HubertEcg.Integration.Tests.Packaging;

/// <summary>
/// How the system is installed (issue 16): <c>hubert-ecg</c> packs as a .NET tool that installs into a tool path and
/// runs, and the silo publishes self-contained for linux-x64 (its own runtime: it starts without a .NET install).
/// Each builds from the checkout into a temporary folder, as an operator would.
/// </summary>
[Trait("Category", "Packaging")]
public sealed class PackagingTests(ITestOutputHelper output) : IDisposable
{
    private readonly string _work = Directory.CreateTempSubdirectory("hubert-packaging-").FullName;

    public void Dispose() => Directory.Delete(_work, recursive: true);

    [Fact]
    public async Task TheToolPacksInstallsIntoAToolPathAndRuns()
    {
        var packages = Path.Combine(_work, "packages");
        var tools = Path.Combine(_work, "tools");
        await DotnetAsync("pack", Path.Combine(RepoPaths.Root, "src", "Client", "HubertEcg.Client.csproj"), "-c", "Release", "-o", packages);
        var package = Assert.Single(Directory.GetFiles(packages, "hubert-ecg.*.nupkg"));
        var version = Path.GetFileNameWithoutExtension(package)["hubert-ecg.".Length..];

        await DotnetAsync("tool", "install", "hubert-ecg", "--tool-path", tools, "--add-source", packages, "--version", version);
        var (code, stdout, stderr) = await RunAsync(Path.Combine(tools, "hubert-ecg"), "--version");
        Assert.True(code == 0, $"hubert-ecg --version exited {code}: {stderr}");
        Assert.StartsWith(version, stdout.Trim(), StringComparison.Ordinal);

        (code, stdout, stderr) = await RunAsync(Path.Combine(tools, "hubert-ecg"), "--help");
        Assert.True(code == 0, $"hubert-ecg --help exited {code}: {stderr}");
        Assert.Contains("run", stdout, StringComparison.Ordinal);
        Assert.Contains("results", stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task TheSiloPublishesSelfContainedForLinuxX64AndStartsWithoutADotnetInstall()
    {
        var silo = Path.Combine(_work, "silo");
        await DotnetAsync("publish", Path.Combine(RepoPaths.Root, "src", "Silo", "Host", "HubertEcg.Silo.csproj"), "-c", "Release", "-r", "linux-x64", "--self-contained", "-o", silo);
        Assert.True(File.Exists(Path.Combine(silo, "libhostfxr.so")), "the published silo carries no runtime of its own");
        Assert.True(File.Exists(Path.Combine(silo, "libonnxruntime.so")), "the published silo carries no ONNX Runtime native library");

        // No dotnet on the PATH and no DOTNET_ROOT: only the published folder's own runtime can start it.
        var (code, stdout, stderr) = await RunAsync(Path.Combine(silo, "hubert-ecg-silo"), ["--version"], withoutDotnet: true);
        Assert.True(code == 0, $"hubert-ecg-silo --version exited {code}: {stderr}");
        Assert.StartsWith("hubert-ecg-silo ", stdout.Trim(), StringComparison.Ordinal);
    }

    private async Task DotnetAsync(params string[] args)
    {
        var (code, stdout, stderr) = await RunAsync("dotnet", args);
        Assert.True(code == 0, $"dotnet {string.Join(' ', args)} exited {code}:\n{stdout}\n{stderr}");
    }

    private Task<(int Code, string Output, string Error)> RunAsync(string file, params string[] args) => RunAsync(file, args, withoutDotnet: false);

    private async Task<(int Code, string Output, string Error)> RunAsync(string file, string[] args, bool withoutDotnet)
    {
        var start = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = _work };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        start.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        start.Environment["DOTNET_NOLOGO"] = "1";
        if (withoutDotnet)
        {
            var nothing = Directory.CreateDirectory(Path.Combine(_work, "no-dotnet-here")).FullName;
            start.Environment["PATH"] = nothing;
            start.Environment["DOTNET_ROOT"] = nothing;
        }

        output.WriteLine($"$ {file} {string.Join(' ', args)}");
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var limit = new CancellationTokenSource(TimeSpan.FromMinutes(15));
        await process.WaitForExitAsync(limit.Token);
        var (o, e) = (await stdout, await stderr);
        output.WriteLine(o.Length > 4000 ? o[^4000..] : o);
        output.WriteLine(e);
        return (process.ExitCode, o, e);
    }
}
