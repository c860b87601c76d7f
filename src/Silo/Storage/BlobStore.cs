using Azure;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using HubertEcg.Storage.Access;
using HubertEcg.Worker;

namespace HubertEcg.Storage;

/// <summary>
/// One listed blob: its name within the container, ETag and size. ETags are in header form (quoted), as a download
/// reports them, so that a listed ETag compares equal to the one stored with a score read from the same version.
/// </summary>
public sealed record BlobEntry(string Name, string ETag, long Length);

/// <summary>One page of a listing and the token that continues it (null at the end).</summary>
public sealed record BlobPage(IReadOnlyList<BlobEntry> Items, string? ContinuationToken);

/// <summary>A byte range of a blob, the blob's whole length and its ETag.</summary>
public sealed record BlobChunk(byte[] Data, long TotalLength, string ETag);

/// <summary>
/// Blob adapter for run inputs: resumable listing (page by page with continuation tokens) and streaming
/// downloads to local files, so a worker's memory does not grow with a shard's size. A refusal (HTTP 403) is a
/// <see cref="BlobAccessDeniedException"/> naming the permission the step lacks.
/// </summary>
public sealed class BlobStore(BlobServiceClient service) : IInputStore
{
    public BlobStore(string connectionString)
        : this(new BlobServiceClient(connectionString))
    {
    }

    public BlobServiceClient Service => service;

    /// <summary>Lists up to <paramref name="pageSize"/> blobs under <paramref name="prefix"/>, continuing from <paramref name="continuationToken"/>.</summary>
    public async Task<BlobPage> ListPageAsync(
        string container, string prefix, string? continuationToken, int pageSize, CancellationToken cancellationToken = default)
    {
        var client = service.GetBlobContainerClient(container);
        try
        {
            var pages = client.GetBlobsAsync(BlobTraits.None, BlobStates.None, string.IsNullOrEmpty(prefix) ? null : prefix, cancellationToken)
                .AsPages(continuationToken, pageSize);
            await foreach (var page in pages)
            {
                var items = page.Values
                    .Select(b => new BlobEntry(b.Name, b.Properties.ETag?.ToString("H") ?? "", b.Properties.ContentLength ?? -1))
                    .ToList();
                return new BlobPage(items, string.IsNullOrEmpty(page.ContinuationToken) ? null : page.ContinuationToken);
            }

            return new BlobPage([], null);
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            throw new BlobNotFoundException(container, "", e);
        }
        catch (RequestFailedException e) when (e.Status == 403)
        {
            throw BlobAccessDeniedException.From(e, service, container, BlobAction.List);
        }
        catch (Exception e) when (IsUnavailable(e, cancellationToken))
        {
            throw Unavailable($"listing {container}", e);
        }
    }

    /// <summary>
    /// Reads up to <paramref name="maxBytes"/> bytes of a blob from <paramref name="offset"/> (none at or past its end).
    /// With <paramref name="ifMatch"/>, throws <see cref="BlobChangedException"/> when the blob's ETag is another one;
    /// throws <see cref="BlobNotFoundException"/> when it does not exist.
    /// </summary>
    public async Task<BlobChunk> ReadRangeAsync(
        string container, string blobName, long offset, int maxBytes, string? ifMatch, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxBytes, 1);
        var blob = service.GetBlobContainerClient(container).GetBlobClient(blobName);
        var conditions = ifMatch is null ? null : new BlobRequestConditions { IfMatch = new ETag(ifMatch) };
        try
        {
            var properties = (await blob.GetPropertiesAsync(conditions, cancellationToken)).Value;
            var etag = properties.ETag.ToString();
            var length = properties.ContentLength;
            if (offset >= length)
            {
                return new BlobChunk([], length, etag);
            }

            var options = new BlobDownloadOptions
            {
                Range = new HttpRange(offset, Math.Min(maxBytes, length - offset)),
                Conditions = new BlobRequestConditions { IfMatch = properties.ETag },
            };
            var content = (await blob.DownloadContentAsync(options, cancellationToken)).Value;
            return new BlobChunk(content.Content.ToArray(), length, etag);
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            throw new BlobNotFoundException(container, blobName, e);
        }
        catch (RequestFailedException e) when (e.Status == 403)
        {
            throw BlobAccessDeniedException.From(e, service, container, BlobAction.Read, blobName);
        }
        catch (RequestFailedException e) when (e.Status == 412)
        {
            throw new BlobChangedException(container, blobName, ifMatch ?? "(first read)", e);
        }
        catch (Exception e) when (IsUnavailable(e, cancellationToken))
        {
            throw Unavailable($"reading {container}/{blobName}", e);
        }
    }

    /// <summary>
    /// Streams a blob into <paramref name="path"/>; returns its ETag. Throws <see cref="BlobNotFoundException"/> when it
    /// is missing and <see cref="BlobTooLargeException"/> when it is larger than <paramref name="maxBytes"/>.
    /// </summary>
    public async Task<string> DownloadToFileAsync(
        string container, string blobName, string path, long maxBytes, CancellationToken cancellationToken = default)
    {
        var blob = service.GetBlobContainerClient(container).GetBlobClient(blobName);
        try
        {
            var response = await blob.DownloadStreamingAsync(cancellationToken: cancellationToken);
            using var download = response.Value;
            var length = download.Details.ContentLength;
            if (length > maxBytes)
            {
                throw new BlobTooLargeException(container, blobName, length, maxBytes);
            }

            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            await using (var file = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 81920, useAsync: true))
            {
                await download.Content.CopyToAsync(file, cancellationToken);
            }

            return download.Details.ETag.ToString("H");
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            throw new BlobNotFoundException(container, blobName, e);
        }
        catch (RequestFailedException e) when (e.Status == 403)
        {
            throw BlobAccessDeniedException.From(e, service, container, BlobAction.Read, blobName);
        }
        catch (Exception e) when (IsUnavailable(e, cancellationToken))
        {
            throw Unavailable($"downloading {container}/{blobName}", e);
        }
    }

    /// <summary>
    /// True for failures of the storage service or the network rather than of the blob: no answer (connection refused
    /// or reset, a network timeout, the SDK's retries given up), or an answer saying the service is busy or broken
    /// (408, 429, 5xx). A cancellation the caller asked for is not one.
    /// </summary>
    public static bool IsUnavailable(Exception e, CancellationToken cancellationToken) => e switch
    {
        RequestFailedException failed => failed.Status is 0 or 408 or 429 or >= 500,
        AggregateException aggregate => aggregate.InnerExceptions.Count > 0 && aggregate.InnerExceptions.All(i => IsUnavailable(i, cancellationToken)),
        OperationCanceledException => !cancellationToken.IsCancellationRequested,
        HttpRequestException or System.Net.Sockets.SocketException or TimeoutException => true,
        IOException io => io.InnerException is System.Net.Sockets.SocketException or HttpRequestException || io is System.Net.Http.HttpIOException,
        _ => false,
    };

    private static ServiceUnavailableException Unavailable(string what, Exception e)
    {
        // The SDK's own message after its retries is an AggregateException's; name the first cause instead.
        var cause = e is AggregateException { InnerExceptions.Count: > 0 } aggregate ? aggregate.InnerExceptions[^1] : e;
        var status = cause is RequestFailedException { Status: > 0 } failed ? $"HTTP {failed.Status}" : cause.GetType().Name;
        return new ServiceUnavailableException(ServiceUnavailableException.Storage, $"blob storage unreachable while {what} ({status})", e);
    }
}
