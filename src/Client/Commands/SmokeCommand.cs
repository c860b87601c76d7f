using System.CommandLine;
using HubertEcg.Storage;

namespace HubertEcg.Client.Commands;

/// <summary><c>hubert-ecg smoke</c>: write a blob, read it back, write a row; proves the services talk.</summary>
public static class SmokeCommand
{
    public static Command Build()
    {
        var command = new Command("smoke", "Check that blob storage and Postgres answer: write a blob, read it back, record a row");
        command.SetAction(async (parseResult, cancellationToken) =>
        {
            var configuration = Cli.Configuration(parseResult);
            var result = await SmokeJob.RunAsync(configuration.Postgres(), configuration.BlobStorage(), cancellationToken);
            foreach (var migration in result.MigrationsApplied)
            {
                Console.WriteLine($"migration applied: {migration}");
            }

            Console.WriteLine($"blob written and read back: {result.Container}/{result.BlobName} sha256={result.Sha256}");
            Console.WriteLine($"postgres row written: smoke_checks.id={result.RowId}");
            Console.WriteLine("smoke=ok");
            return 0;
        });
        return command;
    }
}
