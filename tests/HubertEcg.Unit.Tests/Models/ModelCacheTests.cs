using System.Collections.Concurrent;
using System.Security.Cryptography;
using HubertEcg.Worker;
using Microsoft.Extensions.Logging.Abstractions;

namespace HubertEcg.Unit.Tests.Models;

public sealed class ModelCacheTests : IDisposable
{
    private const string Container = "models";

    private readonly string _folder = Path.Combine(Path.GetTempPath(), "model-cache-test-" + Guid.NewGuid().ToString("N"));
    private readonly FakeModelBlobs _blobs = new();

    public void Dispose()
    {
        if (Directory.Exists(_folder))
        {
            Directory.Delete(_folder, recursive: true);
        }
    }

    [Fact]
    public async Task Concurrent_requests_for_one_model_share_one_download()
    {
        var model = _blobs.Add(seed: 1, bytes: 4096);
        var cache = NewCache(1 << 20);
        _blobs.Gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

        var acquiring = Enumerable.Range(0, 6).Select(_ => cache.AcquireAsync(model)).ToList();
        await _blobs.WaitForDownloadsAsync(1);
        _blobs.Gate.SetResult();
        var handles = await Task.WhenAll(acquiring);

        Assert.Equal(1, _blobs.Downloads);
        Assert.Equal(1, cache.Downloads);
        Assert.Single(handles.Select(h => h.Path).Distinct());
        Assert.Equal(_blobs.Content(model), await File.ReadAllBytesAsync(handles[0].Path));
        foreach (var handle in handles)
        {
            handle.Dispose();
        }

        // Used again later: the file is checked again, not downloaded again.
        using (var again = await cache.AcquireAsync(model))
        {
            Assert.Equal(handles[0].Path, again.Path);
        }

        Assert.Equal(1, _blobs.Downloads);
        Assert.Equal(2, cache.Verifications);
        Assert.Equal(0, cache.Rejections);
    }

    [Fact]
    public async Task A_cached_file_altered_since_it_was_downloaded_is_refused_and_fetched_again()
    {
        var model = _blobs.Add(seed: 2, bytes: 2048);
        var cache = NewCache(1 << 20);
        string path;
        using (var first = await cache.AcquireAsync(model))
        {
            path = first.Path;
        }

        var bytes = await File.ReadAllBytesAsync(path);
        bytes[100] ^= 0xFF;
        await File.WriteAllBytesAsync(path, bytes);

        using (var second = await cache.AcquireAsync(model))
        {
            Assert.Equal(_blobs.Content(model), await File.ReadAllBytesAsync(second.Path));
        }

        Assert.Equal(1, cache.Rejections);
        Assert.Equal(2, _blobs.Downloads);
    }

