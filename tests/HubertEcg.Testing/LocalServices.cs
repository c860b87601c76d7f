using System.Diagnostics;
using Npgsql;

namespace HubertEcg.Testing;

/// <summary>
/// Connection settings of the real Postgres and Azurite the tests use. The test command
/// (<c>infra/test.sh</c>) starts them and sets <c>HUBERT_TEST_PG</c> and <c>HUBERT_TEST_BLOB</c>;
/// when those are missing (a test run from an IDE) the first use runs <c>infra/local/up.sh</c> itself.
/// </summary>
public static class LocalServices
{
    public const string PostgresVariable = "HUBERT_TEST_PG";
    public const string BlobVariable = "HUBERT_TEST_BLOB";

    private static readonly Lazy<(string Postgres, string Blob)> Settings = new(Resolve, LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>A connection string to a database the tests may create other databases from.</summary>
    public static string PostgresAdmin => Settings.Value.Postgres;

    /// <summary>An Azure Storage connection string for Azurite.</summary>
    public static string Blob => Settings.Value.Blob;

    private static (string, string) Resolve()
    {
        var pg = Environment.GetEnvironmentVariable(PostgresVariable);
        var blob = Environment.GetEnvironmentVariable(BlobVariable);
        if (!string.IsNullOrWhiteSpace(pg) && !string.IsNullOrWhiteSpace(blob))
        {
            return (pg, blob);
        }

        var script = Path.Combine(RepoPaths.Root, "infra", "local", "up.sh");
        var start = new ProcessStartInfo("bash", [script])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        using var process = Process.Start(start) ?? throw new InvalidOperationException($"could not start {script}");
        var stderr = process.StandardError.ReadToEndAsync();
        var stdout = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{script} failed with exit code {process.ExitCode}: {stderr.Result}");
        }

        foreach (var line in stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (line.StartsWith("Postgres:ConnectionString=", StringComparison.Ordinal))
            {
                pg = line["Postgres:ConnectionString=".Length..];
            }
            else if (line.StartsWith("BlobStorage:ConnectionString=", StringComparison.Ordinal))
            {
                blob = line["BlobStorage:ConnectionString=".Length..];
            }
        }

        if (string.IsNullOrWhiteSpace(pg) || string.IsNullOrWhiteSpace(blob))
        {
            throw new InvalidOperationException($"{script} did not print the connection settings; it printed: {stdout}");
        }

        return (pg, blob);
    }

    /// <summary>A connection string for another database on the same server.</summary>
    public static string ForDatabase(string database) =>
        new NpgsqlConnectionStringBuilder(PostgresAdmin) { Database = database }.ConnectionString;
}
