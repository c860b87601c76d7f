using System.Diagnostics;
using System.Net.Sockets;
using HubertEcg.Client.Commands;
using HubertEcg.Grains;
using HubertEcg.Inference.Ecg;
using HubertEcg.Inference.Formats;
using HubertEcg.Storage.Folders;
using HubertEcg.Worker;

namespace HubertEcg.Unit.Tests.Folders;

/// <summary>The folder input store: listing order and continuation, versions, path safety and how its failures read.</summary>
public sealed class FolderStoreTests : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "hubert-folder-" + Guid.NewGuid().ToString("N"));
    private readonly string _outside = Path.Combine(Path.GetTempPath(), "hubert-outside-" + Guid.NewGuid().ToString("N"));

    public FolderStoreTests()
    {
        Directory.CreateDirectory(_root);
        Directory.CreateDirectory(_outside);
    }

    private string Container => FolderInput.Scheme + _root;

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

    /// <summary>Names whose per-directory order differs from their full-path order unless directories sort as "name/".</summary>
    private static readonly string[] TrickyTree =
    [
        "a.hea", "a-c.hea", "a/b.hea", "a/b/c.hea", "a/b-0.hea", "a0.hea", "ab/x.dat", "B.hea", "z/y/x/w.hea", "z/y.hea", "z/y0/q.hea",
        "ä.hea", "m/.hidden.hea", ".snapshot/a.hea",
    ];

    private void Write(string name, string text = "x")
    {
        var path = Path.Combine(_root, name);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, text);
    }

    private static List<string> Expected(IEnumerable<string> names, string prefix = "") =>
        names.Where(n => !n.Split('/').Any(s => s.StartsWith('.')) && n.StartsWith(prefix, StringComparison.Ordinal))
            .Order(StringComparer.Ordinal)
            .ToList();

    private static async Task<List<string>> ListAllAsync(Func<FolderStore> store, string container, string prefix, int pageSize)
    {
        var names = new List<string>();
        string? token = null;
        var pages = 0;
        do
        {
            var page = await store().ListPageAsync(container, prefix, token, pageSize);
            Assert.True(page.Items.Count <= pageSize);
            names.AddRange(page.Items.Select(i => i.Name));
            token = page.ContinuationToken;
            Assert.True(++pages < 1000, "the listing does not end");
        }
        while (token is not null);
        return names;
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(5)]
    [InlineData(100)]
    public async Task ListingIsTheOrdinalOrderOfFullPathsAcrossPagesWithTheWalkKeptOrResumedFromTheToken(int pageSize)
    {
        foreach (var name in TrickyTree)
        {
            Write(name);
        }

        var kept = new FolderStore();
        Assert.Equal(Expected(TrickyTree), await ListAllAsync(() => kept, Container, "", pageSize));

        // A new store for every page: each resumes from the token alone (a restarted silo).
        Assert.Equal(Expected(TrickyTree), await ListAllAsync(() => new FolderStore(), Container, "", pageSize));
    }

    [Theory]
    [InlineData("a")]
    [InlineData("a/")]
    [InlineData("z/y")]
    [InlineData("nothing")]
    public async Task APrefixListsOnlyThePathsThatStartWithIt(string prefix)
    {
        foreach (var name in TrickyTree)
        {
            Write(name);
        }

        Assert.Equal(Expected(TrickyTree, prefix), await ListAllAsync(() => new FolderStore(), Container, prefix, 2));
    }

    [Fact]
    public void ResumingReadsOnlyTheDirectoriesOnTheTokensPath()
    {
        for (var d = 0; d < 20; d++)
        {
            for (var f = 0; f < 5; f++)
            {
                Write($"d{d:00}/r{f}.hea");
            }
        }

        var walk = FolderWalk.Start(_root, "", "d07/r4.hea");
        Assert.Equal(2, walk.DirectoriesRead);
        Assert.Equal("d08/r0.hea", walk.Next());
        Assert.Equal(3, walk.DirectoriesRead);
    }

    [Fact]
    public async Task AVersionIsSizeAndModificationTimeAndChangesWhenEitherDoes()
    {
        Write("r.hea", "abc");
        var store = new FolderStore();
        var listed = Assert.Single((await store.ListPageAsync(Container, "", null, 10)).Items);
        Assert.Equal(3, listed.Length);
        var ticks = File.GetLastWriteTimeUtc(Path.Combine(_root, "r.hea")).Ticks;
        Assert.Equal($"3:{ticks}", listed.ETag);

        var local = Path.Combine(_outside, "copy", "r.hea");
        Assert.Equal(listed.ETag, await store.DownloadToFileAsync(Container, "r.hea", local, 100));
        Assert.Equal("abc", File.ReadAllText(local));

        File.SetLastWriteTimeUtc(Path.Combine(_root, "r.hea"), new DateTime(2030, 1, 2, 3, 4, 5, DateTimeKind.Utc));
        var touched = Assert.Single((await store.ListPageAsync(Container, "", null, 10)).Items);
        Assert.Equal($"3:{new DateTime(2030, 1, 2, 3, 4, 5, DateTimeKind.Utc).Ticks}", touched.ETag);
    }

    [Fact]
    public async Task ALinkOutOfTheFolderIsRefusedAndALinkInsideItIsReadAsItsTarget()
    {
        File.WriteAllText(Path.Combine(_outside, "secret.hea"), "secret");
        Write("in/target.hea", "inside");
        File.CreateSymbolicLink(Path.Combine(_root, "out.hea"), Path.Combine(_outside, "secret.hea"));
        File.CreateSymbolicLink(Path.Combine(_root, "alias.hea"), Path.Combine(_root, "in", "target.hea"));
        Directory.CreateSymbolicLink(Path.Combine(_root, "linkdir"), _outside);
        var store = new FolderStore();

        // The linked directory is not entered: its files are not listed under the folder.
        var page = await store.ListPageAsync(Container, "", null, 10);
        Assert.Equal(["alias.hea", "in/target.hea", "linkdir", "out.hea"], page.Items.Select(i => i.Name));
        Assert.Equal(page.Items[1].ETag, page.Items[0].ETag);

        var refused = await Assert.ThrowsAsync<InputRefusedException>(() => store.DownloadToFileAsync(Container, "out.hea", Path.Combine(_outside, "o"), 100));
        Assert.Contains("resolves outside the input folder", refused.Message, StringComparison.Ordinal);
        await Assert.ThrowsAsync<InputRefusedException>(() => store.DownloadToFileAsync(Container, "linkdir/secret.hea", Path.Combine(_outside, "o2"), 100));
        var directory = await Assert.ThrowsAsync<InputRefusedException>(() => store.DownloadToFileAsync(Container, "in", Path.Combine(_outside, "o3"), 100));
        Assert.Contains("directory", directory.Message, StringComparison.Ordinal);

        Assert.Equal(page.Items[0].ETag, await store.DownloadToFileAsync(Container, "alias.hea", Path.Combine(_outside, "a"), 100));
        Assert.Equal("inside", File.ReadAllText(Path.Combine(_outside, "a")));
    }

    [Theory]
    [InlineData("../x.hea")]
    [InlineData("a/../../x.hea")]
    [InlineData("/etc/passwd")]
    [InlineData("a//b.hea")]
    [InlineData("./a.hea")]
    public async Task ANameThatIsNotARelativePathUnderTheFolderIsRefused(string name)
    {
        File.WriteAllText(Path.Combine(_outside, "x.hea"), "x");
        var refused = await Assert.ThrowsAsync<InputRefusedException>(() => new FolderStore().DownloadToFileAsync(Container, name, Path.Combine(_outside, "o"), 100));
        Assert.Contains("the name", refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task FifosAndSocketsAreListedWithoutBlockingAndRefusedWithTheirKind()
    {
        var fifo = Path.Combine(_root, "pipe.hea");
        using (var mkfifo = Process.Start(new ProcessStartInfo("mkfifo", [fifo]) { UseShellExecute = false })!)
        {
            await mkfifo.WaitForExitAsync();
            Assert.Equal(0, mkfifo.ExitCode);
        }

        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        socket.Bind(new UnixDomainSocketEndPoint(Path.Combine(_root, "sock.hea")));
        Write("real.hea");
        var store = new FolderStore();

        var page = await store.ListPageAsync(Container, "", null, 10);
        Assert.Equal(["pipe.hea", "real.hea", "sock.hea"], page.Items.Select(i => i.Name));
        Assert.Equal(-1, page.Items[0].Length);

        var pipe = await Assert.ThrowsAsync<InputRefusedException>(() => store.DownloadToFileAsync(Container, "pipe.hea", Path.Combine(_outside, "p"), 100));
        Assert.Contains("FIFO", pipe.Message, StringComparison.Ordinal);
        var sock = await Assert.ThrowsAsync<InputRefusedException>(() => store.ReadRangeAsync(Container, "sock.hea", 0, 10, null));
        Assert.Contains("socket", sock.Message, StringComparison.Ordinal);
        var device = await Assert.ThrowsAsync<InputRefusedException>(() => new FolderStore().DownloadToFileAsync("file:///dev", "null", Path.Combine(_outside, "n"), 100));
        Assert.Contains("character device", device.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ARootThatIsGoneIsAnOutageAndAFileThatIsGoneIsNotFound()
    {
        Write("r.hea");
        var store = new FolderStore();
        var gone = await Assert.ThrowsAsync<BlobNotFoundException>(() => store.DownloadToFileAsync(Container, "other.hea", Path.Combine(_outside, "o"), 100));
        Assert.Contains("other.hea", gone.Message, StringComparison.Ordinal);

        Directory.Delete(_root, recursive: true);
        var listing = await Assert.ThrowsAsync<ServiceUnavailableException>(() => store.ListPageAsync(Container, "", null, 10));
        Assert.Equal(ServiceUnavailableException.Storage, listing.Service);
        Assert.Contains(_root, listing.Message, StringComparison.Ordinal);
        await Assert.ThrowsAsync<ServiceUnavailableException>(() => store.DownloadToFileAsync(Container, "r.hea", Path.Combine(_outside, "o"), 100));
        await Assert.ThrowsAsync<ServiceUnavailableException>(() => store.ReadRangeAsync(Container, "r.hea", 0, 10, null));
    }

    [Fact]
    public async Task MountErrorsAreOutagesAndOtherIoErrorsAreNot()
    {
        Assert.True(FolderStore.IsMountFailure(new IOException("Input/output error", 5)));
        Assert.True(FolderStore.IsMountFailure(new IOException("Stale file handle", 116)));
        Assert.False(FolderStore.IsMountFailure(new IOException("No space left on device", 28)));
        Assert.False(FolderStore.IsMountFailure(new FileNotFoundException("gone")));

        File.WriteAllText(Path.Combine(_outside, "file"), "x");
        var notDirectory = await Assert.ThrowsAsync<BlobNotFoundException>(
            () => new FolderStore().ListPageAsync(FolderInput.Scheme + Path.Combine(_outside, "file"), "", null, 10));
        Assert.Contains("is not a directory", notDirectory.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AFileOverTheShardLimitIsTooLargeAndAManifestReadIsPinnedToItsVersion()
    {
        Write("big.hea", new string('x', 200));
        var store = new FolderStore();
        await Assert.ThrowsAsync<BlobTooLargeException>(() => store.DownloadToFileAsync(Container, "big.hea", Path.Combine(_outside, "b"), 100));

        Write("list.txt", "a.hea\nb.hea\n");
        var first = await store.ReadRangeAsync(Container, "list.txt", 0, 6, null);
        Assert.Equal("a.hea\n", System.Text.Encoding.UTF8.GetString(first.Data));
        Assert.Equal(12, first.TotalLength);
        var rest = await store.ReadRangeAsync(Container, "list.txt", 6, 100, first.ETag);
        Assert.Equal("b.hea\n", System.Text.Encoding.UTF8.GetString(rest.Data));

        Write("list.txt", "a.hea\nc.hea\nd.hea\n");
        await Assert.ThrowsAsync<BlobChangedException>(() => store.ReadRangeAsync(Container, "list.txt", 6, 100, first.ETag));
    }

    [Theory]
    [InlineData("file:///mnt/ecg", "file:///mnt/ecg", "")]
    [InlineData("file:///mnt/ecg/", "file:///mnt/ecg", "")]
    [InlineData("file:///mnt/ecg//2024/", "file:///mnt/ecg", "2024/")]
    [InlineData("file:///mnt/ecg//2024/rec", "file:///mnt/ecg", "2024/rec")]
    [InlineData("file:///", "file:///", "")]
    public void AFolderInputSplitsIntoItsRootAndPrefix(string input, string container, string prefix)
    {
        Assert.Equal((container, prefix), FolderInput.Parse(input));
        Assert.Equal((container, prefix), FolderInput.Parse(FolderInput.Describe(container, prefix)));
    }

    [Theory]
    [InlineData("file://host/share", "absolute path")]
    [InlineData("file:///mnt/../etc", ". or ..")]
    [InlineData("file:///mnt//../x", "relative path")]
    public void AFolderInputThatCannotBeReadIsRefusedWithTheReason(string input, string reason)
    {
        var e = Assert.Throws<ArgumentException>(() => FolderInput.Parse(input));
        Assert.Contains(reason, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void TheCommandLineTakesFolderInputsAndManifestsInTheirUrlForm()
    {
        Assert.Equal(("file:///mnt/ecg", "2024/", (string?)null), RunSubmitCommand.ResolveInput("file:///mnt/ecg//2024/", null));
        Assert.Equal(("file:///mnt/ecg", "", "lists/a.txt"), RunSubmitCommand.ResolveInput(null, "file:///mnt/ecg//lists/a.txt"));
        var noFile = Assert.Throws<ArgumentException>(() => RunSubmitCommand.ResolveInput(null, "file:///mnt/ecg"));
        Assert.Contains("names no file", noFile.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void SubmitNamesARootThatIsMissingOrNotADirectory()
    {
        var missing = Assert.Throws<ArgumentException>(() => FolderInput.RequireRoot(FolderInput.Scheme + Path.Combine(_root, "none")));
        Assert.Contains(Path.Combine(_root, "none"), missing.Message, StringComparison.Ordinal);
        Assert.Contains("does not exist", missing.Message, StringComparison.Ordinal);
        Write("f");
        var file = Assert.Throws<ArgumentException>(() => FolderInput.RequireRoot(FolderInput.Scheme + Path.Combine(_root, "f")));
        Assert.Contains("is not a directory", file.Message, StringComparison.Ordinal);
        FolderInput.RequireRoot(Container);
    }

    [Fact]
    public void ARecordWithARefusedFileIsQuarantinedWithTheReason()
    {
        var decoder = new RecordDecoder(FormatRegistry.Create());
        var shard = new DownloadedShard(ShardKind.Records, Container, _outside, [])
        {
            RefusedBlobs = new Dictionary<string, string>(StringComparer.Ordinal) { ["r1.dat"] = "'x/r1.dat' is not read: a FIFO (named pipe), not a regular file" },
        };

        var record = Assert.Single(decoder.Enumerate(shard));
        Assert.Equal("r1", record.RecordId);
        var e = Assert.Throws<EcgFormatException>(() => record.Load());
        Assert.Contains("FIFO", e.Message, StringComparison.Ordinal);
    }
}