    [Fact]
    public async Task A_download_whose_hash_is_another_is_refused_fetched_again_and_then_given_up_with_the_reason()
    {
        var model = _blobs.Add(seed: 3, bytes: 1024);
        var cache = NewCache(1 << 20);

        // Damaged on the first download only: refused, fetched again, accepted.
        _blobs.DamageNext = 1;
        using (var handle = await cache.AcquireAsync(model))
        {
            Assert.Equal(_blobs.Content(model), await File.ReadAllBytesAsync(handle.Path));
        }

        Assert.Equal((1L, 2L), (cache.Rejections, cache.Downloads));

        // A blob that stays damaged: the caller gets a storage outage naming the hashes, and nothing stays in the folder.
        var other = _blobs.Add(seed: 4, bytes: 1024);
        _blobs.DamageNext = int.MaxValue;
        var refused = await Assert.ThrowsAsync<ServiceUnavailableException>(() => cache.AcquireAsync(other));
        Assert.Equal(ServiceUnavailableException.Storage, refused.Service);
        Assert.Contains($"not {other.Sha256}", refused.Message, StringComparison.Ordinal);
        Assert.Contains(other.ModelId, refused.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(Directory.EnumerateFiles(_folder), f => Path.GetFileName(f).StartsWith(other.Sha256, StringComparison.Ordinal));
        Assert.Equal(3L, cache.Rejections);
    }

    [Fact]
    public async Task A_missing_blob_or_one_larger_than_the_cache_is_a_storage_failure_with_the_reason()
    {
        var cache = NewCache(4096);
        var missing = new ModelBlob(Container, Sha("missing-id"), Sha("missing-file"));
        var notThere = await Assert.ThrowsAsync<ServiceUnavailableException>(() => cache.AcquireAsync(missing));
        Assert.Contains("does not exist", notThere.Message, StringComparison.Ordinal);

        var large = _blobs.Add(seed: 5, bytes: 8192);
        var tooLarge = await Assert.ThrowsAsync<ServiceUnavailableException>(() => cache.AcquireAsync(large));
        Assert.Contains("Models:CacheMaxBytes", tooLarge.Message, StringComparison.Ordinal);
        Assert.Equal(0, cache.Bytes);
    }

    [Fact]
    public async Task The_least_recently_used_files_go_when_the_bound_is_passed()
    {
        var a = _blobs.Add(seed: 10, bytes: 1000);
        var b = _blobs.Add(seed: 11, bytes: 1000);
        var c = _blobs.Add(seed: 12, bytes: 1000);
        var cache = NewCache(2500);

        await UseAsync(cache, a);
        await UseAsync(cache, b);
        await UseAsync(cache, a);
        await UseAsync(cache, c);

        Assert.Equal([a.Sha256, c.Sha256], cache.Held);
        Assert.Equal(2000, cache.Bytes);
        Assert.Equal(1, cache.Evictions);
        Assert.False(File.Exists(Path.Combine(_folder, b.Sha256 + ".onnx")));
        Assert.True(File.Exists(Path.Combine(_folder, a.Sha256 + ".onnx")));
    }

    [Fact]
    public async Task A_model_held_by_a_caller_is_never_evicted()
    {
        var a = _blobs.Add(seed: 20, bytes: 1000);
        var b = _blobs.Add(seed: 21, bytes: 1000);
        var c = _blobs.Add(seed: 22, bytes: 1000);
        var cache = NewCache(1500);

        var heldA = await cache.AcquireAsync(a);
        await UseAsync(cache, b);

        // B passed the bound while A was held: A stays, B (released, least recently used besides A) may go.
        Assert.True(File.Exists(heldA.Path));
        Assert.Contains(a.Sha256, cache.Held);
        await UseAsync(cache, c);
        Assert.True(File.Exists(heldA.Path));
        Assert.Equal(_blobs.Content(a), await File.ReadAllBytesAsync(heldA.Path));
        heldA.Dispose();

        // Released, A is the least recently used and goes when the next model comes.
        await UseAsync(cache, b);
        Assert.Equal([b.Sha256], cache.Held);
        Assert.Equal(1000, cache.Bytes);
    }

    [Fact]
    public async Task Files_left_in_the_folder_are_adopted_checked_and_old_unfinished_downloads_deleted()
    {
        var model = _blobs.Add(seed: 30, bytes: 1500);
        Directory.CreateDirectory(_folder);
        await File.WriteAllBytesAsync(Path.Combine(_folder, model.Sha256 + ".onnx"), _blobs.Content(model));
        var part = Path.Combine(_folder, model.Sha256 + ".onnx.0123.part");
        await File.WriteAllBytesAsync(part, [1, 2, 3]);
        File.SetLastWriteTimeUtc(part, DateTime.UtcNow.AddHours(-2));
        var recentPart = Path.Combine(_folder, model.Sha256 + ".onnx.4567.part");
        await File.WriteAllBytesAsync(recentPart, [4, 5, 6]);

        var cache = NewCache(1 << 20);
        Assert.False(File.Exists(part));
        Assert.True(File.Exists(recentPart), "a recent unfinished download may be another cache's, sharing the folder");
        Assert.Equal([model.Sha256], cache.Held);
        using (await cache.AcquireAsync(model))
        {
        }

        Assert.Equal(0, _blobs.Downloads);
        Assert.Equal(1, cache.Verifications);
    }

    [Fact]
    public void Model_locations_name_the_container_id_and_hash_and_file_paths_are_no_blob()
    {
        var blob = new ModelBlob(Container, Sha("id"), Sha("file"));
        Assert.Equal($"blob:models/{blob.ModelId}/{blob.Sha256}.onnx", blob.Location);
        Assert.Equal(blob, ModelLocation.Parse(blob.Location));
        Assert.Null(ModelLocation.Parse("/models/tiny.onnx"));
        Assert.Throws<FormatException>(() => ModelLocation.Parse("blob:models/abc.onnx"));
        Assert.Throws<FormatException>(() => ModelLocation.Parse($"blob:Models_X/{blob.ModelId}/{blob.Sha256}.onnx"));
        Assert.Null(ModelLocation.Problem(blob.Location, blob.ModelId));
        Assert.Contains("not " + Sha("other"), ModelLocation.Problem(blob.Location, Sha("other")), StringComparison.Ordinal);
        Assert.Null(ModelLocation.Problem("/models/tiny.onnx", Sha("other")));
        Assert.NotEmpty(new ModelOptions { Container = "Bad_Name", CacheMaxBytes = 0 }.Problems());
        Assert.Equal(2, new ModelOptions { Container = "Bad_Name", CacheMaxBytes = 0 }.Problems().Count);
        Assert.Empty(new ModelOptions().Problems());
    }

    private static async Task UseAsync(ModelCache cache, ModelBlob model)
    {
        using var handle = await cache.AcquireAsync(model);
    }

    private static string Sha(string text) => Convert.ToHexStringLower(SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(text)));

