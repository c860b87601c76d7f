using System.Diagnostics.CodeAnalysis;
using Azure.Storage.Blobs;

namespace HubertEcg.Storage.Access;

/// <summary>
/// A SAS URL taken apart: the account's service endpoint, the container it is scoped to (null for an account SAS) and
/// the SAS query itself. Both URL styles are understood: <c>https://ACCOUNT.blob.core.windows.net/CONTAINER?...</c> and
/// the path style of an IP address or emulator, <c>http://127.0.0.1:10000/ACCOUNT/CONTAINER?...</c>.
/// </summary>
public sealed record SasAddress(Uri ServiceUri, string? Container, string Sas, string Permissions)
{
    /// <summary>Parses <paramref name="url"/>; on failure <paramref name="why"/> says what is wrong without quoting the signature.</summary>
    public static bool TryParse(string url, [NotNullWhen(true)] out SasAddress? address, [NotNullWhen(false)] out string? why)
    {
        address = null;
        if (!Uri.TryCreate(url.Trim(), UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttps && uri.Scheme != Uri.UriSchemeHttp))
        {
            why = "is not an http(s) URL";
            return false;
        }

        BlobUriBuilder parts;
        try
        {
            parts = new BlobUriBuilder(uri);
        }
        catch (Exception e) when (e is ArgumentException or FormatException or InvalidOperationException)
        {
            why = $"is not a blob storage URL ({Secrets.Redact(e.Message)})";
            return false;
        }

        var sas = uri.Query.TrimStart('?');
        if (parts.Sas is null || string.IsNullOrEmpty(parts.Sas.Signature))
        {
            why = $"'{Secrets.Redact(url)}' carries no SAS signature (sig=...)";
            return false;
        }

        if (!string.IsNullOrEmpty(parts.BlobName))
        {
            why = $"'{Secrets.Redact(url)}' names a blob ({parts.BlobName}): give a container or account SAS URL";
            return false;
        }

        var container = string.IsNullOrEmpty(parts.BlobContainerName) ? null : parts.BlobContainerName;
        parts.BlobContainerName = "";
        parts.Sas = null;
        parts.Query = "";
        address = new SasAddress(parts.ToUri(), container, sas, new BlobUriBuilder(uri).Sas.Permissions ?? "");
        why = null;
        return true;
    }

    /// <summary>What the SAS reaches, for messages: the container or the account, and its permissions; never the signature.</summary>
    public string Scope => Container is null
        ? $"an account SAS for {ServiceUri.GetLeftPart(UriPartial.Path).TrimEnd('/')} (permissions '{Permissions}')"
        : $"a container SAS for '{Container}' (permissions '{Permissions}')";
}
