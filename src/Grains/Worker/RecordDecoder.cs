using HubertEcg.Grains;
using HubertEcg.Inference.Ecg;
using HubertEcg.Inference.Formats;

namespace HubertEcg.Worker;

/// <summary>
/// The decoder the workers use: asks the format registry how a records shard's files group into records and which
/// format reads each, and opens a container shard with its container format. A group no format reads becomes a
/// record that quarantines with the reason; so does a blob a manifest lists that does not exist, and a blob the input
/// store refused to read.
/// </summary>
public sealed class RecordDecoder(FormatRegistry registry) : IRecordDecoder
{
    public IEnumerable<RecordInput> Enumerate(DownloadedShard shard)
    {
        ArgumentNullException.ThrowIfNull(shard);
        return shard.Kind == ShardKind.Container ? EnumerateContainers(shard) : EnumerateRecords(shard);
    }

    private static RecordInput MissingRecord(DownloadedShard shard, string blobName) =>
        new(
            blobName,
            blobName,
            "",
            () => throw new EcgFormatException(blobName, $"listed in the run's manifest, but blob '{shard.Container}/{blobName}' does not exist"));

    private static RecordInput RefusedRecord(string recordId, string blobName, string reason) =>
        new(recordId, blobName, "", () => throw new EcgFormatException(recordId, reason));

    private IEnumerable<RecordInput> EnumerateContainers(DownloadedShard shard)
    {
        foreach (var (name, reason) in shard.RefusedBlobs.OrderBy(r => r.Key, StringComparer.Ordinal))
        {
            yield return RefusedRecord(name, name, reason);
        }

        foreach (var missing in shard.MissingBlobs)
        {
            yield return MissingRecord(shard, missing);
        }

        foreach (var blob in shard.Blobs)
        {
            foreach (var record in registry.OpenContainer(blob.LocalPath, blob.BlobName, shard.Resources))
            {
                yield return new RecordInput(record.RecordId, blob.BlobName, blob.ETag, () => record.Load().ToStandard12Lead());
            }
        }
    }

    private IEnumerable<RecordInput> EnumerateRecords(DownloadedShard shard)
    {
        // A record with a file the store refused is quarantined with the reason, whatever its other files.
        var stems = new HashSet<string>(StringComparer.Ordinal);
        foreach (var refused in shard.RefusedBlobs.GroupBy(r => FormatRegistry.RecordStem(r.Key), StringComparer.Ordinal).OrderBy(g => g.Key, StringComparer.Ordinal))
        {
            stems.Add(refused.Key);
            var first = refused.OrderBy(r => r.Key, StringComparer.Ordinal).First();
            yield return RefusedRecord(refused.Key, first.Key, first.Value);
        }

        foreach (var group in shard.Blobs.GroupBy(b => b.RecordStem ?? FormatRegistry.RecordStem(b.BlobName), StringComparer.Ordinal))
        {
            if (!stems.Add(group.Key))
            {
                continue;
            }

            var recordId = group.Key;
            var files = group.ToDictionary(b => Path.GetFileName(b.BlobName), b => b.LocalPath, StringComparer.Ordinal);
            var sourceBlob = registry.SourceBlob(group.Select(b => b.BlobName).ToList());
            var handle = registry.Record(recordId, Path.GetFileName(recordId), files.Keys, new MappedRecordFileSource(files));
            yield return new RecordInput(
                recordId, sourceBlob, FormatRegistry.SourceVersion(group.Select(b => (b.BlobName, b.ETag))), () => handle.Load().ToStandard12Lead());
        }

        // A listed blob that does not exist is a record of its own unless another file of its record was found
        // (that record then reports what it lacks when it is read).
        foreach (var missing in shard.MissingBlobs.GroupBy(FormatRegistry.RecordStem, StringComparer.Ordinal).Where(g => !stems.Contains(g.Key)))
        {
            yield return MissingRecord(shard, missing.First());
        }
    }
}