    private ModelCache NewCache(long maxBytes) =>
        new(_blobs, new ModelOptions { CacheFolder = _folder, CacheMaxBytes = maxBytes }, NullLogger<ModelCache>.Instance);

    /// <summary>Model blobs in memory; counts downloads, can hold them at a gate, and can damage the next ones.</summary>
    private sealed class FakeModelBlobs : IBlobSource
    {
        private readonly ConcurrentDictionary<string, byte[]> _blobs = new(StringComparer.Ordinal);
        private int _downloads;

        public int Downloads => Volatile.Read(ref _downloads);

        public TaskCompletionSource? Gate { get; set; }

        /// <summary>How many of the next downloads come back with a byte flipped.</summary>
        public int DamageNext { get; set; }

        public ModelBlob Add(int seed, int bytes)
        {
            var content = new byte[bytes];
            new Random(seed).NextBytes(content);
            var blob = new ModelBlob(Container, Sha("model " + seed), Convert.ToHexStringLower(SHA256.HashData(content)));
            _blobs[blob.BlobName] = content;
            return blob;
        }

        public byte[] Content(ModelBlob blob) => _blobs[blob.BlobName];

        public async Task WaitForDownloadsAsync(int count)
        {
            var deadline = DateTime.UtcNow.AddSeconds(60);
            while (Downloads < count)
            {
                Assert.True(DateTime.UtcNow < deadline, $"timed out waiting for {count} downloads");
                await Task.Delay(5);
            }
        }

        public async Task<string> DownloadToFileAsync(string container, string blobName, string path, long maxBytes, CancellationToken cancellationToken = default)
        {
            Interlocked.Increment(ref _downloads);
            if (Gate is { } gate)
            {
                await gate.Task.WaitAsync(cancellationToken);
            }

            if (!_blobs.TryGetValue(blobName, out var content))
            {
                throw new BlobNotFoundException(container, blobName);
            }

            if (content.Length > maxBytes)
            {
                throw new BlobTooLargeException(container, blobName, content.Length, maxBytes);
            }

            var copy = content.ToArray();
            if (DamageNext > 0)
            {
                DamageNext--;
                copy[copy.Length / 2] ^= 0x55;
            }

            await File.WriteAllBytesAsync(path, copy, cancellationToken);
            return "\"etag\"";
        }
    }
}
