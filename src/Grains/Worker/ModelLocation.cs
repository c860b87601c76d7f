using System.Text.RegularExpressions;

namespace HubertEcg.Worker;

/// <summary>A model kept in blob storage under its content address: <c>&lt;model id&gt;/&lt;SHA-256 of the file&gt;.onnx</c>.</summary>
public sealed record ModelBlob(string Container, string ModelId, string Sha256)
{
    /// <summary>The blob's name within <see cref="Container"/>.</summary>
    public string BlobName => $"{ModelId}/{Sha256}.onnx";

    /// <summary>The location a run stores (<c>runs.model_path</c>) and a shard lease carries.</summary>
    public string Location => ModelLocation.Scheme + Container + "/" + BlobName;
}

/// <summary>
/// Where a run's silos get its model, as <c>runs.model_path</c> holds it: <c>blob:&lt;container&gt;/&lt;model id&gt;/&lt;sha256&gt;.onnx</c>
/// for a model registered in blob storage (downloaded, verified and cached by each silo), or, for runs stored before
/// models were kept there, a file path every silo reads.
/// </summary>
public static partial class ModelLocation
{
    public const string Scheme = "blob:";

    /// <summary>The model of a blob location; null for a file path. Throws <see cref="FormatException"/> for a malformed blob location.</summary>
    public static ModelBlob? Parse(string location)
    {
        ArgumentNullException.ThrowIfNull(location);
        if (!location.StartsWith(Scheme, StringComparison.Ordinal))
        {
            return null;
        }

        var match = BlobPattern().Match(location[Scheme.Length..]);
        if (!match.Success || ContainerProblem(match.Groups["container"].Value) is not null)
        {
            throw new FormatException($"model location '{location}' is not {Scheme}<container>/<model id>/<sha256>.onnx");
        }

        return new ModelBlob(match.Groups["container"].Value, match.Groups["id"].Value, match.Groups["sha"].Value);
    }

    /// <summary>What is wrong with <paramref name="location"/> as the model location of a run of model <paramref name="modelId"/>; null when nothing is.</summary>
    public static string? Problem(string location, string modelId)
    {
        try
        {
            return Parse(location) is { } blob && !string.Equals(blob.ModelId, modelId, StringComparison.Ordinal)
                ? $"model location '{location}' holds model {blob.ModelId}, not {modelId}"
                : null;
        }
        catch (FormatException e)
        {
            return e.Message;
        }
    }

    /// <summary>True when <paramref name="text"/> is a lower-case SHA-256 hex digest (what model ids and file hashes are).</summary>
    public static bool IsSha256(string text) => text is not null && Sha256Pattern().IsMatch(text);

    /// <summary>Why <paramref name="container"/> cannot be a blob container name; null when it can.</summary>
    public static string? ContainerProblem(string? container) =>
        container is null || !ContainerPattern().IsMatch(container) || container.Contains("--", StringComparison.Ordinal)
            ? "is not a blob container name (3 to 63 lower-case letters, digits and single hyphens, starting and ending with a letter or digit)"
            : null;

    [GeneratedRegex("^[0-9a-f]{64}$")]
    private static partial Regex Sha256Pattern();

    [GeneratedRegex("^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")]
    private static partial Regex ContainerPattern();

    [GeneratedRegex("^(?<container>[^/]+)/(?<id>[0-9a-f]{64})/(?<sha>[0-9a-f]{64})\\.onnx$")]
    private static partial Regex BlobPattern();
}
