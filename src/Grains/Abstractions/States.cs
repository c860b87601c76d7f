namespace HubertEcg.Grains;

/// <summary>Where a run is in its life; stored as text in <c>runs.state</c> (<see cref="ContractText"/>).</summary>
[GenerateSerializer, Alias("HubertEcg.RunState")]
public enum RunState
{
    /// <summary>Created; its coordinator has not planned anything yet.</summary>
    Pending = 0,

    /// <summary>Its input is being listed into shards; none leased yet.</summary>
    Planning = 1,

    /// <summary>Shards are leased to workers.</summary>
    Running = 2,

    /// <summary>Every shard is done: every planned record was scored or quarantined.</summary>
    Completed = 3,

    /// <summary>The run could not go on (its input cannot be listed, a manifest line cannot be read), or every shard failed.</summary>
    Failed = 4,

    /// <summary>Cancelled by request.</summary>
    Cancelled = 5,

    /// <summary>Every shard is done or failed, and some failed: their records were neither scored nor quarantined.</summary>
    CompletedWithFailures = 6,
}

/// <summary>Where a shard is; stored as text in <c>run_shards.state</c>.</summary>
[GenerateSerializer, Alias("HubertEcg.ShardState")]
public enum ShardState
{
    Pending = 0,
    Leased = 1,
    Done = 2,
    Failed = 3,

    /// <summary>Its run was cancelled before the shard was done or failed.</summary>
    Cancelled = 4,
}

/// <summary>What a shard is made of; stored as text in <c>run_shards.kind</c>.</summary>
[GenerateSerializer, Alias("HubertEcg.ShardKind")]
public enum ShardKind
{
    /// <summary>One container blob holding many records (an HDF5 shard, an archive).</summary>
    Container = 0,

    /// <summary>The files of up to shard-size single records.</summary>
    Records = 1,
}

/// <summary>How the window probabilities of one record combine (its embedding is always their mean); stored as text.</summary>
[GenerateSerializer, Alias("HubertEcg.Aggregation")]
public enum Aggregation
{
    Mean = 0,
    Max = 1,
}

/// <summary>The text form of the contracts' enums, as Postgres stores them and the client prints them.</summary>
public static class ContractText
{
    public static bool IsFinal(this RunState state) =>
        state is RunState.Completed or RunState.CompletedWithFailures or RunState.Failed or RunState.Cancelled;

    public static string ToText(this RunState state) => state switch
    {
        RunState.Pending => "pending",
        RunState.Planning => "planning",
        RunState.Running => "running",
        RunState.Completed => "completed",
        RunState.CompletedWithFailures => "completed_with_failures",
        RunState.Failed => "failed",
        RunState.Cancelled => "cancelled",
        _ => throw new ArgumentOutOfRangeException(nameof(state), state, null),
    };

    public static string ToText(this ShardState state) => state switch
    {
        ShardState.Pending => "pending",
        ShardState.Leased => "leased",
        ShardState.Done => "done",
        ShardState.Failed => "failed",
        ShardState.Cancelled => "cancelled",
        _ => throw new ArgumentOutOfRangeException(nameof(state), state, null),
    };

    public static string ToText(this ShardKind kind) => kind switch
    {
        ShardKind.Container => "container",
        ShardKind.Records => "records",
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, null),
    };

    public static string ToText(this Aggregation aggregation) => aggregation switch
    {
        Aggregation.Mean => "mean",
        Aggregation.Max => "max",
        _ => throw new ArgumentOutOfRangeException(nameof(aggregation), aggregation, null),
    };

    public static RunState ParseRunState(string text) => Parse<RunState>(text, "run state");

    public static ShardState ParseShardState(string text) => Parse<ShardState>(text, "shard state");

    public static ShardKind ParseShardKind(string text) => Parse<ShardKind>(text, "shard kind");

    /// <summary>Reads <c>mean</c> or <c>max</c>; throws <see cref="ArgumentException"/> naming the value otherwise.</summary>
    public static Aggregation ParseAggregation(string text) => Parse<Aggregation>(text, "aggregation");

    private static T Parse<T>(string text, string what)
        where T : struct, Enum
    {
        foreach (var value in Enum.GetValues<T>())
        {
            if (string.Equals(Text(value), text, StringComparison.Ordinal))
            {
                return value;
            }
        }

        throw new ArgumentException($"'{text}' is not a {what} (one of {string.Join(", ", Enum.GetValues<T>().Select(Text))})");
    }

    private static string Text<T>(T value)
        where T : struct, Enum => value switch
        {
            RunState s => s.ToText(),
            ShardState s => s.ToText(),
            ShardKind k => k.ToText(),
            Aggregation a => a.ToText(),
            _ => throw new ArgumentOutOfRangeException(nameof(value), value, null),
        };
}
