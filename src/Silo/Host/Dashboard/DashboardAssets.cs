namespace HubertEcg.Silo.Dashboard;

/// <summary>The dashboard's pages, scripts and style sheet, embedded in the silo's assembly (<c>Dashboard/Assets</c>).</summary>
public static class DashboardAssets
{
    private static readonly Lazy<IReadOnlyDictionary<string, Asset>> All = new(Load);

    /// <summary>The asset of that file name, or null: only names that exist are served, so no path reaches the disk.</summary>
    public static Asset? Find(string name) => All.Value.GetValueOrDefault(name);

    private static Dictionary<string, Asset> Load()
    {
        const string prefix = "dashboard/";
        var assembly = typeof(DashboardAssets).Assembly;
        var assets = new Dictionary<string, Asset>(StringComparer.Ordinal);
        foreach (var resource in assembly.GetManifestResourceNames().Where(n => n.StartsWith(prefix, StringComparison.Ordinal)))
        {
            using var stream = assembly.GetManifestResourceStream(resource)!;
            using var copy = new MemoryStream();
            stream.CopyTo(copy);
            var name = resource[prefix.Length..];
            var type = Path.GetExtension(name) switch
            {
                ".html" => "text/html; charset=utf-8",
                ".js" => "text/javascript; charset=utf-8",
                ".css" => "text/css; charset=utf-8",
                _ => "application/octet-stream",
            };
            assets[name] = new Asset(copy.ToArray(), type);
        }

        return assets;
    }

    public sealed record Asset(byte[] Content, string ContentType);
}
