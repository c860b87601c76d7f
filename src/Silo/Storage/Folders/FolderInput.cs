namespace HubertEcg.Storage.Folders;

/// <summary>
/// How a run names a folder input. The run's input container is <c>file://</c> followed by the absolute path of the
/// folder (its root; record names are paths relative to it, with forward slashes); its prefix narrows the listing to
/// names that start with it, as for a blob container. On the command line the two are written as one URL,
/// <c>file:///root</c> or <c>file:///root//prefix</c>: a double slash after the root starts the prefix, so that
/// runs over parts of one archive name their records alike. The path is taken as written (no percent-decoding).
/// </summary>
public static class FolderInput
{
    public const string Scheme = "file://";

    /// <summary>True when <paramref name="container"/> names a folder rather than a blob container.</summary>
    public static bool IsFolder(string container) => container.StartsWith(Scheme, StringComparison.Ordinal);

    /// <summary>The folder a folder container names (an absolute path, no trailing slash except for <c>/</c> itself).</summary>
    public static string RootOf(string container)
    {
        if (!IsFolder(container))
        {
            throw new ArgumentException($"'{container}' is not a folder input (file:///path)", nameof(container));
        }

        var path = container[Scheme.Length..];
        if (!path.StartsWith('/'))
        {
            throw new ArgumentException($"folder input '{container}' must name an absolute path: file:///path", nameof(container));
        }

        return path;
    }

    /// <summary>
    /// Splits <c>file:///root</c> or <c>file:///root//prefix</c> into the run's container (<c>file://</c> and the root,
    /// without trailing slashes) and prefix; throws <see cref="ArgumentException"/> naming what is wrong.
    /// </summary>
    public static (string Container, string Prefix) Parse(string input)
    {
        var trimmed = input.Trim();
        if (!IsFolder(trimmed))
        {
            throw new ArgumentException($"'{input}' is not a folder input (file:///path)", nameof(input));
        }

        var rest = trimmed[Scheme.Length..];
        if (!rest.StartsWith('/'))
        {
            throw new ArgumentException(
                $"--input '{input}' must name an absolute path after file:// (file:///mnt/ecg, three slashes); a host name is not supported", nameof(input));
        }

        var split = rest.IndexOf("//", 1, StringComparison.Ordinal);
        var root = split < 0 ? rest : rest[..split];
        var prefix = split < 0 ? "" : rest[(split + 2)..];
        root = root.Length > 1 ? root.TrimEnd('/') : root;
        if (root.Length == 0)
        {
            root = "/";
        }

        if (root.Split('/').Any(s => s is "." or ".."))
        {
            throw new ArgumentException($"--input '{input}': the folder must be written without . or .. segments", nameof(input));
        }

        if (prefix.StartsWith('/') || FolderNames.Problem(prefix.TrimEnd('/'), allowEmpty: true) is not null)
        {
            throw new ArgumentException($"--input '{input}': the prefix after // must be a relative path without . or .. segments", nameof(input));
        }

        return (Scheme + root, prefix);
    }

    /// <summary>
    /// An input as the user writes it: <c>container/name</c> for a blob container; for a folder, the folder alone or
    /// with <c>//</c> and the prefix or manifest file, the form <see cref="Parse"/> reads back.
    /// </summary>
    public static string Describe(string container, string name) =>
        IsFolder(container) ? (name.Length == 0 ? container : $"{container}//{name}") : $"{container}/{name}";

    /// <summary>
    /// Checks at submit time that a folder input's root exists and is a directory on this machine; throws
    /// <see cref="ArgumentException"/> naming the folder otherwise. (Every silo must see the same folder; the
    /// submitting machine is asked because a typo is far more common than a mount that only silos have.)
    /// </summary>
    public static void RequireRoot(string container)
    {
        var root = RootOf(container);
        var facts = PosixFiles.Stat(root, followLinks: true);
        if (facts is null)
        {
            throw new ArgumentException($"input folder '{root}' does not exist (is the share mounted on this machine?)");
        }

        if (facts.Value.Kind != FileKind.Directory)
        {
            throw new ArgumentException($"input folder '{root}' is not a directory");
        }
    }
}

/// <summary>Checks of the record names a folder store accepts: relative paths with forward slashes under its root.</summary>
public static class FolderNames
{
    /// <summary>Why <paramref name="name"/> is not a relative path under a folder (null when it is).</summary>
    public static string? Problem(string name, bool allowEmpty = false)
    {
        if (name.Length == 0)
        {
            return allowEmpty ? null : "is empty";
        }

        if (name.Contains('\0', StringComparison.Ordinal))
        {
            return "contains a NUL character";
        }

        if (name.StartsWith('/'))
        {
            return "is an absolute path, not a path relative to the input folder";
        }

        foreach (var segment in name.Split('/'))
        {
            if (segment.Length == 0)
            {
                return "has an empty path segment (//, or a trailing /)";
            }

            if (segment is "." or "..")
            {
                return "has a . or .. path segment";
            }
        }

        return null;
    }
}
