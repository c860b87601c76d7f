using HubertEcg.Inference.Formats;
using HubertEcg.Storage;

namespace HubertEcg.Grains.Coordination;

/// <summary>
/// What an incremental run leaves out while planning: the records whose stored score for the model came from the
/// listed version of their source blob, and the containers a complete pass over the listed version dealt with (a
/// container's scores alone could be those of a run cancelled half way through it). One query of each kind per
/// planning step; candidates whose version is unknown (a manifest names blobs without ETags) are left to the worker.
/// </summary>
public sealed class CurrentInputs(CurrentScores scores, string modelId)
{
    /// <summary>
    /// Of <paramref name="candidates"/> (with the ETags of their files in <paramref name="etags"/>), the source blobs to
    /// leave out and how many records they stand for.
    /// </summary>
    public async Task<(IReadOnlySet<string> LeaveOut, long Records)> FindAsync(
        IEnumerable<PlanCandidate> candidates, IReadOnlyDictionary<string, string> etags, CancellationToken cancellationToken)
    {
        var known = candidates
            .Select(c => (c.SourceBlob, c.IsContainer, ETag: FormatRegistry.SourceVersion(c.Files.Select(f => (f, etags.GetValueOrDefault(f, ""))))))
            .Where(c => c.ETag.Length > 0)
            .ToList();
        var current = await scores.CurrentBlobsAsync(modelId, known.Where(c => !c.IsContainer).Select(c => (c.SourceBlob, c.ETag)).ToList(), cancellationToken);
        var passed = await scores.PassedContainersAsync(modelId, known.Where(c => c.IsContainer).Select(c => (c.SourceBlob, c.ETag)).ToList(), cancellationToken);
        return (current.Keys.Concat(passed.Keys).ToHashSet(StringComparer.Ordinal), current.Values.Sum() + passed.Values.Sum());
    }
}
