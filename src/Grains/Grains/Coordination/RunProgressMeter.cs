namespace HubertEcg.Grains.Coordination;

/// <summary>
/// A run's progress as its coordinator reports it: counts derived from the shards (so a crash never double-counts),
/// the rate over a sliding window of the records workers reported, and the ETA from the records left
/// (<see cref="RemainingRecords"/>). Pure: the caller passes the time. The window starts empty at activation, so the
/// rate of a young activation is measured over the time it has been active (at least a second).
/// </summary>
public sealed class RunProgressMeter(TimeSpan rateWindow, DateTime activatedAt)
{
    private readonly Queue<(DateTime At, int Records)> _recent = new();

    /// <summary>Counts <paramref name="records"/> written at <paramref name="at"/> towards the rate (none when not positive).</summary>
    public void Report(DateTime at, int records)
    {
        if (records > 0)
        {
            _recent.Enqueue((at, records));
        }
    }

    /// <summary>The records per second reported over the window ending at <paramref name="now"/> (drops older reports).</summary>
    public double Rate(DateTime now)
    {
        while (_recent.Count > 0 && now - _recent.Peek().At > rateWindow)
        {
            _recent.Dequeue();
        }

        var window = Math.Min(rateWindow.TotalSeconds, Math.Max(1, (now - activatedAt).TotalSeconds));
        return _recent.Sum(r => (double)r.Records) / window;
    }

    /// <summary>
    /// The progress of run <paramref name="runId"/> in <paramref name="state"/> with the shards of <paramref name="book"/>;
    /// <paramref name="planningSkipped"/> are the records planning left out as current. A final run has no rate and an
    /// ETA of 0; otherwise the ETA is known once planning is complete, records are being written and what is left can
    /// be estimated.
    /// </summary>
    public RunProgress Build(Guid runId, RunState state, bool planningComplete, long planningSkipped, ShardBook book, DateTime now)
    {
        long planned = 0, done = 0, quarantined = 0, failed = 0, skipped = planningSkipped;
        int shardsDone = 0, shardsFailed = 0;
        foreach (var shard in book.Shards)
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

        var rate = Rate(now);

        // Containers not read yet count as many records as those read so far held on average.
        var remaining = RemainingRecords.Estimate(book.Shards.Select(s => new ShardWorkload(
            s.Kind == ShardKind.Container, s.State, s.RecordsPlanned, s.RecordsDone + s.RecordsQuarantined, s.ReportedInFlight)));
        double? eta = state.IsFinal() ? 0 : rate > 0 && planningComplete && remaining is { } left ? left / rate : null;
        return new RunProgress(
            runId, state, planningComplete, book.Count, shardsDone, shardsFailed, book.LeasedCount,
            planned, done, quarantined, failed, state.IsFinal() ? 0 : rate, eta, skipped);
    }
}
