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

/// <summary>
/// An input entry the store will not read (a folder's FIFO, device or socket, or a symbolic link that leads out of
/// the folder): its record is quarantined with <see cref="Exception.Message"/> and the shard goes on.
/// </summary>
public sealed class InputRefusedException(string container, string blobName, string reason)
    : Exception($"'{container}/{blobName}' is not read: {reason}")
{
    public string BlobName { get; } = blobName;
}

/// <summary>A blob that changed (its ETag is no longer the one a reader started with).</summary>
public sealed class BlobChangedException(string container, string blobName, string expectedETag, Exception? inner = null)
    : Exception($"blob '{container}/{blobName}' changed while it was being read (expected ETag {expectedETag})", inner)
{
    public string BlobName { get; } = blobName;
}

/// <summary>
/// A service a run needs could not be reached (<see cref="Service"/>: <c>storage</c> for blob storage, <c>database</c>
/// for Postgres) after the adapter's own retries: a fault of the infrastructure, not of the shard or its records. The
/// worker hands the shard back without spending an attempt and backs off; the run waits, within its outage budget.
/// </summary>
public sealed class ServiceUnavailableException : Exception
{
    public const string Storage = "storage";
    public const string Database = "database";

    public ServiceUnavailableException(string service, string message, Exception? inner = null)
        : base(message, inner)
    {
        Service = service;
    }

    public ServiceUnavailableException()
        : this(Storage, "a service is unavailable")
    {
    }

    public ServiceUnavailableException(string message)
        : this(Storage, message)
    {
    }

    public ServiceUnavailableException(string message, Exception inner)
        : this(Storage, message, inner)
    {
    }

    public string Service { get; }

    /// <summary>The service of the first <see cref="ServiceUnavailableException"/> in <paramref name="e"/> or its inner exceptions; null when none.</summary>
    public static string? ServiceOf(Exception? e)
    {
        for (var depth = 0; e is not null && depth < 16; depth++)
        {
            switch (e)
            {
                case ServiceUnavailableException unavailable:
                    return unavailable.Service;
                case AggregateException aggregate:
                    foreach (var inner in aggregate.InnerExceptions)
                    {
                        if (ServiceOf(inner) is { } service)
                        {
                            return service;
                        }
                    }

                    return null;
                default:
                    e = e.InnerException;
                    break;
            }
        }

        return null;
    }
}
