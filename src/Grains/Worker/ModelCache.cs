using System.Security.Cryptography;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Logging;

namespace HubertEcg.Worker;

/// <summary>
/// A silo's models, downloaded from blob storage into a folder of its own (<see cref="ModelOptions.CacheFolder"/>)
/// as <c>&lt;sha256&gt;.onnx</c> and shared by its workers. <see cref="AcquireAsync"/> gives a model's local file
/// after checking its SHA-256 against the content address: a file already here is checked again (a copy damaged or
/// altered since it was last used is refused, deleted and fetched again); a missing one is downloaded once, however
/// many callers ask at the same time, and refused when its hash is another (fetched again once more, then the caller
/// gets a <see cref="ServiceUnavailableException"/> for storage with the reason). Files are kept within
/// <see cref="ModelOptions.CacheMaxBytes"/>: when a new file takes the cache past it, the least recently used files
/// that no caller holds are deleted. A caller holds a model from <see cref="AcquireAsync"/> until it disposes the
/// handle (a worker holds it while it loads the model; the loaded session needs the file no more).
/// </summary>
public sealed partial class ModelCache
{
    private const int DownloadTries = 2;

    /// <summary>How old an unfinished download (<c>.part</c>) must be before a starting cache deletes it.</summary>
    private static readonly TimeSpan StalePartAge = TimeSpan.FromHours(1);

    private readonly IBlobSource _blobs;
    private readonly ModelOptions _options;
    private readonly ILogger _logger;
    private readonly ScoringMetrics? _metrics;
    private readonly Dictionary<string, Entry> _entries = new(StringComparer.Ordinal);
    private long _clock;
    private long _downloads;
    private long _verifications;
    private long _rejections;
    private long _evictions;

    /// <summary>Creates the folder, deletes unfinished downloads left there an hour ago or more, and adopts the model files found (checked when first used).</summary>
    public ModelCache(IBlobSource blobs, ModelOptions options, ILogger<ModelCache> logger, ScoringMetrics? metrics = null)
    {
        _blobs = blobs;
        _options = options;
        _logger = logger;
        _metrics = metrics;
        Folder = options.EffectiveCacheFolder;
        Directory.CreateDirectory(Folder);
        foreach (var file in new DirectoryInfo(Folder).EnumerateFiles().OrderBy(f => f.LastWriteTimeUtc))
        {
            if (file.Name.EndsWith(".part", StringComparison.Ordinal))
            {
                // An unfinished download of a silo that stopped; a recent one may be another silo's, sharing the folder.
                if (file.LastWriteTimeUtc < DateTime.UtcNow - StalePartAge)
                {
                    file.Delete();
                }
            }
            else if (CachedFileName().Match(file.Name) is { Success: true } match)
            {
                _entries[match.Groups["sha"].Value] = new Entry(match.Groups["sha"].Value, file.FullName) { Length = file.Length, LastUsed = ++_clock };
            }
        }

        lock (_entries)
        {
            EvictBeyondBound();
        }
    }

    /// <summary>The folder the files are in.</summary>
    public string Folder { get; }

    /// <summary>Model files downloaded from blob storage by this cache (each try counts).</summary>
    public long Downloads => Interlocked.Read(ref _downloads);

    /// <summary>SHA-256 checks of a model file, cached or just downloaded.</summary>
    public long Verifications => Interlocked.Read(ref _verifications);

    /// <summary>Files refused because their SHA-256 was not the one their content address names (cached or downloaded).</summary>
    public long Rejections => Interlocked.Read(ref _rejections);

    /// <summary>Files deleted to keep within <see cref="ModelOptions.CacheMaxBytes"/>.</summary>
    public long Evictions => Interlocked.Read(ref _evictions);

    /// <summary>Bytes of model files in the folder now.</summary>
    public long Bytes
    {
        get
        {
            lock (_entries)
            {
                return _entries.Values.Sum(e => e.Length);
            }
        }
    }

    /// <summary>The SHA-256 of the files the cache holds now, least recently used first.</summary>
    public IReadOnlyList<string> Held
    {
        get
        {
            lock (_entries)
            {
                return _entries.Values.Where(e => e.Length > 0).OrderBy(e => e.LastUsed).Select(e => e.Sha256).ToList();
            }
        }
    }

