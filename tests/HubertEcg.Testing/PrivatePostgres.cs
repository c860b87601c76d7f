using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Npgsql;

namespace HubertEcg.Testing;

/// <summary>
/// A PostgreSQL cluster of the test's own, in a temporary folder, listening on 127.0.0.1 on a free port: for tests
/// that stop or restart the server, which the shared test Postgres must never be. Uses the Debian PostgreSQL
/// binaries (<c>/usr/lib/postgresql/N/bin</c>), run as the <c>postgres</c> user when the test runs as root (initdb and
/// postgres refuse root), like <c>infra/local/up.sh</c>. The database <see cref="Database"/> exists but has no schema:
/// apply it with <c>SchemaMigrator</c>. <see cref="DisposeAsync"/> stops the server and deletes the folder.
/// </summary>
public sealed class PrivatePostgres : IAsyncDisposable
{
    public const string User = "hubert";
    public const string Database = "hubert";

    private static readonly TimeSpan CommandTimeout = TimeSpan.FromSeconds(90);

    private readonly string _bin;
    private readonly PrivatePostgresSetup _setup;
    private bool _disposed;

    private PrivatePostgres(string bin, string root, int port, PrivatePostgresSetup setup)
    {
        _bin = bin;
        Root = root;
        Port = port;
        _setup = setup;
    }

    /// <summary>Where the files of <see cref="PrivatePostgresSetup.Files"/> are copied (owned by the server's user, mode 0600).</summary>
    public string ConfDirectory => Path.Combine(Root, "conf");

    /// <summary>The temporary folder holding the data folder, the socket folder and the server log.</summary>
    public string Root { get; }

    public string DataDirectory => Path.Combine(Root, "data");

    public string SocketDirectory => Path.Combine(Root, "socket");

    public string LogFile => Path.Combine(Root, "postgres.log");

    public int Port { get; }

    /// <summary>A connection string to <see cref="Database"/> on this server.</summary>
    public string ConnectionString => new NpgsqlConnectionStringBuilder
    {
        Host = "127.0.0.1",
        Port = Port,
        Username = User,
        Database = Database,
    }.ConnectionString;

    /// <summary>
    /// Creates, starts and opens a new cluster, with <paramref name="setup"/>'s files, settings, listen addresses and
    /// client authentication when given; on any failure what was made is removed again.
    /// </summary>
    public static async Task<PrivatePostgres> StartAsync(PrivatePostgresSetup? setup = null, CancellationToken cancellationToken = default)
    {
        var bin = FindBinaries();
        var root = Path.Combine(Path.GetTempPath(), "hubert-pg-" + Guid.NewGuid().ToString("N")[..12]);
        var server = new PrivatePostgres(bin, root, FreePort(), setup ?? new PrivatePostgresSetup());
        try
        {
            Directory.CreateDirectory(server.SocketDirectory);
            Directory.CreateDirectory(server.ConfDirectory);
            foreach (var (name, source) in server._setup.Files ?? new Dictionary<string, string>())
            {
                var target = Path.Combine(server.ConfDirectory, name);
                File.Copy(source, target);
                if (!OperatingSystem.IsWindows())
                {
                    File.SetUnixFileMode(target, UnixFileMode.UserRead | UnixFileMode.UserWrite);
                }
            }

            if (server._setup.HbaLines is { } hba)
            {
                await File.WriteAllLinesAsync(Path.Combine(server.ConfDirectory, "pg_hba.conf"), hba, cancellationToken);
            }

            if (IsRoot)
            {
                await RunAsync("chown", ["-R", "postgres:", root], cancellationToken);
                AllowTraversal(root);
            }

            await server.PgAsync(
                "initdb", ["-D", server.DataDirectory, "-U", User, "--auth=trust", "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync"], cancellationToken);
            await server.StartServerAsync(cancellationToken);
            await using (var admin = new NpgsqlConnection(
                new NpgsqlConnectionStringBuilder(server.ConnectionString) { Database = "postgres", Pooling = false }.ConnectionString))
            {
                await admin.OpenAsync(cancellationToken);
                await using var create = new NpgsqlCommand($"create database \"{Database}\"", admin);
                await create.ExecuteNonQueryAsync(cancellationToken);
            }

            return server;
        }
        catch
        {
            await server.DisposeAsync();
            throw;
        }
    }

    /// <summary>Stops the server; <paramref name="mode"/> is pg_ctl's shutdown mode (smart, fast or immediate).</summary>
    public Task StopAsync(string mode = "fast", CancellationToken cancellationToken = default) =>
        PgAsync("pg_ctl", ["-D", DataDirectory, "-m", mode, "-w", "-t", "60", "stop"], cancellationToken);

