using System.Diagnostics.CodeAnalysis;
using HubertEcg.Storage;

namespace HubertEcg.Grains.Coordination;

/// <summary>
/// A run coordinator's memory of the run's shards: every shard by number, the pending ones in the order they are
/// leased (planning order; a lease that ends unfinished goes to the back), the leased ones, and the number the next
/// planned shard gets; and how a shard changes: leased, done, given back, expired. Built from the stored shard rows
/// (Postgres is the source of truth); shards are added only once stored (<see cref="AddPlanned"/>) and changed only
/// through <see cref="UpdateAsync{T}"/>, which keeps memory as it was when the change cannot be stored. No services:
/// the caller passes the store call.
/// </summary>
public sealed class ShardBook
{
    private readonly Dictionary<int, ShardEntry> _shards = [];
    private readonly LinkedList<int> _pending = new();
    private readonly Dictionary<int, LinkedListNode<int>> _pendingNodes = [];
    private readonly HashSet<int> _leased = [];

    /// <summary>Rebuilds the book from a run's stored shard rows (in shard order).</summary>
    public ShardBook(IEnumerable<ShardRecord> stored)
    {
        foreach (var record in stored)
        {
            Add(record);
        }
    }

    public int Count => _shards.Count;

    public int PendingCount => _pending.Count;

    public int LeasedCount => _leased.Count;

    /// <summary>The number the next planned shard gets: one past the highest so far (a counter, not a scan).</summary>
    public int NextShardNo { get; private set; }

    /// <summary>True when no shard is pending or leased (every shard is done or failed).</summary>
    public bool IsDrained => _pending.Count == 0 && _leased.Count == 0;

    public IEnumerable<ShardEntry> Shards => _shards.Values;

    /// <summary>The shard the next lease gets, or null when none is pending.</summary>
    public ShardEntry? NextPending => _pending.First is { } first ? _shards[first.Value] : null;

    public bool TryGet(int shardNo, [MaybeNullWhen(false)] out ShardEntry shard) => _shards.TryGetValue(shardNo, out shard);

    /// <summary>The leased shards whose lease deadline is not after <paramref name="now"/>.</summary>
    public IReadOnlyList<ShardEntry> ExpiredLeases(DateTime now) =>
        _leased.Select(no => _shards[no]).Where(s => s.LeaseDeadline is { } deadline && deadline <= now).ToList();

    /// <summary>The leased shards.</summary>
    public IReadOnlyList<ShardEntry> LeasedShards() => _leased.Select(no => _shards[no]).ToList();

    /// <summary>Numbers a planning step's shards from <see cref="NextShardNo"/>, as pending rows of run <paramref name="runId"/>.</summary>
    public IReadOnlyList<ShardRecord> Number(Guid runId, IReadOnlyList<PlannedShard> planned) =>
        planned
            .Select((s, i) => new ShardRecord(runId, NextShardNo + i, s.Kind, s.Blobs, s.RecordCount, ShardState.Pending, 0, null, null, 0, 0, null))
            .ToList();

    /// <summary>
    /// Adds the shards of a stored planning step (numbered by <see cref="Number"/>) at the back of the pending queue;
    /// a shard planned done (manifest entries quarantined while planning: every record quarantined, never leased)
    /// joins the book done. Numbers that do not follow on from the book's are a bug (two steps numbered at once):
    /// nothing is added then.
    /// </summary>
    public void AddPlanned(IReadOnlyList<ShardRecord> records)
    {
        for (var i = 0; i < records.Count; i++)
        {
            var plannedDone = records[i].State == ShardState.Done && records[i].RecordsQuarantined == records[i].RecordsPlanned && records[i].Attempts == 0;
            if (records[i].ShardNo != NextShardNo + i || (records[i].State != ShardState.Pending && !plannedDone))
            {
                throw new InvalidOperationException(
                    $"planned shard {records[i].ShardNo} ({records[i].State.ToText()}) is not pending shard {NextShardNo + i}, the next in the book");
            }
        }

        foreach (var record in records)
        {
            Add(record);
        }
    }

    /// <summary>Leases <paramref name="shard"/> to <paramref name="workerId"/> until <paramref name="deadline"/>: a new attempt, whose number is the lease id.</summary>
    public Task<T> LeaseAsync<T>(ShardEntry shard, string workerId, DateTime deadline, Func<ShardRecord, Task<T>> persist) =>
        UpdateAsync(
            shard,
            s => (s.State, s.Attempts, s.LeaseOwner, s.LeaseDeadline, s.ReportedInFlight) = (ShardState.Leased, s.Attempts + 1, workerId, deadline, 0),
            persist);

    /// <summary>Marks <paramref name="shard"/> done with the counts of <paramref name="outcome"/>; its worker stays the owner (who wrote its results).</summary>
    public Task CompleteAsync(ShardEntry shard, ShardOutcome outcome, Func<ShardRecord, Task> persist) =>
        UpdateAsync(
            shard,
            s => (s.State, s.LeaseOwner, s.LeaseDeadline, s.RecordsDone, s.RecordsQuarantined, s.RecordsSkipped, s.LastError) =
                (ShardState.Done, outcome.WorkerId, null, outcome.RecordsDone, outcome.RecordsQuarantined, outcome.RecordsSkipped, null),
            persist);