    /// <summary>
    /// The verified local file of <paramref name="model"/>, held (not evicted) until the handle is disposed. Callers that
    /// ask while another one's check or download of the same model runs share it. Throws
    /// <see cref="ServiceUnavailableException"/> (storage) when the model cannot be had, with the reason.
    /// </summary>
    public async Task<ModelHandle> AcquireAsync(ModelBlob model, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        Entry entry;
        Task pending;
        lock (_entries)
        {
            if (!_entries.TryGetValue(model.Sha256, out var found))
            {
                found = new Entry(model.Sha256, Path.Combine(Folder, model.Sha256 + ".onnx"));
                _entries[model.Sha256] = found;
            }

            entry = found;
            entry.Pins++;
            entry.LastUsed = ++_clock;
            if (entry.Pending is not { IsCompleted: false })
            {
                entry.Pending = Task.Run(() => EnsureAsync(entry, model), CancellationToken.None);
            }

            pending = entry.Pending;
        }

        try
        {
            await pending.WaitAsync(cancellationToken);
            return new ModelHandle(this, entry);
        }
        catch
        {
            Release(entry);
            throw;
        }
    }

    private void Release(Entry entry)
    {
        lock (_entries)
        {
            entry.Pins--;
            if (entry.Pins == 0 && entry.Length == 0 && _entries.TryGetValue(entry.Sha256, out var current) && ReferenceEquals(current, entry))
            {
                // Never got a file: nothing to keep.
                _entries.Remove(entry.Sha256);
            }
        }
    }

    /// <summary>Checks the cached file, or downloads and checks a new one; the one place a model's file is written.</summary>
    private async Task EnsureAsync(Entry entry, ModelBlob model)
    {
        if (File.Exists(entry.Path))
        {
            var actual = await HashAsync(entry.Path);
            if (string.Equals(actual, model.Sha256, StringComparison.Ordinal))
            {
                SetLength(entry, new FileInfo(entry.Path).Length);
                return;
            }

            Interlocked.Increment(ref _rejections);
            _metrics?.AddModelRejected(model.ModelId, "cached");
            LogCachedRejected(_logger, model.ModelId, entry.Path, actual, model.Sha256);
            File.Delete(entry.Path);
            SetLength(entry, 0);
        }

        string? last = null;
        for (var attempt = 1; attempt <= DownloadTries; attempt++)
        {
            var part = entry.Path + "." + Guid.NewGuid().ToString("N") + ".part";
            try
            {
                Interlocked.Increment(ref _downloads);
                _metrics?.AddModelDownload(model.ModelId);
                LogDownloading(_logger, model.ModelId, model.Container, model.BlobName);
                try
                {
                    await _blobs.DownloadToFileAsync(model.Container, model.BlobName, part, _options.CacheMaxBytes);
                }
                catch (BlobNotFoundException e)
                {
                    throw Unavailable(model, "its blob does not exist (was it deleted, or registered in another Models:Container?)", e);
                }
                catch (BlobTooLargeException e)
                {
                    throw Unavailable(model, $"it is {e.Length} bytes, more than Models:CacheMaxBytes ({_options.CacheMaxBytes}) allows", e);
                }
                catch (Exception e)
                {
                    throw Unavailable(model, SafeErrors.Describe(e), e);
                }

                var actual = await HashAsync(part);
                if (string.Equals(actual, model.Sha256, StringComparison.Ordinal))
                {
                    var length = new FileInfo(part).Length;
                    File.Move(part, entry.Path, overwrite: true);
                    SetLength(entry, length);
                    lock (_entries)
                    {
                        EvictBeyondBound();
                    }

                    return;
                }

                Interlocked.Increment(ref _rejections);
                _metrics?.AddModelRejected(model.ModelId, "downloaded");
                last = $"the downloaded file's SHA-256 is {actual}, not {model.Sha256}";
                LogDownloadRejected(_logger, model.ModelId, model.Container, model.BlobName, actual, attempt, DownloadTries);
            }
            finally
            {
                File.Delete(part);
            }
        }

        throw Unavailable(model, $"{last} after {DownloadTries} downloads: the blob is damaged or was replaced; register the model again", null);
    }

