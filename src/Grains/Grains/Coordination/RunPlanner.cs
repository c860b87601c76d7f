using HubertEcg.Inference.Formats;
using HubertEcg.Storage;
using HubertEcg.Storage.Folders;
using HubertEcg.Worker;
using Microsoft.Extensions.Logging;

namespace HubertEcg.Grains.Coordination;

/// <summary>
/// Plans one run's shards a step at a time (a listing page, or a chunk of the run's manifest) and holds the planning
/// position: the continuation token, the blobs carried to the next step and their ETags, the records left out as
/// current, the manifest's duplicate entries. Each step is stored with its position in one transaction before its
/// shards join the <see cref="ShardBook"/> (numbered from the book's counter), so an activation resumes from Postgres.
/// An incremental run over a prefix leaves out, while planning, the containers and records whose stored scores for
/// the model came from the listed ETag of their source blob (one query per listing page); its workers leave out the
/// rest of what is current (a manifest run's records, records of a container partly scored before) after download.
/// <para>
/// Steps run on the coordinator's planning timer, which interleaves with its lease calls (see
/// <see cref="RunCoordinatorGrain"/> for why that is safe), one step at a time. The planner never ends the run: a
/// reason the run must fail is kept in <see cref="Failure"/> for the coordinator to store. <see cref="StopAsync"/>
/// cancels the reads of the step in flight and waits for it (a step being stored is let finish, so the book always
/// matches the stored shards); no step starts after it until <see cref="Resume"/>.
/// </para>
/// </summary>
public sealed class RunPlanner : IDisposable
{
    private readonly RunRecord _run;
    private readonly ShardBook _book;
    private readonly ShardStore _shards;
    private readonly IInputStore _blobs;
    private readonly CurrentScores _currentScores;
    private readonly FormatRegistry _formats;
    private readonly CoordinatorOptions _options;
    private readonly ILogger _logger;
    private readonly ShardPlanner _planner;
    private string? _token;
    private IReadOnlyList<string> _carry;
    private IReadOnlyList<string> _carryETags;
    private long _manifestDuplicates;
    private readonly StepTimer _timer;
    private int _failures;
    private Action _stored = () => { };

    /// <summary>Resumes planning <paramref name="run"/> from its stored position; nothing runs until <see cref="Start"/>.</summary>
    public RunPlanner(
        RunRecord run, ShardBook book, ShardStore shards, IInputStore blobs, CurrentScores currentScores, FormatRegistry formats,
        CoordinatorOptions options, ILogger logger)
    {
        (_run, _book, _shards, _blobs, _currentScores, _formats, _options, _logger) = (run, book, shards, blobs, currentScores, formats, options, logger);
        _planner = new ShardPlanner(formats, run.ShardSize);
        IsComplete = run.PlanningComplete;
        _token = run.PlanningToken;
        _carry = run.PlanningCarry;
        _carryETags = run.PlanningCarryETags;
        Skipped = run.PlanningSkipped;
        _manifestDuplicates = run.ManifestDuplicates;
        _timer = new StepTimer(
            options.TickInterval,
            StepAsync,
            () => IsComplete || Failure is not null,
            e => CoordinatorLog.LogTickFailed(_logger, SafeErrors.ForLog(e), _run.RunId));
    }

    /// <summary>True once the last step is stored.</summary>
    public bool IsComplete { get; private set; }

    /// <summary>The records planning has left out as current so far.</summary>
    public long Skipped { get; private set; }

    /// <summary>Why the run must fail (its input cannot be listed or read); null while planning can go on.</summary>
    public string? Failure { get; private set; }

    /// <summary>While planning cannot reach a service it needs: which, and since when; null otherwise.</summary>
    public (string Service, DateTime Since)? Waiting { get; private set; }

    /// <summary>True from <see cref="StopAsync"/> until <see cref="Resume"/>.</summary>
    public bool IsStopped => _timer.IsStopped;

    /// <summary>
    /// Starts planning on <paramref name="grain"/>'s planning timer, its first step at once (nothing when planning is
    /// over, failed or stopped, or already started). <paramref name="stored"/> runs after each stored step, in the
    /// turn its shards join the book; <paramref name="over"/> once planning is complete or has failed.
    /// </summary>
    public void Start(IGrainBase grain, Action stored, Action over)
    {
        _stored = stored;
        _timer.Start(grain, over);
    }

