using System.Diagnostics;
using Azure.Storage.Blobs.Models;
using HubertEcg.Client.Commands;
using HubertEcg.Testing;

namespace HubertEcg.Integration.Tests.Scoring;

/// <summary>
/// <c>hubert-ecg input upload</c> against Azurite: a folder's regular files become blobs under the prefix with the
/// folder's relative names; a second upload copies nothing; a touched file is copied again and nothing else is; a
/// FIFO and a link out of the folder are not read.
/// </summary>
public sealed class FolderUploadTests(BlobContainerFixture blobs) : IClassFixture<BlobContainerFixture>, IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "hubert-upload-" + Guid.NewGuid().ToString("N"));
    private readonly string _outside = Path.Combine(Path.GetTempPath(), "hubert-upload-outside-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        foreach (var folder in new[] { _root, _outside })
        {
            if (Directory.Exists(folder))
            {
                Directory.Delete(folder, recursive: true);
            }
        }
    }

    [Fact]
    public async Task AFolderIsUploadedOnceAndOnlyTouchedFilesAgain()
    {
        var cohort = await SyntheticCohort.WriteToFolderAsync(_root, "", 6, mixed: true);
        using (var mkfifo = Process.Start(new ProcessStartInfo("mkfifo", [Path.Combine(_root, "pipe.npy")]) { UseShellExecute = false })!)
        {
            await mkfifo.WaitForExitAsync();
            Assert.Equal(0, mkfifo.ExitCode);
        }

        Directory.CreateDirectory(_outside);
        File.WriteAllText(Path.Combine(_outside, "secret.txt"), "not for upload");
        File.CreateSymbolicLink(Path.Combine(_root, "escape.txt"), Path.Combine(_outside, "secret.txt"));
        var files = Directory.EnumerateFiles(_root, "*", SearchOption.AllDirectories)
            .Select(f => Path.GetRelativePath(_root, f).Replace('\\', '/'))
            .Where(f => f is not ("pipe.npy" or "escape.txt"))
            .Order(StringComparer.Ordinal)
            .ToList();

        var first = await InputCommands.UploadAsync(_root, blobs.Container, "up/", 4, CancellationToken.None);
        Assert.Equal((files.Count, 0, 2), (first.Uploaded, first.Unchanged, first.NotRead));
        var names = new List<string>();
        await foreach (var blob in blobs.Container.GetBlobsAsync(BlobTraits.None, BlobStates.None, "up/", CancellationToken.None))
        {
            names.Add(blob.Name);
        }

        Assert.Equal(files.Select(f => "up/" + f), names);
        Assert.Contains(cohort.GoodRecords, r => r.StartsWith("ptbxl/", StringComparison.Ordinal));
        var original = await File.ReadAllBytesAsync(Path.Combine(_root, "rec00002.npy"));
        Assert.Equal(original, (await blobs.Container.GetBlobClient("up/rec00002.npy").DownloadContentAsync()).Value.Content.ToArray());

        // Nothing changed: nothing is copied.
        var again = await InputCommands.UploadAsync(_root, blobs.Container, "up/", 4, CancellationToken.None);
        Assert.Equal((0, files.Count, 2), (again.Uploaded, again.Unchanged, again.NotRead));

        // Touched: that file alone is copied again.
        File.SetLastWriteTimeUtc(Path.Combine(_root, "rec00002.npy"), DateTime.UtcNow.AddMinutes(3));
        var touched = await InputCommands.UploadAsync(_root, blobs.Container, "up/", 4, CancellationToken.None);
        Assert.Equal((1, files.Count - 1), (touched.Uploaded, touched.Unchanged));
        Assert.Equal(original.Length, touched.Bytes);
    }
}
