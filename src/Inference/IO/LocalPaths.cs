using System.Globalization;
using System.Text;

namespace HubertEcg.Inference.IO;

/// <summary>Where a worker puts a downloaded blob or an extracted archive member on local disk.</summary>
public static class LocalPaths
{
    // File systems take names of up to 255 bytes; a blob's last path segment may be up to 1024 characters.
    private const int MaxNameBytes = 200;

    /// <summary>
    /// The path of the <paramref name="index"/>-th file of a folder: a numbered subfolder (so names never collide)
    /// holding the file under its own name, or under <c>long-name</c> plus its extension when the name is too long
    /// for the file system. Readers find a record's files through a map from their names to these paths, so the
    /// local name only helps a person looking at the folder.
    /// </summary>
    public static string PathFor(string folder, string prefix, int index, string name)
    {
        var fileName = Path.GetFileName(name);
        if (Encoding.UTF8.GetByteCount(fileName) > MaxNameBytes)
        {
            var extension = Path.GetExtension(fileName);
            fileName = "long-name" + (Encoding.UTF8.GetByteCount(extension) <= 32 ? extension : "");
        }

        return Path.Combine(folder, prefix + index.ToString("D6", CultureInfo.InvariantCulture), fileName);
    }
}
