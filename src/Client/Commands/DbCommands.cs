using System.CommandLine;
using HubertEcg.Storage;

namespace HubertEcg.Client.Commands;

/// <summary>
/// <c>hubert-ecg db</c>: the database's schema. <c>db migrate</c> applies the pending migrations of <c>infra/sql</c>
/// (embedded in <see cref="SchemaMigrator"/>, the one implementation the silo uses too) to the database of
/// <c>Postgres:ConnectionString</c>, and prints what it applied.
/// </summary>
public static class DbCommands
{
    public static Command Build()
    {
        var command = new Command("db", "The database's schema");
        command.Subcommands.Add(BuildMigrate());
        return command;
    }

    private static Command BuildMigrate()
    {
        var command = new Command(
            "migrate",
            "Apply the pending schema migrations to the database of Postgres:ConnectionString, each once in its own transaction " +
            "(safe to re-run; silos starting with Postgres:ApplyMigrations do the same)");
        command.SetAction(async (parseResult, cancellationToken) =>
        {
            await using var db = RunCommands.OpenDatabase(parseResult);
            var applied = await SchemaMigrator.ApplyAsync(db, cancellationToken);
            foreach (var migration in applied)
            {
                Console.WriteLine($"applied {migration}");
            }

            var latest = SchemaMigrator.Migrations.Count > 0 ? SchemaMigrator.Migrations[^1].Name : "none";
            Console.WriteLine($"schema up to date: {SchemaMigrator.Migrations.Count} migrations, {applied.Count} applied now, latest {latest}");
            return 0;
        });
        return command;
    }
}