    /// <summary>Stops planning: cancels the reads of the step in flight, waits for it to end, and stops the timer.</summary>
    public Task StopAsync() => _timer.StopAsync();

    /// <summary>Lets planning go on after <see cref="StopAsync"/> (the run did not end after all).</summary>
    public void Resume() => _timer.Resume();

    public void Dispose() => _timer.Dispose();

    /// <summary>
    /// One step (a listing page or a manifest chunk). A read that fails is retried on the next tick until
    /// <see cref="CoordinatorOptions.MaxPlanningFailures"/> failed in a row; then, or when the input is gone or cannot be
    /// planned, <see cref="Failure"/> is set. Other failures (Postgres) are logged and the next tick tries again from
    /// the stored position. Reads end early when planning is stopped; storing a step is only ever cancelled with the
    /// activation.
    /// </summary>
    private async Task StepAsync(CancellationToken reads, CancellationToken cancellationToken)
    {
        if (_run.InputManifest is { } manifest)
        {
            await ManifestStepAsync(manifest, reads, cancellationToken);
            return;
        }

        var page = await ReadInputAsync(
            () => _blobs.ListPageAsync(_run.InputContainer, _run.InputPrefix, _token, _options.ListPageSize, reads),
            e => e is BlobNotFoundException ? e.Message : null,
            $"listing {FolderInput.Describe(_run.InputContainer, _run.InputPrefix)}");
        if (page is null)
        {
            return;
        }

        await AppendStepAsync(
            $"listing {FolderInput.Describe(_run.InputContainer, _run.InputPrefix)}", page.Items, page.ContinuationToken, page.ContinuationToken is null,
            reads, cancellationToken);
    }