    /// <summary>Starts the stopped server again on the same port and waits until it accepts connections.</summary>
    public Task StartServerAsync(CancellationToken cancellationToken = default)
    {
        var extra = string.Concat((_setup.Settings ?? []).Select(s => " -c " + s.Replace("{conf}", ConfDirectory, StringComparison.Ordinal)));
        if (_setup.HbaLines is not null)
        {
            extra += $" -c hba_file={Path.Combine(ConfDirectory, "pg_hba.conf")}";
        }

        return PgAsync(
            "pg_ctl",
            [
                "-D", DataDirectory, "-l", LogFile, "-w", "-t", "60",
                "-o", $"-c listen_addresses={_setup.ListenAddresses} -p {Port.ToString(CultureInfo.InvariantCulture)} -k {SocketDirectory} " +
                      "-c max_connections=200 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" + extra,
                "start",
            ],
            cancellationToken);
    }

    /// <summary>The last lines of the server log, for failure messages.</summary>
    public string LogTail(int lines = 40)
    {
        try
        {
            return string.Join('\n', File.ReadLines(LogFile).TakeLast(lines));
        }
        catch (IOException e)
        {
            return $"(no log: {e.Message})";
        }
    }

    /// <summary>Stops the server (immediately: nothing in it is kept) and deletes its folder; safe to call twice.</summary>
    public async ValueTask DisposeAsync()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        NpgsqlConnection.ClearAllPools();
        if (File.Exists(Path.Combine(DataDirectory, "postmaster.pid")))
        {
            try
            {
                await StopAsync("immediate");
            }
            catch (Exception e) when (e is InvalidOperationException or TimeoutException)
            {
                // Already stopped (pg_ctl reports that as a failure); the folder is removed below regardless.
            }
        }

        if (Directory.Exists(Root))
        {
            Directory.Delete(Root, recursive: true);
        }
    }

    private static bool IsRoot => Environment.UserName == "root";

    private Task PgAsync(string tool, IReadOnlyList<string> arguments, CancellationToken cancellationToken)
    {
        var path = Path.Combine(_bin, tool);
        return IsRoot
            ? RunAsync("runuser", ["-u", "postgres", "--", path, .. arguments], cancellationToken)
            : RunAsync(path, arguments, cancellationToken);
    }

    private static async Task RunAsync(string file, IReadOnlyList<string> arguments, CancellationToken cancellationToken)
    {
        var start = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        using var process = Process.Start(start) ?? throw new InvalidOperationException($"could not start {file}");
        var stdout = process.StandardOutput.ReadToEndAsync(cancellationToken);
        var stderr = process.StandardError.ReadToEndAsync(cancellationToken);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(CommandTimeout);
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{file} {string.Join(' ', arguments)} did not finish within {CommandTimeout}");
        }

        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException(
                $"{file} {string.Join(' ', arguments)} failed with exit code {process.ExitCode}: {await stderr}{await stdout}");
        }
    }

    private static string FindBinaries()
    {
        const string Versions = "/usr/lib/postgresql";
        var bin = Directory.Exists(Versions)
            ? Directory.GetDirectories(Versions)
                .Select(d => (Dir: Path.Combine(d, "bin"), Version: int.TryParse(Path.GetFileName(d), out var v) ? v : -1))
                .Where(x => File.Exists(Path.Combine(x.Dir, "initdb")) && File.Exists(Path.Combine(x.Dir, "pg_ctl")))
                .OrderByDescending(x => x.Version)
                .Select(x => x.Dir)
                .FirstOrDefault()
            : null;
        return bin ?? throw new InvalidOperationException(
            $"no PostgreSQL server binaries (initdb, pg_ctl) under {Versions}; install the postgresql package (infra/local/up.sh does)");
    }

    /// <summary>The postgres user must reach the folder through its parents (a temp folder under /root would not do).</summary>
    private static void AllowTraversal(string folder)
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }

        for (var dir = Path.GetDirectoryName(folder); !string.IsNullOrEmpty(dir) && dir != "/"; dir = Path.GetDirectoryName(dir))
        {
            var mode = File.GetUnixFileMode(dir);
            if (!mode.HasFlag(UnixFileMode.OtherExecute))
            {
                File.SetUnixFileMode(dir, mode | UnixFileMode.OtherExecute);
            }
        }
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}

/// <summary>
/// What a <see cref="PrivatePostgres"/> starts with beyond the defaults: <see cref="Files"/> (file name in the
/// server's conf folder to the file copied there, e.g. a TLS certificate and key), extra server
/// <see cref="Settings"/> (<c>name=value</c>; <c>{conf}</c> stands for the conf folder), the listen addresses
/// (comma-separated) and, when given, the lines of its <c>pg_hba.conf</c> (the default trusts everyone).
/// </summary>
public sealed record PrivatePostgresSetup(
    IReadOnlyDictionary<string, string>? Files = null,
    IReadOnlyList<string>? Settings = null,
    string ListenAddresses = "127.0.0.1",
    IReadOnlyList<string>? HbaLines = null);
