namespace HubertEcg.Worker;

/// <summary>
/// Where registered models live and how a silo keeps them. Section <c>Models</c>, bound once and checked at start-up
/// (<see cref="Problems"/>): <see cref="Container"/> is read by <c>hubert-ecg model register</c> and the silos alike;
/// the cache settings are the silo's.
/// </summary>
public sealed class ModelOptions
{
    public const string SectionName = "Models";

    /// <summary>Default of <see cref="Container"/>.</summary>
    public const string DefaultContainer = "models";

    /// <summary>Default of <see cref="CacheMaxBytes"/>: 16 GiB, a dozen large models.</summary>
    public const long DefaultCacheMaxBytes = 16L << 30;

    /// <summary>Blob container that <c>model register</c> uploads models to, each as <c>&lt;model id&gt;/&lt;SHA-256&gt;.onnx</c>.</summary>
    public string Container { get; set; } = DefaultContainer;

    /// <summary>Folder a silo keeps downloaded models in; <c>hubert-ecg-models</c> in the system temp folder when empty.</summary>
    public string CacheFolder { get; set; } = "";

    /// <summary>
    /// Most bytes of model files the cache keeps; beyond it the least recently used files not in use are deleted. A
    /// model larger than this is refused.
    /// </summary>
    public long CacheMaxBytes { get; set; } = DefaultCacheMaxBytes;

    /// <summary>The cache folder in effect.</summary>
    public string EffectiveCacheFolder =>
        string.IsNullOrWhiteSpace(CacheFolder) ? Path.Combine(Path.GetTempPath(), "hubert-ecg-models") : Path.GetFullPath(CacheFolder);

    /// <summary>What is wrong with these settings, one line each naming the key; empty when they can work.</summary>
    public IReadOnlyList<string> Problems()
    {
        var problems = new List<string>();
        if (ModelLocation.ContainerProblem(Container) is { } problem)
        {
            problems.Add($"Models:Container '{Container}' {problem}");
        }

        if (CacheMaxBytes <= 0)
        {
            problems.Add($"Models:CacheMaxBytes must be positive, not {CacheMaxBytes}");
        }

        return problems;
    }
}
