using HubertEcg.Storage.Folders;
using HubertEcg.Worker;

namespace HubertEcg.Storage;

/// <summary>
/// Where a run's records are read from: a blob container, or a folder every silo sees (<see cref="FolderStore"/>).
/// The planner lists and reads manifests through it, workers download through it (<see cref="IBlobSource"/>); names
/// are paths relative to the container, versions are ETags or what stands in for them, errors are the same
/// exceptions (<see cref="BlobNotFoundException"/>, <see cref="BlobChangedException"/>,
/// <see cref="BlobTooLargeException"/>, <see cref="ServiceUnavailableException"/> for an outage).
/// </summary>
public interface IInputStore : IBlobSource
{
    /// <summary>Lists up to <paramref name="pageSize"/> entries under <paramref name="prefix"/> in ordinal name order, continuing from <paramref name="continuationToken"/>.</summary>
    Task<BlobPage> ListPageAsync(string container, string prefix, string? continuationToken, int pageSize, CancellationToken cancellationToken = default);

    /// <summary>
    /// Reads up to <paramref name="maxBytes"/> bytes of an entry from <paramref name="offset"/>. With
    /// <paramref name="ifMatch"/>, throws <see cref="BlobChangedException"/> when its version is another one.
    /// </summary>
    Task<BlobChunk> ReadRangeAsync(string container, string blobName, long offset, int maxBytes, string? ifMatch, CancellationToken cancellationToken = default);
}

/// <summary>The input store of each run: a container that starts with <c>file://</c> is a folder (<see cref="FolderInput"/>), any other a blob container.</summary>
public sealed class InputStores(BlobStore blobs, FolderStore folders) : IInputStore
{
    public Task<BlobPage> ListPageAsync(string container, string prefix, string? continuationToken, int pageSize, CancellationToken cancellationToken = default) =>
        For(container).ListPageAsync(container, prefix, continuationToken, pageSize, cancellationToken);

    public Task<BlobChunk> ReadRangeAsync(string container, string blobName, long offset, int maxBytes, string? ifMatch, CancellationToken cancellationToken = default) =>
        For(container).ReadRangeAsync(container, blobName, offset, maxBytes, ifMatch, cancellationToken);

    public Task<string> DownloadToFileAsync(string container, string blobName, string path, long maxBytes, CancellationToken cancellationToken = default) =>
        For(container).DownloadToFileAsync(container, blobName, path, maxBytes, cancellationToken);

    private IInputStore For(string container) => FolderInput.IsFolder(container) ? folders : blobs;
}
