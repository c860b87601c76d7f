using System.CommandLine;
using System.Globalization;
using Azure;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using HubertEcg.Storage;
using HubertEcg.Storage.Access;
using HubertEcg.Storage.Folders;

namespace HubertEcg.Client.Commands;

/// <summary>
/// <c>hubert-ecg input upload DIR --to CONTAINER/PREFIX</c>: copies a folder into blob storage, in parallel and
/// resumably, for those who want their archive there rather than read from a mount (<c>--input file:///…</c>).
/// </summary>
public static class InputCommands
{
    /// <summary>The blob metadata key that holds the source file's last write time (UTC ticks), which lets a second upload skip it.</summary>
    public const string MtimeMetadataKey = "source_mtime_ticks";

    public static Command Build()
    {
        var command = new Command("input", "Run inputs: copy a local folder into blob storage");
        command.Subcommands.Add(BuildUpload());
        return command;
    }

    /// <summary>What an upload did: files uploaded, files left as they were (same size and modification time), files not read.</summary>
    public sealed record UploadSummary(int Uploaded, int Unchanged, int NotRead, long Bytes);

    private static Command BuildUpload()
    {
        var folder = new Argument<DirectoryInfo>("DIR") { Description = "The folder to upload; blob names are paths relative to it, after the prefix" };
        var to = new Option<string>("--to") { Description = "Destination: <container>/<prefix> in the configured blob store", Required = true };
        var parallel = new Option<int>("--parallel") { Description = "Files uploaded at once", DefaultValueFactory = _ => 8 };
        var command = new Command(
            "upload",
            "Copy a folder into blob storage in parallel; a blob whose size and stored modification time match its file is left alone, so an interrupted upload resumes");
        command.Arguments.Add(folder);
        command.Options.Add(to);
        command.Options.Add(parallel);
        command.SetAction(async (parseResult, cancellationToken) =>
        {
            var source = parseResult.GetValue(folder)!;
            var destination = parseResult.GetValue(to)!;
            if (FolderInput.IsFolder(destination.Trim()))
            {
                throw new ArgumentException("--to must be <container>/<prefix> in blob storage, not a file:// folder");
            }

            var workers = parseResult.GetValue(parallel);
            if (workers is < 1 or > 256)
            {
                throw new ArgumentException($"--parallel must be between 1 and 256, not {workers}");
            }

            var (containerName, prefix) = RunSubmitCommand.SplitInput(destination);
            var service = Cli.Configuration(parseResult).BlobService();
            var container = service.GetBlobContainerClient(containerName);
            UploadSummary summary;
            try
            {
                await BlobServiceClients.EnsureContainerAsync(container, cancellationToken);
                summary = await UploadAsync(source.FullName, container, prefix, workers, cancellationToken);
            }
            catch (RequestFailedException e) when (e.Status == 403)
            {
                throw BlobAccessDeniedException.From(e, service, containerName, BlobAction.Write);
            }

            Console.WriteLine(string.Create(
                CultureInfo.InvariantCulture,
                $"uploaded {summary.Uploaded} files ({summary.Bytes} bytes) to {containerName}/{prefix}; {summary.Unchanged} unchanged; {summary.NotRead} not read (not regular files, or links out of the folder)"));
            return 0;
        });
        return command;
    }

    /// <summary>
    /// Uploads every regular file under <paramref name="root"/> (in the order and with the names a folder run lists:
    /// <see cref="FolderWalk"/>) to <paramref name="prefix"/> plus its relative path, <paramref name="parallel"/> at
    /// a time. A blob that exists with the file's size and its modification time in metadata is left alone. FIFOs,
    /// sockets, devices and links that resolve outside the folder or to a directory are not read; they are counted.
    /// Throws <see cref="ArgumentException"/> when the folder does not exist.
    /// </summary>
    public static async Task<UploadSummary> UploadAsync(string root, BlobContainerClient container, string prefix, int parallel, CancellationToken cancellationToken)
    {
        root = root.Length > 1 ? root.TrimEnd('/') : root;
        FolderInput.RequireRoot(FolderInput.Scheme + root);
        var realRoot = PosixFiles.RealPath(root) ?? throw new ArgumentException($"folder '{root}' does not exist");
        var within = realRoot.EndsWith('/') ? realRoot : realRoot + "/";
        int uploaded = 0, unchanged = 0, notRead = 0;
        long bytes = 0;
        await Parallel.ForEachAsync(
            Names(root),
            new ParallelOptions { MaxDegreeOfParallelism = parallel, CancellationToken = cancellationToken },
            async (name, ct) =>
            {
                var real = PosixFiles.RealPath(Path.Combine(root, name));
                if (real is null || !real.StartsWith(within, StringComparison.Ordinal)
                    || PosixFiles.Stat(real, followLinks: false) is not { Kind: FileKind.Regular } facts)
                {
                    Interlocked.Increment(ref notRead);
                    return;
                }

                var blob = container.GetBlobClient(prefix + name);
                var ticks = facts.LastWriteTicks.ToString(CultureInfo.InvariantCulture);
                if (await IsCurrentAsync(blob, facts.Length, ticks, ct))
                {
                    Interlocked.Increment(ref unchanged);
                    return;
                }

                await using (var file = new FileStream(real, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, 81920, useAsync: true))
                {
                    await blob.UploadAsync(
                        file,
                        new BlobUploadOptions { Metadata = new Dictionary<string, string> { [MtimeMetadataKey] = ticks } },
                        ct);
                }

                Interlocked.Increment(ref uploaded);
                Interlocked.Add(ref bytes, facts.Length);
            });
        return new UploadSummary(uploaded, unchanged, notRead, bytes);
    }

    private static IEnumerable<string> Names(string root)
    {
        var walk = FolderWalk.Start(root, "", null);
        while (walk.Next() is { } name)
        {
            yield return name;
        }
    }

    private static async Task<bool> IsCurrentAsync(BlobClient blob, long length, string ticks, CancellationToken cancellationToken)
    {
        try
        {
            var properties = (await blob.GetPropertiesAsync(cancellationToken: cancellationToken)).Value;
            return properties.ContentLength == length
                && properties.Metadata.TryGetValue(MtimeMetadataKey, out var stored)
                && stored == ticks;
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            return false;
        }
    }
}
