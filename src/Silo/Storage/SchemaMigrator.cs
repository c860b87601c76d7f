using System.Reflection;
using System.Security.Cryptography;
using Npgsql;

namespace HubertEcg.Storage;

/// <summary>One SQL migration from <c>infra/sql</c>, embedded in this assembly.</summary>
public sealed record Migration(string Version, string Name, string Sql, string Sha256);

/// <summary>
/// Applies the embedded <c>infra/sql/NNNN_name.sql</c> files in order, each once, in its own transaction,
/// recording version and SHA-256 in <c>schema_migrations</c>. The one implementation of migrations: a silo starting
/// with <c>Postgres:ApplyMigrations</c>, <c>hubert-ecg db migrate</c> and <c>infra/local/migrate.sh</c> (which runs
/// that command) all use it. Concurrent callers serialise on an advisory lock. A migration whose text changed after
/// it was applied is an error.
/// </summary>
public static class SchemaMigrator
{
    private const long AdvisoryLockKey = 0x4875_6265_7274; // "Hubert"

    public static IReadOnlyList<Migration> Migrations { get; } = LoadMigrations();

    public static async Task<IReadOnlyList<string>> ApplyAsync(NpgsqlDataSource dataSource, CancellationToken cancellationToken = default)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        return await ApplyAsync(connection, cancellationToken);
    }

    public static async Task<IReadOnlyList<string>> ApplyAsync(NpgsqlConnection connection, CancellationToken cancellationToken = default)
    {
        var applied = new List<string>();
        await using (var lockCmd = new NpgsqlCommand("select pg_advisory_lock(@k)", connection))
        {
            lockCmd.Parameters.AddWithValue("k", AdvisoryLockKey);
            await lockCmd.ExecuteNonQueryAsync(cancellationToken);
        }

        try
        {
            await using (var create = new NpgsqlCommand(
                "create table if not exists schema_migrations (version text primary key, name text not null, sha256 text not null, applied_at timestamptz not null default now())",
                connection))
            {
                await create.ExecuteNonQueryAsync(cancellationToken);
            }

            var existing = new Dictionary<string, string>(StringComparer.Ordinal);
            await using (var query = new NpgsqlCommand("select version, sha256 from schema_migrations", connection))
            await using (var reader = await query.ExecuteReaderAsync(cancellationToken))
            {
                while (await reader.ReadAsync(cancellationToken))
                {
                    existing[reader.GetString(0)] = reader.GetString(1);
                }
            }

            foreach (var migration in Migrations)
            {
                if (existing.TryGetValue(migration.Version, out var sum))
                {
                    if (!string.Equals(sum, migration.Sha256, StringComparison.Ordinal))
                    {
                        throw new InvalidOperationException(
                            $"migration {migration.Name} changed after it was applied (recorded {sum}, now {migration.Sha256}); add a new migration instead");
                    }

                    continue;
                }

                await using var tx = await connection.BeginTransactionAsync(cancellationToken);
                await using (var cmd = new NpgsqlCommand(migration.Sql, connection, tx))
                {
                    await cmd.ExecuteNonQueryAsync(cancellationToken);
                }

                await using (var record = new NpgsqlCommand(
                    "insert into schema_migrations(version, name, sha256) values (@v, @n, @s)", connection, tx))
                {
                    record.Parameters.AddWithValue("v", migration.Version);
                    record.Parameters.AddWithValue("n", migration.Name);
                    record.Parameters.AddWithValue("s", migration.Sha256);
                    await record.ExecuteNonQueryAsync(cancellationToken);
                }

                await tx.CommitAsync(cancellationToken);
                applied.Add(migration.Name);
            }
        }
        finally
        {
            await using var unlock = new NpgsqlCommand("select pg_advisory_unlock(@k)", connection);
            unlock.Parameters.AddWithValue("k", AdvisoryLockKey);
            await unlock.ExecuteNonQueryAsync(CancellationToken.None);
        }

        return applied;
    }

    private static List<Migration> LoadMigrations()
    {
        var assembly = typeof(SchemaMigrator).Assembly;
        var result = new List<Migration>();
        foreach (var resource in assembly.GetManifestResourceNames().Where(n => n.StartsWith("migrations/", StringComparison.Ordinal)).Order(StringComparer.Ordinal))
        {
            var name = resource["migrations/".Length..];
            using var stream = assembly.GetManifestResourceStream(resource)
                ?? throw new InvalidOperationException($"embedded migration {resource} is missing");
            using var memory = new MemoryStream();
            stream.CopyTo(memory);
            var bytes = memory.ToArray();
            var sql = System.Text.Encoding.UTF8.GetString(bytes);
            var version = name.Split('_', 2)[0];
            result.Add(new Migration(version, name, sql, Convert.ToHexStringLower(SHA256.HashData(bytes))));
        }

        return result;
    }
}
