using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace HubertEcg.Testing;

/// <summary>
/// An Azurite blob service of its own (the project's <c>infra/local/node_modules</c> copy, installed by the test
/// command) on a free port with its data in a temporary folder, which a test may stop and start again on the same port
/// and data, to play a storage outage. Disposing stops it and deletes the folder.
/// </summary>
public sealed class PrivateAzurite : IAsyncDisposable
{
    // Azurite's well-known development account (public, documented by Microsoft; not a secret).
    private const string AccountKey = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

    private readonly string _executable;
    private readonly (string Certificate, string Key)? _tls;
    private Process? _process;

    private PrivateAzurite(string executable, string root, int port, (string Certificate, string Key)? tls)
    {
        _executable = executable;
        Root = root;
        Port = port;
        _tls = tls;
    }

    /// <summary>The account's blob endpoint: <c>https://</c> when started with a certificate, else <c>http://</c>.</summary>
    public string BlobEndpoint => $"{(_tls is null ? "http" : "https")}://127.0.0.1:{Port.ToString(CultureInfo.InvariantCulture)}/devstoreaccount1";

    public string Root { get; }

    public int Port { get; }

    public string ConnectionString =>
        $"DefaultEndpointsProtocol={(_tls is null ? "http" : "https")};AccountName=devstoreaccount1;AccountKey={AccountKey};BlobEndpoint={BlobEndpoint};";

    /// <summary>
    /// Starts an emulator on a free port. With <paramref name="tls"/> (PEM certificate and key files) it serves HTTPS
    /// and accepts OAuth bearer tokens (<c>--oauth basic</c>: it checks a token's format, issuer, audience and
    /// lifetime, not its signature).
    /// </summary>
    public static async Task<PrivateAzurite> StartAsync((string Certificate, string Key)? tls = null, CancellationToken cancellationToken = default)
    {
        var executable = Path.Combine(RepoPaths.Root, "infra", "local", "node_modules", ".bin", "azurite-blob");
        if (!File.Exists(executable))
        {
            throw new InvalidOperationException($"{executable} is missing: run the tests through infra/test.sh, which installs Azurite");
        }

        var root = Path.Combine(Path.GetTempPath(), "hubert-azurite-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(root);
        var azurite = new PrivateAzurite(executable, root, FreePort(), tls);
        try
        {
            await azurite.StartServerAsync(cancellationToken);
            return azurite;
        }
        catch
        {
            await azurite.DisposeAsync();
            throw;
        }
    }

    /// <summary>Starts the service (again) on its port and data, and waits until it accepts connections.</summary>
    public async Task StartServerAsync(CancellationToken cancellationToken = default)
    {
        var start = new ProcessStartInfo(_executable)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        string[] https = _tls is { } tls ? ["--cert", tls.Certificate, "--key", tls.Key, "--oauth", "basic"] : [];
        foreach (var argument in new[]
                 {
                     "--blobHost", "127.0.0.1", "--blobPort", Port.ToString(CultureInfo.InvariantCulture),
                     "--location", Path.Combine(Root, "data"), "--skipApiVersionCheck", "--loose", "--silent", "--disableTelemetry",
                 }.Concat(https))
        {
            start.ArgumentList.Add(argument);
        }

        _process = Process.Start(start) ?? throw new InvalidOperationException("azurite-blob did not start");
        _process.OutputDataReceived += (_, _) => { };
        _process.ErrorDataReceived += (_, _) => { };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
        var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(1);
        while (!await AnswersAsync(cancellationToken))
        {
            if (_process.HasExited || DateTime.UtcNow > deadline)
            {
                throw new InvalidOperationException($"Azurite did not answer on port {Port} within a minute");
            }

            await Task.Delay(100, cancellationToken);
        }
    }

    /// <summary>
    /// Stops the service (an outage: connections are refused until <see cref="StartServerAsync"/>). It is asked to stop
    /// (SIGTERM), so that it saves what it holds only in memory (the blob list of recent uploads) as a real service
    /// keeps its data through an outage; killed only if it does not stop within a minute.
    /// </summary>
    public async Task StopAsync()
    {
        if (_process is { HasExited: false } process)
        {
            using (var term = Process.Start("kill", ["-TERM", process.Id.ToString(CultureInfo.InvariantCulture)]))
            {
                await term.WaitForExitAsync();
            }

            using var patience = new CancellationTokenSource(TimeSpan.FromMinutes(1));
            try
            {
                await process.WaitForExitAsync(patience.Token);
            }
            catch (OperationCanceledException)
            {
                process.Kill(entireProcessTree: true);
                await process.WaitForExitAsync();
            }
        }

        _process?.Dispose();
        _process = null;
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        try
        {
            Directory.Delete(Root, recursive: true);
        }
        catch (IOException)
        {
            // Left in the temporary folder.
        }
    }

    private async Task<bool> AnswersAsync(CancellationToken cancellationToken)
    {
        try
        {
            using var client = new TcpClient();
            await client.ConnectAsync(IPAddress.Loopback, Port, cancellationToken);
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