    /// <summary>
    /// Reads the next chunk of the run's manifest (whole lines from the saved offset) and plans its names like a
    /// listing page. The manifest must not change while it is read: its ETag is pinned at the first read. Names
    /// are not checked for existence here; a worker quarantines a listed blob that does not exist. Each entry is
    /// resolved inside the run's container (<see cref="ManifestLines.Resolve"/>); an entry that names no blob of it,
    /// and a line longer than a chunk (whose rest is then skipped, a chunk per step), is quarantined with the reason
    /// in the step's transaction and the run goes on.
    /// </summary>
    private async Task ManifestStepAsync(string manifest, CancellationToken reads, CancellationToken cancellationToken)
    {
        var (offset, etag) = ManifestLines.ParsePosition(_token);
        var chunk = await ReadInputAsync(
            () => _blobs.ReadRangeAsync(_run.InputContainer, manifest, offset, _options.ManifestChunkBytes, etag, reads),
            e => e is BlobNotFoundException or BlobChangedException ? $"manifest: {e.Message}" : null,
            $"reading manifest {FolderInput.Describe(_run.InputContainer, manifest)}");
        if (chunk is null)
        {
            return;
        }

        var source = $"manifest {FolderInput.Describe(_run.InputContainer, manifest)}";
        var atEnd = offset + chunk.Data.Length >= chunk.TotalLength;
        var data = chunk.Data.AsMemory();
        var rejected = new List<ManifestRejection>();

        // The rest of an over-long line: skipped up to its line end (or the manifest's end).
        var skipped = 0;
        if (ManifestLines.IsInsideLongLine(_token))
        {
            var newline = data.Span.IndexOf((byte)'\n');
            if (newline < 0 && !atEnd)
            {
                await AppendStepAsync(
                    source, [], ManifestLines.FormatPosition(offset + data.Length, chunk.ETag, insideLongLine: true), false, reads, cancellationToken,
                    [], _manifestDuplicates);
                return;
            }

            skipped = newline < 0 ? data.Length : newline + 1;
        }

        var (lines, consumed) = ManifestLines.Parse(data.Span[skipped..], offset == 0, atEnd);
        consumed += skipped;
        string? position;
        if (consumed == 0 && !atEnd)
        {
            // A line longer than a chunk: its start is quarantined, and the next steps skip its rest.
            var start = System.Text.Encoding.UTF8.GetString(data.Span).Trim();
            rejected.Add(new ManifestRejection(
                ManifestLines.RejectedRecordId(start),
                $"{source}: the line at byte {offset} is longer than {_options.ManifestChunkBytes} bytes (Coordinator:ManifestChunkBytes)"));
            position = ManifestLines.FormatPosition(offset + data.Length, chunk.ETag, insideLongLine: true);
        }
        else
        {
            position = atEnd ? null : ManifestLines.FormatPosition(offset + consumed, chunk.ETag);
        }

        var names = new List<string>();
        foreach (var entry in lines.Select(ManifestLines.Resolve))
        {
            if (entry.Name is { } name)
            {
                names.Add(name);
            }
            else
            {
                rejected.Add(new ManifestRejection(
                    ManifestLines.RejectedRecordId(entry.Entry),
                    $"{source}: entry '{PostgresText.Printable(entry.Entry)}' {entry.Problem}"));
            }
        }

        // An entry naming a record already read (the same path twice, or an alias of it, in this chunk or an earlier
        // one) is left out; a rejected entry listed twice is quarantined once.
        var seen = await _shards.ManifestKeysSeenAsync(
            _run.RunId,
            names.Select(_formats.RecordKey).OfType<string>().Concat(rejected.Select(r => ManifestLines.RejectedKey(r.RecordId))).ToHashSet(StringComparer.Ordinal),
            reads);
        var deduplicated = ManifestLines.Deduplicate(_formats, names, _carry, seen);
        var quarantine = new List<ManifestRejection>();
        var rejectedDuplicates = 0;
        var rejectedKeys = new List<string>();
        foreach (var rejection in rejected)
        {
            var key = ManifestLines.RejectedKey(rejection.RecordId);
            if (seen.Contains(key) || rejectedKeys.Contains(key, StringComparer.Ordinal))
            {
                rejectedDuplicates++;
                continue;
            }

            rejectedKeys.Add(key);
            quarantine.Add(rejection);
        }

        var duplicates = _manifestDuplicates + deduplicated.Duplicates.Count + rejectedDuplicates;

        // A manifest names blobs without their ETags: an incremental manifest run is filtered by its workers.
        await AppendStepAsync(
            source, deduplicated.Names.Select(n => new BlobEntry(n, "", -1)).ToList(), position, atEnd, reads, cancellationToken,
            [.. deduplicated.NewKeys, .. rejectedKeys], duplicates, quarantine, manifest);
        if (deduplicated.Duplicates.Count > 0)
        {
            CoordinatorLog.LogManifestDuplicates(_logger, _run.RunId, deduplicated.Duplicates.Count, string.Join(", ", deduplicated.Duplicates.Take(3)));
        }

        if (quarantine.Count > 0)
        {
            CoordinatorLog.LogManifestEntriesQuarantined(_logger, _run.RunId, quarantine.Count, quarantine[0].Reason);
        }

        _manifestDuplicates = duplicates;
    }

    /// <summary>
    /// Reads the step's input. A failure of the input itself (<paramref name="inputFault"/> gives the run's reason:
    /// it is gone, or changed while being read) fails the run; any other is retried on the next tick until
    /// <see cref="CoordinatorOptions.MaxPlanningFailures"/> failed in a row, which fails the run naming
    /// <paramref name="what"/>. Null when the step ends here.
    /// </summary>
    private async Task<T?> ReadInputAsync<T>(Func<Task<T>> read, Func<Exception, string?> inputFault, string what)
        where T : class
    {
        try
        {
            var input = await read();
            _failures = 0;
            Waiting = null;
            return input;
        }
        catch (Exception e) when (inputFault(e) is { } reason)
        {
            Fail(reason);
            return null;
        }
        catch (Exception e) when (e is not OperationCanceledException && ServiceUnavailableException.ServiceOf(e) is { } service)
        {
            // An outage is waited out (not counted as a failed step) for as long as the run's outage budget allows.
            var now = DateTime.UtcNow;
            Waiting ??= (service, now);
            if (now - Waiting.Value.Since > TimeSpan.FromSeconds(_run.OutageBudgetSeconds))
            {
                Fail($"{what}: {service} unreachable for longer than the run's outage budget of {_run.OutageBudgetSeconds} s: {e.Message}");
            }
            else
            {
                CoordinatorLog.LogPlanningRetry(_logger, SafeErrors.ForLog(e), _run.RunId, _failures);
            }

            return null;
        }
        catch (Exception e) when (e is not OperationCanceledException && ++_failures < _options.MaxPlanningFailures)
        {
            CoordinatorLog.LogPlanningRetry(_logger, SafeErrors.ForLog(e), _run.RunId, _failures);
            return null;
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            Fail($"{what} failed {_failures} times: {e.Message}");
            return null;
        }
    }