    /// <summary>
    /// Ends a lease its worker gave back. Without <paramref name="error"/> (the worker is shutting down) the attempt
    /// does not count and the shard is pending again; with one, the shard fails when <paramref name="permanent"/> or
    /// when <paramref name="maxAttempts"/> are spent, and is pending again otherwise.
    /// </summary>
    public Task ReleaseAsync(ShardEntry shard, string? error, bool permanent, int maxAttempts, Func<ShardRecord, Task> persist) =>
        EndLeaseAsync(
            shard,
            s => (s.Attempts, s.LastError, s.State) = error is null
                ? (Math.Max(0, s.Attempts - 1), s.LastError, ShardState.Pending)
                : (s.Attempts, error, permanent || s.Attempts >= maxAttempts ? ShardState.Failed : ShardState.Pending),
            persist);

    /// <summary>
    /// Ends a lease for a fault of the infrastructure, not of the shard (its worker's silo was declared dead, or a
    /// service the worker needs was unreachable): the attempt does not count and the shard is pending again at once.
    /// <paramref name="note"/>, when given, is kept as the shard's last error.
    /// </summary>
    public Task ReclaimAsync(ShardEntry shard, Func<ShardRecord, Task> persist, string? note = null) =>
        EndLeaseAsync(shard, s => (s.Attempts, s.State, s.LastError) = (Math.Max(0, s.Attempts - 1), ShardState.Pending, note ?? s.LastError), persist);

    /// <summary>Ends a lease whose worker stopped renewing: the shard fails once <paramref name="maxAttempts"/> are spent, and is pending again otherwise.</summary>
    public Task ExpireAsync(ShardEntry shard, int maxAttempts, Func<ShardRecord, Task> persist) =>
        EndLeaseAsync(
            shard,
            s => (s.LastError, s.State) = (
                $"lease of attempt {s.Attempts} expired (worker {s.LeaseOwner} stopped renewing)",
                s.Attempts >= maxAttempts ? ShardState.Failed : ShardState.Pending),
            persist);

    /// <summary>
    /// The one way a shard changes: applies <paramref name="change"/>, stores the changed row with
    /// <paramref name="persist"/>, and only once it is stored moves the shard between the pending queue and the leased
    /// set. When <paramref name="persist"/> throws, the shard is put back exactly as it was (queue place included)
    /// and the exception goes on to the caller.
    /// </summary>
    public async Task<T> UpdateAsync<T>(ShardEntry shard, Action<ShardEntry> change, Func<ShardRecord, Task<T>> persist)
    {
        if (!_shards.TryGetValue(shard.ShardNo, out var known) || !ReferenceEquals(known, shard))
        {
            throw new InvalidOperationException($"shard {shard.ShardNo} is not in this book");
        }

        var before = shard.Snapshot();
        var wasState = shard.State;
        T result;
        try
        {
            change(shard);
            result = await persist(shard.ToRecord());
        }
        catch
        {
            shard.Restore(before);
            throw;
        }

        if (shard.State != wasState)
        {
            Unplace(shard.ShardNo);
            Place(shard);
        }

        return result;
    }

    /// <inheritdoc cref="UpdateAsync{T}"/>
    public Task UpdateAsync(ShardEntry shard, Action<ShardEntry> change, Func<ShardRecord, Task> persist) =>
        UpdateAsync(shard, change, async row =>
        {
            await persist(row);
            return true;
        });

    // A lease ends without the shard being done: the change sets its state (and error); the lease is cleared.
    private Task EndLeaseAsync(ShardEntry shard, Action<ShardEntry> change, Func<ShardRecord, Task> persist) =>
        UpdateAsync(
            shard,
            s =>
            {
                change(s);
                (s.LeaseOwner, s.LeaseDeadline) = (null, null);
            },
            persist);

    private void Add(ShardRecord record)
    {
        var shard = new ShardEntry(record);
        if (!_shards.TryAdd(record.ShardNo, shard))
        {
            throw new InvalidOperationException($"shard {record.ShardNo} is already in the book");
        }

        Place(shard);
        NextShardNo = Math.Max(NextShardNo, record.ShardNo + 1);
    }

    private void Place(ShardEntry shard)
    {
        if (shard.State == ShardState.Pending)
        {
            _pendingNodes[shard.ShardNo] = _pending.AddLast(shard.ShardNo);
        }
        else if (shard.State == ShardState.Leased)
        {
            _leased.Add(shard.ShardNo);
        }
    }

    private void Unplace(int shardNo)
    {
        if (_pendingNodes.Remove(shardNo, out var node))
        {
            _pending.Remove(node);
        }

        _leased.Remove(shardNo);
    }
}
