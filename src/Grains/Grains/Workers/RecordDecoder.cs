using HubertEcg.Grains.Coordination;
using HubertEcg.Inference.Ecg;
using HubertEcg.Storage;

namespace HubertEcg.Grains.Workers;

/// <summary>A single-record format: reads one record from the files sharing its name.</summary>
public interface IRecordFormat
{
    /// <summary>True when this format reads a record made of files with these extensions (lower case, with the dot).</summary>
    bool CanRead(IReadOnlySet<string> extensions);

    /// <summary>Reads record <paramref name="recordName"/> (file name without extension) from <paramref name="files"/>.</summary>
    EcgSignal Read(string recordId, IRecordFileSource files, string recordName);
}

/// <summary>A container format holding many records (an HDF5 shard, an archive).</summary>
public interface IContainerFormat
{
    bool CanRead(string blobName);

    /// <summary>
    /// The records of the container at <paramref name="localPath"/>, each with its record id (<c>blob#exam</c> for an
    /// HDF5 shard, <c>blob/member-record</c> for an archive); throws <see cref="EcgFormatException"/> when it cannot be
    /// opened. What must stay open while records load goes into <paramref name="resources"/>, which the worker
    /// disposes when the shard is finished.
    /// </summary>
    IEnumerable<(string RecordId, Func<EcgSignal> Load)> Open(string localPath, string blobName, ICollection<IDisposable> resources);
}

/// <summary>The files of one record, downloaded to local paths, addressed by file name.</summary>
public sealed class LocalRecordFiles(IReadOnlyDictionary<string, string> pathsByName) : IRecordFileSource
{
    public bool Exists(string fileName) => pathsByName.ContainsKey(fileName);

    public Stream Open(string fileName) =>
        pathsByName.TryGetValue(fileName, out var path)
            ? new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read)
            : throw new FileNotFoundException($"record file {fileName} is not part of the shard", fileName);

    public long Length(string fileName) => pathsByName.TryGetValue(fileName, out var path) ? new FileInfo(path).Length : -1;
}

/// <summary>
/// The decoder the workers use: groups a records shard's files by record (path without extension) and hands each
/// group to the first format that reads it; opens a container shard with the first container format that takes it.
/// A group no format reads becomes a record that quarantines with the reason.
/// </summary>
public sealed class RecordDecoder(IEnumerable<IRecordFormat> recordFormats, IEnumerable<IContainerFormat> containerFormats) : IRecordDecoder
{
    private readonly IRecordFormat[] _recordFormats = recordFormats.ToArray();
    private readonly IContainerFormat[] _containerFormats = containerFormats.ToArray();

    public IEnumerable<RecordInput> Enumerate(DownloadedShard shard)
    {
        return shard.Kind == ShardKinds.Container ? EnumerateContainers(shard) : EnumerateRecords(shard);
    }

    private static RecordInput MissingRecord(DownloadedShard shard, string blobName) =>
        new(
            blobName,
            blobName,
            "",
            () => throw new EcgFormatException(blobName, $"listed in the run's manifest, but blob '{shard.Container}/{blobName}' does not exist"));

    private IEnumerable<RecordInput> EnumerateContainers(DownloadedShard shard)
    {
        foreach (var missing in shard.MissingBlobs)
        {
            yield return MissingRecord(shard, missing);
        }

        foreach (var blob in shard.Blobs)
        {
            var format = _containerFormats.FirstOrDefault(f => f.CanRead(blob.BlobName))
                ?? throw new EcgFormatException(blob.BlobName, "no reader for this container format");
            foreach (var (recordId, load) in format.Open(blob.LocalPath, blob.BlobName, shard.Resources))
            {
                yield return new RecordInput(recordId, blob.BlobName, blob.ETag, load);
            }
        }
    }

    private IEnumerable<RecordInput> EnumerateRecords(DownloadedShard shard)
    {
        var stems = new HashSet<string>(StringComparer.Ordinal);
        foreach (var group in shard.Blobs.GroupBy(b => b.RecordStem ?? ShardPlanner.RecordStem(b.BlobName), StringComparer.Ordinal))
        {
            stems.Add(group.Key);
            var recordId = group.Key;
            var files = group.ToDictionary(b => Path.GetFileName(b.BlobName), b => b.LocalPath, StringComparer.Ordinal);
            var extensions = group.Select(b => Path.GetExtension(b.BlobName).ToLowerInvariant()).ToHashSet();
            var sourceBlob = ShardPlanner.SourceBlob(group.Select(b => b.BlobName).ToList());
            var primary = group.First(b => b.BlobName == sourceBlob);
            var format = _recordFormats.FirstOrDefault(f => f.CanRead(extensions));
            var recordName = Path.GetFileName(recordId);
            Func<EcgSignal> load = format is null
                ? () => throw new EcgFormatException(recordId, $"no reader for a record made of {string.Join(", ", extensions.Order())} files")
                : () => format.Read(recordId, new LocalRecordFiles(files), recordName);
            yield return new RecordInput(recordId, primary.BlobName, ShardPlanner.SourceETag(group.Select(b => (b.BlobName, b.ETag))), load);
        }

        // A listed blob that does not exist is a record of its own unless another file of its record was found
        // (that record then reports what it lacks when it is read).
        foreach (var missing in shard.MissingBlobs.GroupBy(ShardPlanner.RecordStem, StringComparer.Ordinal).Where(g => !stems.Contains(g.Key)))
        {
            yield return MissingRecord(shard, missing.First());
        }
    }
}
