using Azure;
using Azure.Storage.Blobs;

namespace HubertEcg.Storage.Access;

/// <summary>What a blob operation needs, to name the missing permission when storage refuses it.</summary>
public enum BlobAction
{
    List,
    Read,
    Write,
    Delete,
}

/// <summary>
/// Blob storage refused an operation (HTTP 403): the credential lacks a permission the step needs, or does not reach
/// the container. The message names the action, the container, the permission (SAS letter and Entra ID role) and the
/// service's error code; it carries no secret and no stack of SDK details.
/// </summary>
public sealed class BlobAccessDeniedException : UnauthorizedAccessException
{
    public BlobAccessDeniedException(string message)
        : base(message)
    {
        Container = "?";
        ErrorCode = "";
    }

    public BlobAccessDeniedException()
        : this("blob storage refused the request (403)")
    {
    }

    public BlobAccessDeniedException(string message, Exception inner)
        : base(message, inner)
    {
        Container = "?";
        ErrorCode = "";
    }

    private BlobAccessDeniedException(string message, string container, BlobAction action, string errorCode)
        : base(message)
    {
        Container = container;
        Action = action;
        ErrorCode = errorCode;
    }

    public string Container { get; }

    public BlobAction Action { get; }

    /// <summary>The service's error code (<c>AuthorizationPermissionMismatch</c>, <c>AuthorizationFailure</c>, <c>AuthenticationFailed</c>, ...).</summary>
    public string ErrorCode { get; }

    /// <summary>True for a refusal (HTTP 403) that <see cref="From"/> turns into this exception.</summary>
    public static bool IsDenied(Exception e) => e is RequestFailedException { Status: 403 };

    /// <summary>The refusal <paramref name="e"/> of <paramref name="action"/> on <paramref name="container"/> through <paramref name="service"/>, explained.</summary>
    public static BlobAccessDeniedException From(RequestFailedException e, BlobServiceClient service, string container, BlobAction action, string? blobName = null)
    {
        ArgumentNullException.ThrowIfNull(e);
        var code = string.IsNullOrEmpty(e.ErrorCode) ? "403" : e.ErrorCode;
        var (verb, letter, role) = action switch
        {
            BlobAction.List => ("listing", "l (List)", "Storage Blob Data Reader"),
            BlobAction.Read => ("reading", "r (Read)", "Storage Blob Data Reader"),
            BlobAction.Write => ("writing to", "w (Write) and c (Create)", "Storage Blob Data Contributor"),
            _ => ("deleting in", "d (Delete)", "Storage Blob Data Contributor"),
        };
        var what = blobName is null ? $"container '{container}'" : $"container '{container}' (blob '{blobName}')";
        var why = code switch
        {
            "AuthorizationPermissionMismatch" => $"the credential lacks the permission: a SAS needs {letter}, an Entra ID identity the role {role} on the container",
            "AuthorizationResourceTypeMismatch" => "the account SAS does not cover this resource type (it needs srt=co)",
            "AuthenticationFailed" => "the credential was not accepted (an expired SAS or token, or a SAS of another container or account)",
            _ => $"the credential does not reach this container or lacks the permission: a SAS needs {letter} and must be for this container or the account, an Entra ID identity the role {role}",
        };
        var message = $"blob storage refused {verb} {what} ({code}): {why}; credential: {BlobServiceClients.Describe(service)}";
        return new BlobAccessDeniedException(Secrets.Redact(message), container, action, code);
    }
}
