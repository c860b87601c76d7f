using HubertEcg.Inference.Formats;
using HubertEcg.Storage;
using HubertEcg.Worker;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace HubertEcg.Grains.Coordination;

/// <summary>
/// The coordinator of one run (see <see cref="IRunCoordinatorGrain"/>). Postgres is the source of truth: the run row
/// and its shard rows are written before a call returns, and an activation rebuilds its memory from them. Counts
/// are derived from shard rows, so a crash never double-counts. The timer does one bounded step per tick: a page
/// of listing, lease expiry, progress. Every log line names the run, and the shard where there is one; shards done
/// and failed and leases expired are counted in <see cref="ScoringMetrics"/>. An incremental run over a prefix leaves out, while planning, the containers
/// and records whose stored scores for the model came from the listed ETag of their source blob (one query per
/// listing page); its workers leave out the rest of what is current (a manifest run's records, records of a
/// container partly scored before) after download.
/// </summary>
public sealed partial class RunCoordinatorGrain(
    RunStore store,
    BlobStore blobs,
    CurrentScores currentScores,
    FormatRegistry formats,
    IOptions<CoordinatorOptions> options,
    ScoringMetrics metrics,
    ILogger<RunCoordinatorGrain> logger) : Grain, IRunCoordinatorGrain
{
    private readonly CoordinatorOptions _options = options.Value;
    private readonly Dictionary<int, ShardEntry> _shards = [];
    private readonly LinkedList<int> _pending = new();
    private readonly HashSet<int> _leased = [];
    private readonly Queue<(DateTime At, int Records)> _recent = new();
    private RunRecord? _run;
    private RunState _state = RunState.Pending;
    private bool _planningComplete;
    private string? _planningToken;
    private IReadOnlyList<string> _carry = [];
    private IReadOnlyList<string> _carryETags = [];
    private long _planningSkipped;
    private long _manifestDuplicates;
    private int _planningFailures;
    private string? _error;
    private DateTime? _startedAt;
    private DateTime? _finishedAt;
    private DateTime _activatedAt;
    private bool _dirty;
    private IGrainTimer? _timer;

    private Guid RunId => this.GetPrimaryKey();

    public override async Task OnActivateAsync(CancellationToken cancellationToken)
    {
        _activatedAt = DateTime.UtcNow;
        _run = await store.GetRunAsync(RunId, cancellationToken);
        if (_run is null)
        {
            LogUnknownRun(logger, RunId);
            return;
        }

        _state = _run.State;
        _planningComplete = _run.PlanningComplete;
        _planningToken = _run.PlanningToken;
        _carry = _run.PlanningCarry;
        _carryETags = _run.PlanningCarryETags;
        _planningSkipped = _run.PlanningSkipped;
        _manifestDuplicates = _run.ManifestDuplicates;
        _error = _run.Error;
        _startedAt = _run.StartedAt;
        _finishedAt = _run.FinishedAt;
        foreach (var shard in await store.Shards.LoadAsync(RunId, includeBlobs: false, cancellationToken))
        {
            var state = new ShardEntry(shard);
            _shards[shard.ShardNo] = state;
            if (shard.State == ShardState.Pending)
            {
                _pending.AddLast(shard.ShardNo);
            }
            else if (shard.State == ShardState.Leased)
            {
                _leased.Add(shard.ShardNo);
            }
        }

        if (!_state.IsFinal())
        {
            _timer = this.RegisterGrainTimer(
                TickAsync,
                new GrainTimerCreationOptions { DueTime = TimeSpan.Zero, Period = _options.TickInterval, KeepAlive = true });
            LogResumed(logger, RunId, _state.ToText(), _shards.Count, _pending.Count, _leased.Count);
        }
    }

    public Task Start() => Task.CompletedTask;

    public async Task<ShardLease?> AcquireLease(string workerId)
    {
        if (_run is null || _state.IsFinal())
        {
            return null;
        }

        if (_shards.Count == 0 && !_planningComplete)
        {
            // The run's first lease does not wait for the timer: one planning step (a listing page) runs now. Should
            // it fail, the timer's next step tries again; the worker asking goes on to other runs.
            try
            {
                await PlanStepAsync(CancellationToken.None);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                LogPlanningRetry(logger, SafeErrors.ForLog(e), RunId, _planningFailures);
                return null;
            }
        }

        if (_pending.Count == 0)
        {
            return null;
        }

        var shardNo = _pending.First!.Value;
        _pending.RemoveFirst();
        var shard = _shards[shardNo];
        var now = DateTime.UtcNow;
        var duration = TimeSpan.FromSeconds(_run.LeaseSeconds);
        var before = shard.Snapshot();
        shard.State = ShardState.Leased;
        shard.Attempts++;
        shard.LeaseOwner = workerId;
        shard.LeaseDeadline = now + duration;
        shard.ReportedInFlight = 0;
        IReadOnlyList<string> blobNames;
        try
        {
            blobNames = await store.Shards.LeaseAsync(shard.ToRecord(RunId));
        }
        catch
        {
            shard.Restore(before);
            _pending.AddFirst(shardNo);
            throw;
        }

        _leased.Add(shardNo);
        if (_state is RunState.Pending or RunState.Planning)
        {
            _state = RunState.Running;
            _startedAt ??= now;
        }

        _dirty = true;
        LogLeased(logger, RunId, shardNo, shard.Attempts, workerId);
        return new ShardLease(
            RunId,
            shardNo,
            shard.Attempts,
            shard.Kind,
            _run.InputContainer,
            blobNames,
            shard.LeaseDeadline.Value,
            duration,
            new RunScoringSettings(_run.ModelId, _run.ModelPath, _run.PreprocessingProfile, _run.Aggregation, _run.MaxWindows, _run.BatchSize),
            _run.InputManifest is not null,
            _run.Incremental);
    }

    public async Task<LeaseStatus> Renew(string workerId, int shardNo, int leaseId, int recordsSinceLastReport)
    {
        if (_run is null)
        {
            return LeaseStatus.Lost;
        }

        if (_state == RunState.Cancelled)
        {
            return LeaseStatus.Cancelled;
        }

        if (!_shards.TryGetValue(shardNo, out var shard) || !shard.IsHeldBy(workerId, leaseId))
        {
            return LeaseStatus.Lost;
        }

        if (recordsSinceLastReport > 0)
        {
            shard.ReportedInFlight += recordsSinceLastReport;
            _recent.Enqueue((DateTime.UtcNow, recordsSinceLastReport));
        }

        shard.LeaseDeadline = DateTime.UtcNow + TimeSpan.FromSeconds(_run.LeaseSeconds);
        await store.Shards.SaveAsync(shard.ToRecord(RunId));
        return LeaseStatus.Renewed;
    }

    public async Task Complete(ShardOutcome outcome)
    {
        // After the run ended (completed with failed shards, or cancelled) its counts are final: late reports are ignored.
        if (_run is null || _state.IsFinal() || !_shards.TryGetValue(outcome.ShardNo, out var shard) || shard.State == ShardState.Done)
        {
            return;
        }

        // A late report from an expired lease still means every result of the shard is written: accept it.
        var inFlight = shard.IsHeldBy(outcome.WorkerId, outcome.LeaseId) ? shard.ReportedInFlight : 0;
        var before = shard.Snapshot();
        var wasFailed = shard.State == ShardState.Failed;
        shard.State = ShardState.Done;
        shard.LeaseOwner = outcome.WorkerId; // kept on a done shard: who wrote its results

        shard.LeaseDeadline = null;
        shard.RecordsDone = outcome.RecordsDone;
        shard.RecordsQuarantined = outcome.RecordsQuarantined;
        shard.RecordsSkipped = outcome.RecordsSkipped;
        shard.LastError = null;
        try
        {
            await store.Shards.SaveAsync(shard.ToRecord(RunId));
        }
        catch
        {
            shard.Restore(before);
            throw;
        }

        _leased.Remove(outcome.ShardNo);
        _pending.Remove(outcome.ShardNo);
        var fresh = outcome.RecordsDone + outcome.RecordsQuarantined - inFlight;
        if (fresh > 0)
        {
            _recent.Enqueue((DateTime.UtcNow, fresh));
        }

        _dirty = true;
        metrics.AddShardCompleted(outcome.WorkerId);
        LogCompleted(logger, RunId, outcome.ShardNo, outcome.RecordsDone, outcome.RecordsQuarantined, outcome.WorkerId, wasFailed);
        await FinishIfDoneAsync();
    }

    public async Task Release(string workerId, int shardNo, int leaseId, string? error, bool permanent)
    {
        if (_run is null || _state.IsFinal() || !_shards.TryGetValue(shardNo, out var shard) || !shard.IsHeldBy(workerId, leaseId))
        {
            return;
        }

        var before = shard.Snapshot();
        if (error is null)
        {
            // Handed back by a worker that is shutting down: the attempt does not count.
            shard.Attempts = Math.Max(0, shard.Attempts - 1);
            shard.State = ShardState.Pending;
        }
        else
        {
            shard.LastError = error;
            shard.State = permanent || shard.Attempts >= _run.MaxAttempts ? ShardState.Failed : ShardState.Pending;
        }

        await ReturnLeaseAsync(shardNo, shard, before, CancellationToken.None);
        if (shard.State == ShardState.Failed)
        {
            metrics.AddShardFailed();
        }

        LogReleased(logger, RunId, shardNo, workerId, error ?? "handed back", shard.State.ToText());
        await FinishIfDoneAsync();
    }

    public Task<RunProgress> GetProgress() => Task.FromResult(BuildProgress(DateTime.UtcNow));

    public async Task Cancel()
    {
        if (_run is null || _state.IsFinal())
        {
            return;
        }

        await FinishAsync(RunState.Cancelled, "cancelled by request");
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

            await ExpireLeasesAsync(cancellationToken);
            if (!_planningComplete)
            {
                await PlanStepAsync(cancellationToken);
            }

            if (!await FinishIfDoneAsync() && _dirty)
            {
                await SaveProgressAsync(cancellationToken);
            }
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // Postgres or blob storage briefly unreachable: the next tick tries again from persisted state.
            LogTickFailed(logger, SafeErrors.ForLog(e), RunId);
        }
    }

    // A lease ends without the shard being done (handed back, failed or expired): clear it, store the shard (its
    // state as the caller set it), and queue it again when it is pending. A failed store leaves memory as before.
    private async Task ReturnLeaseAsync(int shardNo, ShardEntry shard, ShardRecord before, CancellationToken cancellationToken)
    {
        shard.LeaseOwner = null;
        shard.LeaseDeadline = null;
        try
        {
            await store.Shards.SaveAsync(shard.ToRecord(RunId), cancellationToken);
        }
        catch
        {
            shard.Restore(before);
            throw;
        }

        _leased.Remove(shardNo);
        if (shard.State == ShardState.Pending)
        {
            _pending.AddLast(shardNo);
        }

        _dirty = true;
    }

    private async Task ExpireLeasesAsync(CancellationToken cancellationToken)
    {
        var now = DateTime.UtcNow;
        foreach (var shardNo in _leased.ToList())
        {
            var shard = _shards[shardNo];
            if (shard.LeaseDeadline is not { } deadline || deadline > now)
            {
                continue;
            }

            var before = shard.Snapshot();
            shard.LastError = $"lease of attempt {shard.Attempts} expired (worker {shard.LeaseOwner} stopped renewing)";
            shard.State = shard.Attempts >= _run!.MaxAttempts ? ShardState.Failed : ShardState.Pending;
            await ReturnLeaseAsync(shardNo, shard, before, cancellationToken);
            metrics.AddLeaseExpired();
            if (shard.State == ShardState.Failed)
            {
                metrics.AddShardFailed();
            }

            LogExpired(logger, RunId, shardNo, shard.Attempts, shard.State.ToText());
        }
    }

    private async Task PlanStepAsync(CancellationToken cancellationToken)
    {
        var run = _run!;
        if (run.InputManifest is not null)
        {
            await PlanManifestStepAsync(run, run.InputManifest, cancellationToken);
            return;
        }

        BlobPage page;
        try
        {
            page = await blobs.ListPageAsync(run.InputContainer, run.InputPrefix, _planningToken, _options.ListPageSize, cancellationToken);
            _planningFailures = 0;
        }
        catch (BlobNotFoundException e)
        {
            await FinishAsync(RunState.Failed, e.Message);
            return;
        }
        catch (Exception e) when (e is not OperationCanceledException && ++_planningFailures < _options.MaxPlanningFailures)
        {
            LogPlanningRetry(logger, SafeErrors.ForLog(e), RunId, _planningFailures);
            return;
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            await FinishAsync(RunState.Failed, $"listing {run.InputContainer}/{run.InputPrefix} failed {_planningFailures} times: {e.Message}");
            return;
        }

        await AppendPlanStepAsync(run, $"listing {run.InputContainer}/{run.InputPrefix}", page.Items, page.ContinuationToken, page.ContinuationToken is null, cancellationToken);
    }

    /// <summary>
    /// Reads the next chunk of the run's manifest (whole lines from the saved offset) and plans its names like a
    /// listing page. The manifest must not change while it is read: its ETag is pinned at the first read. Names
    /// are not checked for existence here; a worker quarantines a listed blob that does not exist.
    /// </summary>
    private async Task PlanManifestStepAsync(RunRecord run, string manifest, CancellationToken cancellationToken)
    {
        var (offset, etag) = ManifestLines.ParsePosition(_planningToken);
        BlobChunk chunk;
        try
        {
            chunk = await blobs.ReadRangeAsync(run.InputContainer, manifest, offset, _options.ManifestChunkBytes, etag, cancellationToken);
            _planningFailures = 0;
        }
        catch (Exception e) when (e is BlobNotFoundException or BlobChangedException)
        {
            await FinishAsync(RunState.Failed, $"manifest: {e.Message}");
            return;
        }
        catch (Exception e) when (e is not OperationCanceledException && ++_planningFailures < _options.MaxPlanningFailures)
        {
            LogPlanningRetry(logger, SafeErrors.ForLog(e), RunId, _planningFailures);
            return;
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            await FinishAsync(RunState.Failed, $"reading manifest {run.InputContainer}/{manifest} failed {_planningFailures} times: {e.Message}");
            return;
        }

        var atEnd = offset + chunk.Data.Length >= chunk.TotalLength;
        var (names, consumed) = ManifestLines.Parse(chunk.Data, offset == 0, atEnd);
        if (consumed == 0 && !atEnd)
        {
            await FinishAsync(
                RunState.Failed,
                $"manifest {run.InputContainer}/{manifest}: the line at byte {offset} is longer than {_options.ManifestChunkBytes} bytes");
            return;
        }

        var position = atEnd ? null : ManifestLines.FormatPosition(offset + consumed, chunk.ETag);

        var source = $"manifest {run.InputContainer}/{manifest}";
        if (await FailOnUnstorableNameAsync(source, names))
        {
            return;
        }

        // An entry naming a record already read (the same path twice, in this chunk or an earlier one) is left out.
        var seen = await store.Shards.ManifestKeysSeenAsync(
            RunId, names.Select(formats.RecordKey).OfType<string>().ToHashSet(StringComparer.Ordinal), cancellationToken);
        var deduplicated = ManifestLines.Deduplicate(formats, names, _carry, seen);
        var duplicates = _manifestDuplicates + deduplicated.Duplicates.Count;

        // A manifest names blobs without their ETags: an incremental manifest run is filtered by its workers.
        await AppendPlanStepAsync(
            run, source, deduplicated.Names.Select(n => new BlobEntry(n, "", -1)).ToList(), position, atEnd,
            cancellationToken, deduplicated.NewKeys, duplicates);
        if (deduplicated.Duplicates.Count > 0)
        {
            LogManifestDuplicates(logger, RunId, deduplicated.Duplicates.Count, string.Join(", ", deduplicated.Duplicates.Take(3)));
        }

        _manifestDuplicates = duplicates;
    }

    /// <summary>Fails the run when a name Postgres cannot store is among <paramref name="names"/>; true when it did.</summary>
    private async Task<bool> FailOnUnstorableNameAsync(string source, IEnumerable<string> names)
    {
        foreach (var name in names)
        {
            if (PostgresText.Problem(name) is { } problem)
            {
                await FinishAsync(RunState.Failed, $"{source}: blob name '{PostgresText.Printable(name)}' {problem}");
                return true;
            }
        }

        return false;
    }

    /// <summary>
    /// Plans one page of blobs after the carried ones and stores the new shards with the planning position (for a
    /// manifest run, with the records the step read and the run's count of duplicate entries). For an incremental
    /// run, what already has current scores (by the blobs' ETags, where known) is left out and counted. A name
    /// Postgres cannot store (a NUL character in a manifest line) fails the run with a reason naming
    /// <paramref name="source"/> and the name: it could never get a score or quarantine row.
    /// </summary>
    private async Task AppendPlanStepAsync(
        RunRecord run, string source, IReadOnlyList<BlobEntry> page, string? position, bool last, CancellationToken cancellationToken,
        IReadOnlyList<string>? manifestKeys = null, long manifestDuplicates = 0)
    {
        if (await FailOnUnstorableNameAsync(source, page.Select(b => b.Name)))
        {
            return;
        }

        var planner = new ShardPlanner(formats, run.ShardSize);
        var names = page.Select(b => b.Name).ToList();
        var etags = new Dictionary<string, string>(StringComparer.Ordinal);
        for (var i = 0; i < _carry.Count && i < _carryETags.Count; i++)
        {
            etags[_carry[i]] = _carryETags[i];
        }

        foreach (var blob in page)
        {
            etags[blob.Name] = blob.ETag;
        }

        IReadOnlySet<string>? leaveOut = null;
        var skipped = 0L;
        if (run.Incremental)
        {
            // A record is current when its stored score came from the listed version of its source blob; a container
            // when a pass over the listed version dealt with all of its records (its scores alone could be those of a
            // run cancelled half way through it).
            var known = planner.Candidates(_carry, names, last)
                .Select(c => (c.SourceBlob, c.IsContainer, ETag: FormatRegistry.SourceVersion(c.Files.Select(f => (f, etags.GetValueOrDefault(f, ""))))))
                .Where(c => c.ETag.Length > 0)
                .ToList();
            var current = await currentScores.CurrentBlobsAsync(
                run.ModelId, known.Where(c => !c.IsContainer).Select(c => (c.SourceBlob, c.ETag)).ToList(), cancellationToken);
            var passed = await currentScores.PassedContainersAsync(
                run.ModelId, known.Where(c => c.IsContainer).Select(c => (c.SourceBlob, c.ETag)).ToList(), cancellationToken);
            leaveOut = current.Keys.Concat(passed.Keys).ToHashSet(StringComparer.Ordinal);
            skipped = current.Values.Sum() + passed.Values.Sum();
        }

        var step = planner.Plan(_carry, names, last, leaveOut);
        var carryETags = step.Carry.Select(n => etags.GetValueOrDefault(n, "")).ToList();
        var next = _shards.Count == 0 ? 0 : _shards.Keys.Max() + 1;
        var records = step.Shards
            .Select((s, i) => new ShardRecord(RunId, next + i, s.Kind, s.Blobs, s.RecordCount, ShardState.Pending, 0, null, null, 0, 0, null))
            .ToList();
        await store.Shards.AppendPlanAsync(
            RunId, records, position, step.Carry, last, carryETags, run.Incremental ? _planningSkipped + skipped : null, manifestKeys, manifestDuplicates,
            cancellationToken);
        foreach (var record in records)
        {
            _shards[record.ShardNo] = new ShardEntry(record);
            _pending.AddLast(record.ShardNo);
        }

        _planningToken = position;
        _carry = step.Carry;
        _carryETags = carryETags;
        _planningSkipped += skipped;
        _planningComplete = last;
        if (_state == RunState.Pending)
        {
            _state = RunState.Planning;
        }

        _startedAt ??= DateTime.UtcNow;
        _dirty = true;
        LogPlanned(logger, RunId, records.Count, _shards.Count, last, skipped);
    }

    /// <summary>Completes the run when listing is over and every shard is done or failed; true when the run is final.</summary>
    private async Task<bool> FinishIfDoneAsync()
    {
        if (_state.IsFinal())
        {
            return true;
        }

        if (!_planningComplete || _pending.Count > 0 || _leased.Count > 0)
        {
            return false;
        }

        await FinishAsync(RunState.Completed, _error);
        return true;
    }

    private async Task FinishAsync(RunState state, string? error)
    {
        // Final only once stored: if Postgres stays unreachable past the store's retries, memory goes back to the stored
        // state and the next tick or call finishes the run again (a final state in memory alone would be stuck there).
        var before = (_state, _error, _finishedAt, _startedAt);
        var now = DateTime.UtcNow;
        _state = state;
        _error = error;
        _finishedAt = now;
        _startedAt ??= now;
        try
        {
            await SaveProgressAsync(CancellationToken.None);
        }
        catch
        {
            (_state, _error, _finishedAt, _startedAt) = before;
            throw;
        }

        _timer?.Dispose();
        _timer = null;
        GrainFactory.GetGrain<IRunDirectoryGrain>(0).Finished(RunId).Ignore();
        LogFinished(logger, RunId, state.ToText(), error ?? "");
    }

    private async Task SaveProgressAsync(CancellationToken cancellationToken)
    {
        var p = BuildProgress(DateTime.UtcNow);
        await store.SaveProgressAsync(
            new RunProgressUpdate(
                RunId, _state, p.RecordsPlanned, p.RecordsDone, p.RecordsQuarantined, p.RecordsFailed, p.ShardsDone, p.ShardsFailed,
                p.RatePerSecond, p.EtaSeconds, _error, _startedAt, _finishedAt, p.RecordsSkipped),
            cancellationToken);
        _dirty = false;
    }

    private RunProgress BuildProgress(DateTime now)
    {
        long planned = 0, done = 0, quarantined = 0, failed = 0, skipped = _planningSkipped;
        int shardsDone = 0, shardsFailed = 0;
        foreach (var shard in _shards.Values)
        {
            switch (shard.State)
            {
                case ShardState.Done:
                    shardsDone++;
                    done += shard.RecordsDone;
                    quarantined += shard.RecordsQuarantined;
                    skipped += shard.RecordsSkipped;

                    // A container's record count is known once it is read; records a worker left out as current are
                    // not planned work.
                    planned += shard.Kind == ShardKind.Container
                        ? shard.RecordsDone + shard.RecordsQuarantined
                        : Math.Max(0, shard.RecordsPlanned - shard.RecordsSkipped);
                    break;
                case ShardState.Failed:
                    shardsFailed++;
                    failed += shard.RecordsPlanned;
                    planned += shard.RecordsPlanned;
                    break;
                default:
                    planned += shard.RecordsPlanned;
                    break;
            }
        }

        while (_recent.Count > 0 && now - _recent.Peek().At > _options.RateWindow)
        {
            _recent.Dequeue();
        }

        var window = Math.Min(_options.RateWindow.TotalSeconds, Math.Max(1, (now - _activatedAt).TotalSeconds));
        var rate = _recent.Sum(r => (double)r.Records) / window;

        // Containers not read yet count as many records as those read so far held on average.
        var remaining = RemainingRecords.Estimate(_shards.Values.Select(s => new ShardWorkload(
            s.Kind == ShardKind.Container, s.State, s.RecordsPlanned, s.RecordsDone + s.RecordsQuarantined, s.ReportedInFlight)));
        double? eta = _state.IsFinal() ? 0 : rate > 0 && _planningComplete && remaining is { } left ? left / rate : null;
        return new RunProgress(
            RunId, _state, _planningComplete, _shards.Count, shardsDone, shardsFailed, _leased.Count,
            planned, done, quarantined, failed, _state.IsFinal() ? 0 : rate, eta, skipped);
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "run {RunId}: no such run")]
    private static partial void LogUnknownRun(ILogger logger, Guid runId);

    [LoggerMessage(Level = LogLevel.Information, Message = "run {RunId}: coordinator active in state {State} with {Shards} shards ({Pending} pending, {Leased} leased)")]
    private static partial void LogResumed(ILogger logger, Guid runId, string state, int shards, int pending, int leased);

    [LoggerMessage(Level = LogLevel.Debug, Message = "run {RunId}: shard {ShardNo} attempt {Attempt} leased to {Worker}")]
    private static partial void LogLeased(ILogger logger, Guid runId, int shardNo, int attempt, string worker);

    [LoggerMessage(Level = LogLevel.Debug, Message = "run {RunId}: shard {ShardNo} done ({Done} scored, {Quarantined} quarantined) by {Worker}; was failed: {WasFailed}")]
    private static partial void LogCompleted(ILogger logger, Guid runId, int shardNo, int done, int quarantined, string worker, bool wasFailed);

    [LoggerMessage(Level = LogLevel.Warning, Message = "run {RunId}: shard {ShardNo} released by {Worker}: {Reason}; now {State}")]
    private static partial void LogReleased(ILogger logger, Guid runId, int shardNo, string worker, string reason, string state);

    [LoggerMessage(Level = LogLevel.Warning, Message = "run {RunId}: lease of shard {ShardNo} (attempt {Attempt}) expired; now {State}")]
    private static partial void LogExpired(ILogger logger, Guid runId, int shardNo, int attempt, string state);

    [LoggerMessage(Level = LogLevel.Information, Message = "run {RunId}: planned {New} shards ({Total} in all); listing complete: {Complete}; left out {Skipped} records with current scores")]
    private static partial void LogPlanned(ILogger logger, Guid runId, int @new, int total, bool complete, long skipped);

    [LoggerMessage(Level = LogLevel.Warning, Message = "run {RunId}: left out {Count} duplicate manifest entries, naming records already planned (such as {Examples})")]
    private static partial void LogManifestDuplicates(ILogger logger, Guid runId, int count, string examples);

    [LoggerMessage(Level = LogLevel.Warning, Message = "run {RunId}: listing failed (attempt {Attempt}); retrying on the next tick")]
    private static partial void LogPlanningRetry(ILogger logger, Exception e, Guid runId, int attempt);

    [LoggerMessage(Level = LogLevel.Warning, Message = "run {RunId}: coordinator tick failed; retrying on the next tick")]
    private static partial void LogTickFailed(ILogger logger, Exception e, Guid runId);

    [LoggerMessage(Level = LogLevel.Information, Message = "run {RunId}: finished {State} {Error}")]
    private static partial void LogFinished(ILogger logger, Guid runId, string state, string error);

    /// <summary>The coordinator's memory of one shard (its blob names stay in Postgres until it is leased).</summary>
    private sealed class ShardEntry(ShardRecord record)
    {
        public int ShardNo { get; } = record.ShardNo;

        public ShardKind Kind { get; } = record.Kind;

        public int RecordsPlanned { get; } = record.RecordsPlanned;

        public ShardState State { get; set; } = record.State;

        public int Attempts { get; set; } = record.Attempts;

        public string? LeaseOwner { get; set; } = record.LeaseOwner;

        public DateTime? LeaseDeadline { get; set; } = record.LeaseDeadline;

        public int RecordsDone { get; set; } = record.RecordsDone;

        public int RecordsQuarantined { get; set; } = record.RecordsQuarantined;

        public int RecordsSkipped { get; set; } = record.RecordsSkipped;

        public string? LastError { get; set; } = record.LastError;

        /// <summary>Records the current lease holder reported before completing (for the rate; never persisted).</summary>
        public int ReportedInFlight { get; set; }

        public bool IsHeldBy(string workerId, int leaseId) =>
            State == ShardState.Leased && Attempts == leaseId && string.Equals(LeaseOwner, workerId, StringComparison.Ordinal);

        public ShardRecord ToRecord(Guid runId) =>
            new(runId, ShardNo, Kind, [], RecordsPlanned, State, Attempts, LeaseOwner, LeaseDeadline, RecordsDone, RecordsQuarantined, LastError, RecordsSkipped);

        public ShardRecord Snapshot() => ToRecord(Guid.Empty);

        public void Restore(ShardRecord snapshot)
        {
            State = snapshot.State;
            Attempts = snapshot.Attempts;
            LeaseOwner = snapshot.LeaseOwner;
            LeaseDeadline = snapshot.LeaseDeadline;
            RecordsDone = snapshot.RecordsDone;
            RecordsQuarantined = snapshot.RecordsQuarantined;
            RecordsSkipped = snapshot.RecordsSkipped;
            LastError = snapshot.LastError;
        }
    }
}
