namespace HubertEcg.Testing;

/// <summary>Paths to the checkout and to the shared fixtures beside it (<c>../shared</c>).</summary>
public static class RepoPaths
{
    private static readonly Lazy<string> RootLazy = new(FindRoot);

    /// <summary>The checkout's root: the folder holding HubertEcg.sln.</summary>
    public static string Root => RootLazy.Value;

    /// <summary>The read-only shared fixtures; <c>HUBERT_SHARED</c> overrides <c>&lt;root&gt;/../shared</c>.</summary>
    public static string Shared =>
        Environment.GetEnvironmentVariable("HUBERT_SHARED") is { Length: > 0 } s ? s : Path.GetFullPath(Path.Combine(Root, "..", "shared"));

    public static string SharedFile(params string[] parts) => Path.Combine([Shared, .. parts]);

    private static string FindRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "HubertEcg.sln")))
        {
            dir = dir.Parent;
        }

        return dir?.FullName ?? throw new InvalidOperationException($"HubertEcg.sln not found above {AppContext.BaseDirectory}");
    }
}