    private static ServiceUnavailableException Unavailable(ModelBlob model, string reason, Exception? inner) =>
        inner is ServiceUnavailableException unavailable
            ? new ServiceUnavailableException(unavailable.Service, $"model {model.ModelId} cannot be fetched from {model.Container}/{model.BlobName}: {unavailable.Message}", inner)
            : new ServiceUnavailableException(ServiceUnavailableException.Storage, $"model {model.ModelId} cannot be fetched from {model.Container}/{model.BlobName}: {reason}", inner);

    private async Task<string> HashAsync(string path)
    {
        Interlocked.Increment(ref _verifications);
        await using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20, useAsync: true);
        return Convert.ToHexStringLower(await SHA256.HashDataAsync(stream));
    }

    private void SetLength(Entry entry, long length)
    {
        lock (_entries)
        {
            entry.Length = length;
        }
    }

    /// <summary>Deletes least recently used files nobody holds until the files fit the bound (called under the lock).</summary>
    private void EvictBeyondBound()
    {
        var total = _entries.Values.Sum(e => e.Length);
        if (total <= _options.CacheMaxBytes)
        {
            return;
        }

        foreach (var victim in _entries.Values.Where(e => e.Pins == 0 && e.Length > 0 && e.Pending is null or { IsCompleted: true }).OrderBy(e => e.LastUsed).ToList())
        {
            if (total <= _options.CacheMaxBytes)
            {
                break;
            }

            try
            {
                File.Delete(victim.Path);
            }
            catch (IOException e)
            {
                LogEvictFailed(_logger, victim.Sha256, e.Message);
                continue;
            }

            total -= victim.Length;
            _entries.Remove(victim.Sha256);
            Interlocked.Increment(ref _evictions);
            LogEvicted(_logger, victim.Sha256, victim.Length, total, _options.CacheMaxBytes);
        }
    }

    [GeneratedRegex("^(?<sha>[0-9a-f]{64})\\.onnx$")]
    private static partial Regex CachedFileName();

    [LoggerMessage(Level = LogLevel.Information, Message = "Model {ModelId}: downloading {Container}/{BlobName} into the model cache")]
    private static partial void LogDownloading(ILogger logger, string modelId, string container, string blobName);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Model {ModelId}: the cached file {Path} is refused: its SHA-256 is {Actual}, not {Expected} (damaged or altered since it was downloaded); deleted, fetching it again")]
    private static partial void LogCachedRejected(ILogger logger, string modelId, string path, string actual, string expected);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Model {ModelId}: the download of {Container}/{BlobName} is refused: its SHA-256 is {Actual} (try {Attempt} of {Tries})")]
    private static partial void LogDownloadRejected(ILogger logger, string modelId, string container, string blobName, string actual, int attempt, int tries);

    [LoggerMessage(Level = LogLevel.Information, Message = "Model cache: deleted {Sha256}.onnx ({Bytes} bytes, least recently used); {Total} of {Limit} bytes held")]
    private static partial void LogEvicted(ILogger logger, string sha256, long bytes, long total, long limit);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Model cache: could not delete {Sha256}.onnx to make room: {Reason}")]
    private static partial void LogEvictFailed(ILogger logger, string sha256, string reason);

    internal sealed class Entry(string sha256, string path)
    {
        public string Sha256 { get; } = sha256;

        public string Path { get; } = path;

        /// <summary>Bytes of the verified file; 0 while there is none.</summary>
        public long Length { get; set; }

        public long LastUsed { get; set; }

        /// <summary>Callers holding the model (from acquire to the handle's disposal).</summary>
        public int Pins { get; set; }

        /// <summary>The last (or running) check or download.</summary>
        public Task? Pending { get; set; }
    }

    /// <summary>A verified model file, held in the cache until disposed.</summary>
    public sealed class ModelHandle : IDisposable
    {
        private readonly ModelCache _cache;
        private readonly Entry _entry;
        private int _disposed;

        internal ModelHandle(ModelCache cache, Entry entry)
        {
            _cache = cache;
            _entry = entry;
        }

        /// <summary>The local file, checked against its SHA-256.</summary>
        public string Path => _entry.Path;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0)
            {
                _cache.Release(_entry);
            }
        }
    }
}
