using HubertEcg.Inference.Ecg;
using HubertEcg.Inference.Model;

namespace HubertEcg.Worker;

/// <summary>
/// Error text fit for logs, quarantine reasons and shard errors: it names the record or blob and the reason, never
/// record content. Messages written by this project (every exception its code throws, the readers'
/// <see cref="EcgFormatException"/> first among them) and by the infrastructure clients (Postgres, blob storage,
/// Orleans, I/O) name things only, so they are kept. Any other exception is unexpected: its message may quote what
/// it failed on (a .NET <see cref="FormatException"/> quotes its input, which could be a header comment such as
/// <c># Age: 63</c>), so only its type and the method that threw it are shown.
/// </summary>
public static class SafeErrors
{
    /// <summary>True when <paramref name="e"/>'s message (and its inner exceptions') names things and the reason only.</summary>
    public static bool HasSafeMessage(Exception e) => e switch
    {
        // The readers' messages are reviewed to name the record and the reason; an inner exception's message is already part of it.
        EcgFormatException or CheckpointFormatException or ExecutionProviderUnavailableException or BlobNotFoundException or BlobTooLargeException or BlobChangedException
            or ServiceUnavailableException => true,
        AggregateException aggregate => aggregate.InnerExceptions.All(HasSafeMessage),
        TimeoutException or OperationCanceledException or IOException or System.Net.Sockets.SocketException
            => e.InnerException is null || HasSafeMessage(e.InnerException),
        _ when FromInfrastructureClient(e) => e.InnerException is null || HasSafeMessage(e.InnerException),
        _ when ThrownByThisProject(e) => e.InnerException is null || HasSafeMessage(e.InnerException),
        _ => false,
    };

    /// <summary>One line for a quarantine reason or a shard's last error.</summary>
    public static string Describe(Exception e) => e switch
    {
        EcgFormatException format => format.Reason,
        ServiceUnavailableException unavailable => unavailable.Message,
        _ when HasSafeMessage(e) => $"{e.GetType().Name}: {e.Message}",
        _ => Unexpected(e),
    };

    /// <summary>The exception to pass to a logger: <paramref name="e"/> itself when its messages are safe, else a copy without them.</summary>
    public static Exception ForLog(Exception e) => HasSafeMessage(e) ? e : new WithheldMessageException(e);

    // Postgres (Npgsql), blob storage (Azure), Orleans and ONNX Runtime describe connections, names and codes only; known
    // by namespace so that this engine needs none of their packages.
    private static bool FromInfrastructureClient(Exception e) =>
        e.GetType().Namespace is { } space
        && InfrastructureNamespaces.Any(n => space == n || space.StartsWith(n + ".", StringComparison.Ordinal));

    private static readonly string[] InfrastructureNamespaces = ["Npgsql", "Azure", "Orleans", "Microsoft.ML.OnnxRuntime"];

    // The method that threw is in one of the project's assemblies (for async code, its state machine is).
    private static bool ThrownByThisProject(Exception e) =>
        e.TargetSite?.DeclaringType?.Assembly.GetName().Name?.StartsWith("HubertEcg.", StringComparison.Ordinal) == true;

    private static string Unexpected(Exception e) =>
        e.TargetSite is { } method
            ? $"unexpected {e.GetType().Name} in {method.DeclaringType?.Name}.{method.Name} (message withheld: it may quote record content)"
            : $"unexpected {e.GetType().Name} (message withheld: it may quote record content)";
}

/// <summary>
/// Stands in for an exception whose message may quote record content: its type, the method that threw it and its
/// stack trace, without the message.
/// </summary>
public sealed class WithheldMessageException : Exception
{
    private readonly string? _stackTrace;

    public WithheldMessageException(Exception original)
        : base(SafeErrors.Describe(original ?? throw new ArgumentNullException(nameof(original))), original.InnerException is { } inner ? SafeErrors.ForLog(inner) : null)
    {
        _stackTrace = original.StackTrace;
        OriginalType = original.GetType().FullName ?? original.GetType().Name;
    }

    public WithheldMessageException()
    {
        OriginalType = "?";
    }

    public WithheldMessageException(string message)
        : base(message)
    {
        OriginalType = "?";
    }

    public WithheldMessageException(string message, Exception inner)
        : base(message, inner)
    {
        OriginalType = "?";
    }

    /// <summary>The full name of the exception type that was withheld.</summary>
    public string OriginalType { get; }

    public override string? StackTrace => _stackTrace ?? base.StackTrace;
}
