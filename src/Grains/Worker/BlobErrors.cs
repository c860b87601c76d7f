namespace HubertEcg.Worker;

/// <summary>A blob (or its container) that does not exist: a permanent error for the shard or run that needs it.</summary>
public sealed class BlobNotFoundException : Exception
{
    public BlobNotFoundException(string container, string blobName, Exception? inner = null)
        : base(blobName.Length == 0 ? $"container '{container}' does not exist" : $"blob '{container}/{blobName}' does not exist", inner)
    {
        Container = container;
        BlobName = blobName;
    }

    public BlobNotFoundException()
        : this("?", "?")
    {
    }

    public BlobNotFoundException(string message)
        : base(message)
    {
        Container = "?";
        BlobName = "?";
    }

    public BlobNotFoundException(string message, Exception inner)
        : base(message, inner)
    {
        Container = "?";
        BlobName = "?";
    }

    public string Container { get; }

    public string BlobName { get; }
}

/// <summary>A blob larger than the worker accepts for one shard.</summary>
public sealed class BlobTooLargeException(string container, string blobName, long length, long limit)
    : Exception($"blob '{container}/{blobName}' is {length} bytes, over the limit of {limit} bytes")
{
    public long Length { get; } = length;
}

/// <summary>A blob that changed (its ETag is no longer the one a reader started with).</summary>
public sealed class BlobChangedException(string container, string blobName, string expectedETag, Exception? inner = null)
    : Exception($"blob '{container}/{blobName}' changed while it was being read (expected ETag {expectedETag})", inner)
{
    public string BlobName { get; } = blobName;
}
