using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace HubertEcg.Integration.Tests.Telemetry;

/// <summary>One log line as a provider receives it: its text, structured values, scopes and exception.</summary>
public sealed record CollectedLog(
    string Category,
    LogLevel Level,
    string EventName,
    string Message,
    IReadOnlyList<KeyValuePair<string, object?>> Values,
    IReadOnlyList<string> ScopeTexts,
    string? Exception)
{
    /// <summary>The value of a structured property, from the line itself or any of its scopes (the innermost first).</summary>
    public object? Property(string name) => Values.LastOrDefault(v => v.Key == name).Value;

    /// <summary>Everything a log sink could write for this line.</summary>
    public string AllText => string.Join(
        "\n",
        new[] { Message, Exception ?? "" }.Concat(ScopeTexts).Concat(Values.Select(v => $"{v.Key}={v.Value}")));
}

/// <summary>Keeps every log line of the hosts it is registered in, with scopes, for assertions.</summary>
public sealed class CollectingLoggerProvider : ILoggerProvider, ISupportExternalScope
{
    private readonly ConcurrentQueue<CollectedLog> _logs = new();
    private IExternalScopeProvider _scopes = new LoggerExternalScopeProvider();

    public IReadOnlyList<CollectedLog> Logs => [.. _logs];

    public ILogger CreateLogger(string categoryName) => new Collector(this, categoryName);

    public void SetScopeProvider(IExternalScopeProvider scopeProvider) => _scopes = scopeProvider;

    public void Dispose()
    {
    }

    private sealed class Collector(CollectingLoggerProvider owner, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => owner._scopes.Push(state);

        public bool IsEnabled(LogLevel logLevel) => logLevel != LogLevel.None;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            var values = new List<KeyValuePair<string, object?>>();
            var scopeTexts = new List<string>();
            owner._scopes.ForEachScope(
                (scope, _) =>
                {
                    scopeTexts.Add(scope?.ToString() ?? "");
                    if (scope is IEnumerable<KeyValuePair<string, object?>> pairs)
                    {
                        values.AddRange(pairs);
                    }
                },
                (object?)null);
            if (state is IEnumerable<KeyValuePair<string, object?>> own)
            {
                values.AddRange(own);
            }

            owner._logs.Enqueue(new CollectedLog(
                category, logLevel, eventId.Name ?? "", formatter(state, exception), values, scopeTexts, exception?.ToString()));
        }
    }
}
