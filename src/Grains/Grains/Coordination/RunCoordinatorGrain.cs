using HubertEcg.Grains.Workers;
using HubertEcg.Inference.Formats;
using HubertEcg.Storage;
using HubertEcg.Worker;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace HubertEcg.Grains.Coordination;

/// <summary>
/// The coordinator of one run (see <see cref="IRunCoordinatorGrain"/>): leases and progress. Postgres is the source of
/// truth: run and shard rows are written before a call returns, and an activation rebuilds its memory from them
/// (<see cref="ShardBook"/>, <see cref="RunPlanner"/>); counts derive from shard rows (<see cref="RunProgressMeter"/>),
/// so a crash never double-counts. The lease tick (not interleaved, like a call) checks for a cancel request, expires
/// leases, fails the run when planning failed, and stores progress.
/// <para>
/// Planning runs off the lease path, on the planner's timer with <c>Interleave = true</c>: lease calls run while a
/// step awaits a listing page or a query. Interleaving rather than a planner grain, because it is safe and keeps one
/// writer per run: a step only reads until it stores its shards (new numbers from the book's counter, one step at a
/// time) and adds them to the book in that same turn, so lease calls only touch stored shards; a step never ends the
/// run (it leaves <see cref="RunPlanner.Failure"/> to the lease tick, which it wakes), so the run only ends in turns
/// that do not interleave; and <see cref="FinishAsync"/> stops planning and waits for a step in flight before it
/// stores a final state, so no step is stored or applied after the run ended.
/// </para>
/// </summary>
public sealed class RunCoordinatorGrain(
    RunStore store,
    IInputStore blobs,
    CurrentScores currentScores,
    FormatRegistry formats,
    IOptions<CoordinatorOptions> options,
    ScoringMetrics metrics,
    IClusterMembershipService membership,
    ILogger<RunCoordinatorGrain> logger) : Grain, IRunCoordinatorGrain, IDisposable
{
    private readonly CoordinatorOptions _options = options.Value;
    private readonly RunProgressMeter _meter = new(options.Value.RateWindow, DateTime.UtcNow);
    private ShardBook _book = new([]);
    private RunPlanner? _planner;
    private RunRecord? _run;
    private RunState _state = RunState.Pending;
    private string? _error;
    private DateTime? _startedAt;
    private DateTime? _finishedAt;
    private bool _dirty;
    private IGrainTimer? _tick;
    private (long Done, long Quarantined)? _endedCounts;
    private string? _waitingFor;
    private DateTime? _waitingSince;

    private Guid RunId => this.GetPrimaryKey();

    public override async Task OnActivateAsync(CancellationToken cancellationToken)
    {
        _run = await store.GetRunAsync(RunId, cancellationToken);
        if (_run is null)
        {
            CoordinatorLog.LogUnknownRun(logger, RunId);
            return;
        }

        (_state, _error, _startedAt, _finishedAt) = (_run.State, _run.Error, _run.StartedAt, _run.FinishedAt);
        _endedCounts = _state is RunState.Cancelled or RunState.Failed ? (_run.RecordsDone, _run.RecordsQuarantined) : null;
        (_waitingFor, _waitingSince) = _state.IsFinal() ? (null, null) : (_run.WaitingFor, _run.WaitingSince);
        _book = new ShardBook(await store.Shards.LoadAsync(RunId, includeBlobs: false, cancellationToken));
        _planner = new RunPlanner(_run, _book, store.Shards, blobs, currentScores, formats, _options, logger);
        if (!_state.IsFinal()
            && RunSettingsRules.CheckOptions(_run.BatchSize, _run.MaxWindows, _run.ShardSize, _run.LeaseSeconds, _run.MaxAttempts) is { Count: > 0 } problems)
        {
            // A run stored without the submit checks (a schedule stored before them, another tool): it fails once with
            // the reason before anything is planned or leased, rather than make every worker fail on it.
            await FinishAsync(RunState.Failed, RunSettingsRules.Describe("run options", problems));
            return;
        }

        if (!_state.IsFinal())
        {
            _tick = this.RegisterGrainTimer(
                TickAsync, new GrainTimerCreationOptions { DueTime = TimeSpan.Zero, Period = _options.TickInterval, KeepAlive = true });
            StartPlanning();
            CoordinatorLog.LogResumed(logger, RunId, _state.ToText(), _book.Count, _book.PendingCount, _book.LeasedCount);
        }
    }

    public void Dispose() => _planner?.Dispose(); // Orleans disposes the grain once its activation is gone

    /// <summary>Activation has started planning already; this only makes sure it runs.</summary>
    public Task Start()
    {
        StartPlanning();
        return Task.CompletedTask;
    }

    public async Task<ShardLease?> AcquireLease(string workerId)
    {
        // Never waits for planning: with nothing pending yet the worker asks again later (or another run).
        if (_run is null || _state.IsFinal() || _planner!.Failure is not null || _book.NextPending is not { } shard)
        {
            return null;
        }

        var now = DateTime.UtcNow;
        var duration = TimeSpan.FromSeconds(_run.LeaseSeconds);
        var blobNames = await _book.LeaseAsync(shard, workerId, now + duration, row => store.Shards.LeaseAsync(row));
        if (_state is RunState.Pending or RunState.Planning)
        {
            _state = RunState.Running;
            _startedAt ??= now;
        }

        _dirty = true;
        CoordinatorLog.LogLeased(logger, RunId, shard.ShardNo, shard.Attempts, workerId);
        return new ShardLease(
            RunId, shard.ShardNo, shard.Attempts, shard.Kind, _run.InputContainer, blobNames, shard.LeaseDeadline!.Value, duration,
            new RunScoringSettings(_run.ModelId, _run.ModelPath, _run.PreprocessingProfile, _run.Aggregation, _run.MaxWindows, _run.BatchSize),
            _run.InputManifest is not null,
            _run.Incremental);
    }

    public async Task<LeaseStatus> Renew(string workerId, int shardNo, int leaseId, int recordsSinceLastReport)
    {
        if (_run is not null && _state.IsFinal())
        {
            // A failed run (FailRun, a planning failure) frees its workers as a cancelled one does.
            return _state == RunState.Cancelled ? LeaseStatus.Cancelled : LeaseStatus.Lost;
        }

        if (_run is null || !_book.TryGet(shardNo, out var shard) || !shard.IsHeldBy(workerId, leaseId))
        {
            return LeaseStatus.Lost;
        }

        if (recordsSinceLastReport > 0)
        {
            shard.ReportedInFlight += recordsSinceLastReport;
            _meter.Report(DateTime.UtcNow, recordsSinceLastReport);
        }

        shard.LeaseDeadline = DateTime.UtcNow + TimeSpan.FromSeconds(_run.LeaseSeconds);
        await store.Shards.SaveAsync(shard.ToRecord());
        return LeaseStatus.Renewed;
    }

    public async Task Complete(ShardOutcome outcome)
    {
        // After the run ended (completed with failed shards, or cancelled) its counts are final: late reports are ignored.
        if (_run is null || _state.IsFinal() || !_book.TryGet(outcome.ShardNo, out var shard) || shard.State == ShardState.Done)
        {
            return;
        }

        // A late report from an expired lease still means every result of the shard is written: accept it.
        var inFlight = shard.IsHeldBy(outcome.WorkerId, outcome.LeaseId) ? shard.ReportedInFlight : 0;
        var wasFailed = shard.State == ShardState.Failed;
        await _book.CompleteAsync(shard, outcome, row => store.Shards.SaveAsync(row));
        _meter.Report(DateTime.UtcNow, outcome.RecordsDone + outcome.RecordsQuarantined - inFlight);
        _dirty = true;
        (_waitingFor, _waitingSince) = (null, null); // a shard went through: whatever the run waited for is back
        metrics.AddShardCompleted(outcome.WorkerId);
        CoordinatorLog.LogCompleted(logger, RunId, outcome.ShardNo, outcome.RecordsDone, outcome.RecordsQuarantined, outcome.WorkerId, wasFailed);
        await FinishIfDoneAsync();
    }

    public async Task Release(string workerId, int shardNo, int leaseId, string? error, bool permanent)
    {
        if (_run is null || _state.IsFinal() || !_book.TryGet(shardNo, out var shard) || !shard.IsHeldBy(workerId, leaseId))
        {
            return;
        }

        await _book.ReleaseAsync(shard, error, permanent, _run.MaxAttempts, row => store.Shards.SaveAsync(row));
        _dirty = true;
        if (shard.State == ShardState.Failed)
        {
            metrics.AddShardFailed();
        }

        CoordinatorLog.LogReleased(logger, RunId, shardNo, workerId, error ?? "handed back", shard.State.ToText());
        await FinishIfDoneAsync();
    }

    public async Task Interrupted(string workerId, int shardNo, int leaseId, string service, string error)
    {
        if (_run is null || _state.IsFinal() || !_book.TryGet(shardNo, out var shard) || !shard.IsHeldBy(workerId, leaseId))
        {
            return;
        }

        // Noted before anything is stored: when the database itself is down, the store below fails, and lease expiry
        // meanwhile must not spend attempts either (see ExpireLeasesAsync).
        var now = DateTime.UtcNow;
        WaitFor(service, now);
        if (WithinOutageBudget(now))
        {
            await _book.ReclaimAsync(shard, row => store.Shards.SaveAsync(row), $"waiting for {service}: {error}");
            CoordinatorLog.LogInterrupted(logger, RunId, shardNo, workerId, service);
        }
        else
        {
            var reason = $"{service} unreachable for longer than the run's outage budget of {_run.OutageBudgetSeconds} s: {error}";
            await _book.ReleaseAsync(shard, reason, permanent: false, _run.MaxAttempts, row => store.Shards.SaveAsync(row));
            if (shard.State == ShardState.Failed)
            {
                metrics.AddShardFailed();
            }

            CoordinatorLog.LogReleased(logger, RunId, shardNo, workerId, reason, shard.State.ToText());
        }

        _dirty = true;
        await FinishIfDoneAsync();
    }

    public async Task FailRun(string workerId, string reason)
    {
        if (_run is null || _state.IsFinal())
        {
            return;
        }

        CoordinatorLog.LogRunFault(logger, RunId, workerId, reason);
        await FinishAsync(RunState.Failed, reason);
    }

    public Task<RunProgress> GetProgress() => Task.FromResult(BuildProgress());

    /// <summary>The run waits for <paramref name="service"/> from <paramref name="now"/> on, unless it already waits (the outage goes on).</summary>
    private void WaitFor(string service, DateTime now)
    {
        if (_waitingFor != service || _waitingSince is null)
        {
            _waitingSince ??= now;
            _waitingFor = service;
            _dirty = true;
        }
    }

    /// <summary>True while the current outage (if any) has lasted no longer than the run's outage budget.</summary>
    private bool WithinOutageBudget(DateTime now) =>
        _waitingSince is { } since && now - since <= TimeSpan.FromSeconds(_run!.OutageBudgetSeconds);

    public async Task Cancel()
    {
        if (_run is not null && !_state.IsFinal())
        {
            await FinishAsync(RunState.Cancelled, "cancelled by request");
        }
    }

    private void StartPlanning()
    {
        if (!_state.IsFinal())
        {
            // Once planning is over (complete or failed), the lease tick completes or fails the run now, not a period later.
            _planner?.Start(this, OnPlanStored, () => _tick?.Change(TimeSpan.Zero, _options.TickInterval));
        }
    }

    // A planning step is stored and its shards are in the book (same turn; never after the run ended, see FinishAsync).
    private void OnPlanStored()
    {
        _state = _state == RunState.Pending ? RunState.Planning : _state;
        _startedAt ??= DateTime.UtcNow;
        _dirty = true;
    }

    private async Task TickAsync(CancellationToken cancellationToken)
    {
        if (_run is null || _state.IsFinal())
        {
            return;
        }

        try
        {
            if (await store.IsCancelRequestedAsync(RunId, cancellationToken))
            {
                await FinishAsync(RunState.Cancelled, "cancelled by request");
                return;
            }

            if (_planner!.Waiting is { } waiting)
            {
                if (_waitingSince is null || waiting.Since < _waitingSince)
                {
                    _waitingSince = waiting.Since;
                }

                WaitFor(waiting.Service, waiting.Since);
            }

            await ExpireLeasesAsync(cancellationToken);
            await ReclaimLeasesOfDeadSilosAsync(cancellationToken);
            if (_planner!.Failure is { } reason)
            {
                await FinishAsync(RunState.Failed, reason);
            }
            else if (!await FinishIfDoneAsync() && _dirty)
            {
                await SaveProgressAsync(cancellationToken);
            }
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // Postgres or blob storage briefly unreachable: the next tick tries again from persisted state.
            CoordinatorLog.LogTickFailed(logger, SafeErrors.ForLog(e), RunId);
        }
    }

    private async Task ExpireLeasesAsync(CancellationToken cancellationToken)
    {
        var now = DateTime.UtcNow;
        foreach (var shard in _book.ExpiredLeases(now))
        {
            if (WithinOutageBudget(now))
            {
                // The run is waiting out an outage: a worker that could not renew then is not the shard's fault.
                var owner = shard.LeaseOwner ?? "?";
                await _book.ReclaimAsync(shard, row => store.Shards.SaveAsync(row, cancellationToken), $"lease expired while waiting for {_waitingFor}");
                _dirty = true;
                CoordinatorLog.LogInterrupted(logger, RunId, shard.ShardNo, owner, _waitingFor!);
                continue;
            }

            await _book.ExpireAsync(shard, _run!.MaxAttempts, row => store.Shards.SaveAsync(row, cancellationToken));
            _dirty = true;
            metrics.AddLeaseExpired();
            if (shard.State == ShardState.Failed)
            {
                metrics.AddShardFailed();
            }

            CoordinatorLog.LogExpired(logger, RunId, shard.ShardNo, shard.Attempts, shard.State.ToText());
        }
    }

    /// <summary>
    /// Leases held by workers of a silo the cluster has declared dead go back to pending without counting the attempt:
    /// a silo that stopped without handing its leases back (killed, or its shutdown cut short) is the infrastructure's
    /// fault, and waiting for the lease to expire would hold the shard for its whole lease.
    /// </summary>
    private async Task ReclaimLeasesOfDeadSilosAsync(CancellationToken cancellationToken)
    {
        var snapshot = membership.CurrentSnapshot;
        foreach (var shard in _book.LeasedShards())
        {
            if (WorkerIdentity.SiloOf(shard.LeaseOwner) is not { } silo || snapshot.GetSiloStatus(silo) != SiloStatus.Dead)
            {
                continue;
            }

            var owner = shard.LeaseOwner!;
            await _book.ReclaimAsync(shard, row => store.Shards.SaveAsync(row, cancellationToken));
            _dirty = true;
            metrics.AddLeaseReclaimed();
            CoordinatorLog.LogReclaimed(logger, RunId, shard.ShardNo, owner);
        }
    }

    /// <summary>Completes the run when listing is over and every shard is done or failed; true when the run is final.</summary>
    private async Task<bool> FinishIfDoneAsync()
    {
        if (!_state.IsFinal() && _planner!.IsComplete && _book.IsDrained)
        {
            var (state, reason) = EndState();
            await FinishAsync(state, reason);
        }

        return _state.IsFinal();
    }

    /// <summary>
    /// How a drained run ends: <see cref="RunState.Completed"/> when every shard is done (every planned record scored
    /// or quarantined); <see cref="RunState.Failed"/> when every shard failed; otherwise
    /// <see cref="RunState.CompletedWithFailures"/>, whose reason counts the failed shards and their records and names
    /// the first one's reason (<c>run status</c> lists them all).
    /// </summary>
    private (RunState State, string? Reason) EndState()
    {
        var failed = _book.Shards.Where(s => s.State == ShardState.Failed).OrderBy(s => s.ShardNo).ToList();
        if (failed.Count == 0)
        {
            return (RunState.Completed, _error);
        }

        var first = $"the first, shard {failed[0].ShardNo}: {failed[0].LastError ?? "no reason recorded"}";
        var records = failed.Sum(s => (long)s.RecordsPlanned);
        return failed.Count == _book.Count
            ? (RunState.Failed, $"every shard failed ({failed.Count}, {records} records); {first}")
            : (RunState.CompletedWithFailures, $"{failed.Count} of {_book.Count} shards failed ({records} records neither scored nor quarantined); {first}");
    }

    private async Task FinishAsync(RunState state, string? error)
    {
        // No planning step is stored or applied after the run ended: a step in flight is stopped (its reads) or let
        // finish (its store), so the final counts include every shard stored. Never called from a planning step.
        await _planner!.StopAsync();
        if (_state.IsFinal())
        {
            return;
        }

        // Final only once stored: if Postgres stays unreachable past the store's retries, memory goes back to the stored
        // state, planning goes on, and the next tick or call finishes the run again (a final state in memory alone would be stuck there).
        var before = (_state, _error, _finishedAt, _startedAt);
        var now = DateTime.UtcNow;
        (_state, _error, _finishedAt) = (state, error, now);
        _startedAt ??= now;
        try
        {
            if (state is RunState.Cancelled or RunState.Failed)
            {
                // Ended early: counts from the rows (writes in flight waited for, none after), open shards ended as cancelled.
                var planned = BuildProgress();
                _endedCounts = await store.FinishEndedAsync(RunId, state, error, _startedAt, now, planned.RecordsPlanned, planned.RecordsSkipped);
                _book = new ShardBook(await store.Shards.LoadAsync(RunId, includeBlobs: false));
            }
            else
            {
                await SaveProgressAsync(CancellationToken.None);
            }
        }
        catch
        {
            (_state, _error, _finishedAt, _startedAt) = before;
            _planner.Resume();
            throw;
        }

        _tick?.Dispose();
        _tick = null;
        GrainFactory.GetGrain<IRunDirectoryGrain>(0).Finished(RunId).Ignore();
        CoordinatorLog.LogFinished(logger, RunId, state.ToText(), error ?? "");
    }

    private async Task SaveProgressAsync(CancellationToken cancellationToken)
    {
        // Clean as of this snapshot: a planning step stored while the write is in flight leaves the run dirty again.
        var p = BuildProgress();
        _dirty = false;
        try
        {
            await store.SaveProgressAsync(
                new RunProgressUpdate(
                    RunId, _state, p.RecordsPlanned, p.RecordsDone, p.RecordsQuarantined, p.RecordsFailed, p.ShardsDone, p.ShardsFailed,
                    p.RatePerSecond, p.EtaSeconds, _error, _startedAt, _finishedAt, p.RecordsSkipped,
                    _state.IsFinal() ? null : _waitingFor, _state.IsFinal() ? null : _waitingSince),
                cancellationToken);
        }
        catch
        {
            _dirty = true;
            throw;
        }
    }

    private RunProgress BuildProgress()
    {
        var progress = _meter.Build(RunId, _state, _planner?.IsComplete ?? false, _planner?.Skipped ?? 0, _book, DateTime.UtcNow);
        return _endedCounts is { } counts
            ? progress with { RecordsDone = counts.Done, RecordsQuarantined = counts.Quarantined, RatePerSecond = 0, EtaSeconds = null }
            : progress with { WaitingFor = _state.IsFinal() ? null : _waitingFor };
    }
}
