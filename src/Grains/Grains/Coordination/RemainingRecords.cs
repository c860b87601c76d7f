namespace HubertEcg.Grains.Coordination;

/// <summary>
/// One shard as the run's ETA sees it: a container (records unknown until it is read) or a group of records,
/// its state, the records planned for it (0 for a container), the records it turned out to hold once read (done),
/// and the records its current lease holder has reported written so far.
/// </summary>
public readonly record struct ShardWorkload(bool IsContainer, ShardState State, int RecordsPlanned, int RecordsRead, int RecordsInFlight);

/// <summary>How many records a run still has to read, for its ETA.</summary>
public static class RemainingRecords
{
    /// <summary>
    /// The records of the shards not finished (pending or leased), less what their lease holders already reported.
    /// A container not read yet is estimated at the mean record count of the containers read so far; while
    /// containers are waiting and none has been read, the count is unknown (null) rather than too low. Done and
    /// failed shards have nothing left to read.
    /// </summary>
    public static double? Estimate(IEnumerable<ShardWorkload> shards)
    {
        double known = 0;
        var waitingContainers = new List<int>();
        long containerRecordsRead = 0;
        var containersRead = 0;
        foreach (var shard in shards)
        {
            if (shard.State is ShardState.Done or ShardState.Failed or ShardState.Cancelled)
            {
                if (shard.State == ShardState.Done && shard.IsContainer)
                {
                    containersRead++;
                    containerRecordsRead += shard.RecordsRead;
                }

                continue;
            }

            var inFlight = shard.State == ShardState.Leased ? shard.RecordsInFlight : 0;
            if (shard.IsContainer)
            {
                waitingContainers.Add(inFlight);
            }
            else
            {
                known += Math.Max(0, shard.RecordsPlanned - inFlight);
            }
        }

        if (waitingContainers.Count == 0)
        {
            return known;
        }

        if (containersRead == 0)
        {
            return null;
        }

        var perContainer = (double)containerRecordsRead / containersRead;
        return known + waitingContainers.Sum(inFlight => Math.Max(0, perContainer - inFlight));
    }
}
