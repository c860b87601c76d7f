using HubertEcg.Grains;
using HubertEcg.Inference.Ecg;
using HubertEcg.Inference.Model;

namespace HubertEcg.Worker;

/// <summary>
/// One blob of a shard, downloaded to a local file. <see cref="RecordStem"/> names the record it belongs to when that
/// is not its own path without extension (a signal file a WFDB header names under another name).
/// </summary>
public sealed record DownloadedBlob(string BlobName, string LocalPath, string ETag, string? RecordStem = null);

/// <summary>
/// A leased shard whose blobs are on local disk, in a folder the worker deletes afterwards; <see cref="Resources"/>
/// (open container files) are disposed first. <see cref="MissingBlobs"/> are blobs a run's manifest lists that do
/// not exist; each becomes a quarantined record unless another file of its record was found. <see cref="RefusedBlobs"/>
/// are blobs the input store would not read (a folder's FIFO or device, a link out of the folder), each with the
/// reason; the record they belong to is quarantined with it.
/// </summary>
public sealed record DownloadedShard(ShardKind Kind, string Container, string LocalDirectory, IReadOnlyList<DownloadedBlob> Blobs)
{
    public List<IDisposable> Resources { get; } = [];

    public IReadOnlyList<string> MissingBlobs { get; init; } = [];

    public IReadOnlyDictionary<string, string> RefusedBlobs { get; init; } = new Dictionary<string, string>(StringComparer.Ordinal);
}

/// <summary>
/// One record of a shard, not yet read: <see cref="Load"/> reads it (on a worker's CPU pool) and throws
/// <see cref="EcgFormatException"/> when it cannot be read.
/// </summary>
public sealed record RecordInput(string RecordId, string SourceBlob, string SourceETag, Func<EcgSignal> Load);

/// <summary>Turns a downloaded shard into its records. Throws <see cref="EcgFormatException"/> for a container that cannot be opened at all.</summary>
public interface IRecordDecoder
{
    IEnumerable<RecordInput> Enumerate(DownloadedShard shard);
}

/// <summary>Turns a signal into model windows (each <see cref="IEcgScorer.WindowLength"/> floats) by a preprocessing profile.</summary>
public interface IWindowPreparer
{
    /// <summary>
    /// Returns up to <paramref name="maxWindows"/> windows laid out back to back (count x 6000).
    /// Throws <see cref="EcgFormatException"/> when the signal cannot be preprocessed (too short, wrong leads).
    /// </summary>
    float[] Prepare(EcgSignal signal, string profile, int maxWindows);
}

/// <summary>Opens scoring models by path, once per process; the scorers it returns are shared and thread-safe.</summary>
public interface IScorerProvider
{
    /// <param name="device">The worker's device, as configured in <c>Workers:Devices</c>.</param>
    IEcgScorer Get(string modelPath, WorkerDevice device);
}
