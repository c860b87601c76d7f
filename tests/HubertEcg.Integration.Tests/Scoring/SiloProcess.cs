using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.RegularExpressions;
using HubertEcg.Testing;

namespace HubertEcg.Integration.Tests.Scoring;

/// <summary>
/// The real silo program (<c>hubert-ecg-silo</c>) in its own process, joined to a cluster through ADO.NET clustering
/// on the test database, with short failure detection. <see cref="Kill"/> ends it like SIGKILL.
/// </summary>
public sealed class SiloProcess : IDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _log = new();

    private SiloProcess(Process process, string name)
    {
        _process = process;
        Name = name;
        process.OutputDataReceived += (_, e) => Append(e.Data);
        process.ErrorDataReceived += (_, e) => Append(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
    }

    public string Name { get; }

    public bool HasExited => _process.HasExited;

    public string Log
    {
        get
        {
            lock (_log)
            {
                return _log.ToString();
            }
        }
    }

    /// <summary>
    /// Starts a silo; <paramref name="settings"/> add to or replace the test settings below (the dashboard is off unless
    /// they turn it on); <paramref name="environment"/> adds environment variables (any name, as an operator's shell
    /// could set them) and <paramref name="workingDirectory"/> is where the process starts (default: this one's).
    /// </summary>
    public static SiloProcess Start(
        string clusterId,
        string name,
        string postgres,
        string blob,
        IReadOnlyDictionary<string, string>? settings = null,
        IReadOnlyDictionary<string, string>? environment = null,
        string? workingDirectory = null)
    {
        var assembly = typeof(SiloProcess).Assembly.Location;
        var configuration = new DirectoryInfo(Path.GetDirectoryName(assembly)!).Parent!.Name; // bin/<Configuration>/net10.0
        var silo = Path.Combine(RepoPaths.Root, "src", "Silo", "Host", "bin", configuration, "net10.0", "hubert-ecg-silo.dll");
        if (!File.Exists(silo))
        {
            throw new FileNotFoundException($"build the silo first: {silo} is missing", silo);
        }

        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        if (workingDirectory is not null)
        {
            start.WorkingDirectory = workingDirectory;
        }

        foreach (var (key, value) in environment ?? new Dictionary<string, string>())
        {
            start.Environment[key] = value;
        }

        start.ArgumentList.Add(silo);
        var values = new Dictionary<string, string>
        {
            ["Postgres:ConnectionString"] = postgres,
            ["Postgres:ApplyMigrations"] = "false",
            ["BlobStorage:ConnectionString"] = blob,
            ["Silo:Clustering"] = "adonet",
            ["Silo:ClusterId"] = clusterId,
            ["Silo:ServiceId"] = clusterId,
            ["Silo:Name"] = name,
            ["Silo:SiloPort"] = FreePort(),
            ["Silo:GatewayPort"] = FreePort(),
            ["Silo:ProbeTimeout"] = "00:00:01",
            ["Silo:NumMissedProbesLimit"] = "2",
            ["Silo:NumVotesForDeathDeclaration"] = "1",
            ["Silo:ResponseTimeout"] = "00:00:05",
            ["Coordinator:TickInterval"] = "00:00:00.250",
            ["Coordinator:DirectoryRefresh"] = "00:00:00.250",
            ["Workers:PreprocessThreads"] = "1",
            ["Workers:IntraOpThreads"] = "1",
            ["Workers:IdlePollInterval"] = "00:00:00.250",
            ["Logging:LogLevel:Default"] = "Warning",
            ["Dashboard:Enabled"] = "false",
        };
        foreach (var (key, value) in settings ?? new Dictionary<string, string>())
        {
            values[key] = value;
        }

        foreach (var (key, value) in values)
        {
            start.ArgumentList.Add($"--{key}={value}");
        }

        var process = Process.Start(start) ?? throw new InvalidOperationException($"could not start {silo}");
        return new SiloProcess(process, name);
    }

    /// <summary>Waits for the process to end by itself: its exit code, or null if it still runs after <paramref name="timeout"/>.</summary>
    public int? WaitForExit(TimeSpan timeout)
    {
        if (!_process.WaitForExit(timeout))
        {
            return null;
        }

        _process.WaitForExit(); // and for the last of its output
        return _process.ExitCode;
    }

    /// <summary>The first match of <paramref name="pattern"/> in the log; fails when the process exits or <paramref name="timeout"/> passes first.</summary>
    public async Task<Match> WaitForLogAsync(Regex pattern, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var match = pattern.Match(Log);
            if (match.Success)
            {
                return match;
            }

            if (_process.HasExited || DateTime.UtcNow > deadline)
            {
                throw new TimeoutException(
                    $"silo {Name} {(_process.HasExited ? "exited" : $"ran {timeout}")} without logging /{pattern}/; its log:\n{Log}");
            }

            await Task.Delay(100);
        }
    }

    /// <summary>Ends the process at once, as SIGKILL does: no shutdown code runs, leases are left to expire.</summary>
    public void Kill()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            _process.WaitForExit();
        }
    }

    public void Dispose()
    {
        Kill();
        _process.Dispose();
    }

    private void Append(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_log)
        {
            _log.AppendLine(line);
        }
    }

    /// <summary>A TCP port on 127.0.0.1 that nothing listens on now.</summary>
    public static string FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port.ToString(CultureInfo.InvariantCulture);
    }
}