    /// <summary>
    /// Plans one page of blobs after the carried ones and stores the new shards with the planning position (for a
    /// manifest run, with the records the step read and the run's count of duplicate entries). For an incremental
    /// run, what already has current scores (by the blobs' ETags, where known) is left out and counted. A name
    /// Postgres cannot store (listed in a blob container) fails the run with a reason naming
    /// <paramref name="source"/> and the name: it could never get a score or quarantine row. The manifest entries
    /// the step <paramref name="quarantine"/>s (source blob <paramref name="manifest"/>) form one more shard, stored
    /// done with all its records quarantined, so that the run's counts take them in like any other.
    /// </summary>
    private async Task AppendStepAsync(
        string source, IReadOnlyList<BlobEntry> page, string? position, bool last, CancellationToken reads, CancellationToken cancellationToken,
        IReadOnlyList<string>? manifestKeys = null, long manifestDuplicates = 0, IReadOnlyList<ManifestRejection>? quarantine = null,
        string? manifest = null)
    {
        if (UnstorableName(source, page.Select(b => b.Name)) is { } problem)
        {
            Fail(problem);
            return;
        }

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
        if (_run.Incremental)
        {
            (leaveOut, skipped) = await new CurrentInputs(_currentScores, _run.ModelId).FindAsync(_planner.Candidates(_carry, names, last), etags, reads);
        }

        var step = _planner.Plan(_carry, names, last, leaveOut);
        var carryETags = step.Carry.Select(n => etags.GetValueOrDefault(n, "")).ToList();
        var records = _book.Number(_run.RunId, step.Shards);
        IReadOnlyList<QuarantinedEntry>? rejected = null;
        if (quarantine is { Count: > 0 })
        {
            var shardNo = _book.NextShardNo + records.Count;
            var ids = quarantine.Select(q => q.RecordId).ToList();
            records = [.. records, new ShardRecord(_run.RunId, shardNo, ShardKind.Records, ids, ids.Count, ShardState.Done, 0, null, null, 0, ids.Count, null)];
            rejected = quarantine.Select(q => new QuarantinedEntry(shardNo, q.RecordId, manifest ?? "", q.Reason)).ToList();
        }


        // Stopped while reading: nothing of this step is stored (the run is ending); once storing begins it completes.
        reads.ThrowIfCancellationRequested();
        await _shards.AppendPlanAsync(
            _run.RunId, records, position, step.Carry, last, carryETags, _run.Incremental ? Skipped + skipped : null, manifestKeys, manifestDuplicates,
            rejected, cancellationToken);

        // Stored: the shards join the book in this same turn, so no lease call ever sees a shard that is not stored.
        _book.AddPlanned(records);
        _token = position;
        _carry = step.Carry;
        _carryETags = carryETags;
        Skipped += skipped;
        IsComplete = last;
        CoordinatorLog.LogPlanned(_logger, _run.RunId, records.Count, _book.Count, last, skipped);
        _stored();
    }

    private void Fail(string reason) => Failure = reason;

    /// <summary>The reason to fail the run when a name Postgres cannot store is among <paramref name="names"/>; null when none is.</summary>
    private static string? UnstorableName(string source, IEnumerable<string> names)
    {
        foreach (var name in names)
        {
            if (PostgresText.Problem(name) is { } problem)
            {
                return $"{source}: blob name '{PostgresText.Printable(name)}' {problem}";
            }
        }

        return null;
    }
}
