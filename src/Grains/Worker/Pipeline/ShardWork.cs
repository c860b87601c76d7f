using System.Threading.Channels;
using HubertEcg.Grains;
using HubertEcg.Inference.Model;

namespace HubertEcg.Worker.Pipeline;

/// <summary>
/// One leased shard inside the pipeline. The prepare stage fills <see cref="Records"/> and completes it at the shard's
/// end; the batch stage reads it. The shard's records are counted open from the batch stage until the score stage has
/// aggregated them; the shard's end counts as one more, so that whichever stage closes the last one hands the shard's
/// end to the writer (<see cref="CloseRecord"/>, <see cref="CloseEnd"/>).
/// </summary>
internal sealed class ShardWork : IDisposable
{
    // Records of one shard waiting for the batch stage (the only items a channel between prepare and batch carries).
    private const int RecordsAhead = 64;

    private readonly CancellationTokenSource _token;
    private readonly List<QuarantineRow> _quarantine = [];
    private readonly ScoringMetrics.WorkerQueues _queues;
    private int _open = 1;
    private int _scored;

    public ShardWork(HeldLease held, ScoringMetrics.WorkerQueues queues, CancellationToken stoppingToken)
    {
        Held = held;
        _queues = queues;
        _token = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken, held.Stopped);
        Records = Channel.CreateBounded<PreparedRecord>(new BoundedChannelOptions(RecordsAhead) { SingleReader = true });
    }

    public HeldLease Held { get; }

    public ShardLease Lease => Held.Lease;

    /// <summary>Cancelled when the worker stops, the lease is lost or the run is cancelled.</summary>
    public CancellationToken Token => _token.Token;

    /// <summary>The shard's prepared records; completed (by the prepare stage) at the shard's end.</summary>
    public Channel<PreparedRecord> Records { get; }

    /// <summary>
    /// Set by the prepare stage before it completes <see cref="Records"/>: no further shard was downloaded when this
    /// one ended, so the batch stage sends its partial batch rather than have the model wait.
    /// </summary>
    public bool FlushAfter { get; set; }

    public IEcgScorer? Scorer { get; set; }

    /// <summary>The first error that failed the shard; its lease is released with it.</summary>
    public string? Error { get; private set; }

    public bool Permanent { get; private set; }

    /// <summary>When the shard failed because a service was unreachable: which (<c>storage</c>, <c>database</c>); the attempt does not count.</summary>
    public string? Outage { get; private set; }

    /// <summary>The error is the run's, not the shard's (<see cref="FailRun"/>): the whole run fails with it.</summary>
    public bool RunFault { get; private set; }

    /// <summary>Failed, or its lease lost: its remaining records are not scored and nothing more is written.</summary>
    public bool Dropped => Error is not null || Held.Stopped.IsCancellationRequested;

    /// <summary>Score rows not yet handed to the writer; only the score stage adds to them.</summary>
    public List<ScoreRow> Rows { get; private set; } = [];

    /// <summary>Records written (write stage; its concurrent writes add through <see cref="AddScored"/>).</summary>
    public int Scored => Volatile.Read(ref _scored);

    public void AddScored(int count) => Interlocked.Add(ref _scored, count);

    /// <summary>Records left out as current (incremental runs).</summary>
    public int Skipped { get; set; }

    public void Fail(string error, bool permanent, string? outage = null)
    {
        lock (_quarantine)
        {
            if (Error is null)
            {
                Error = error;
                Permanent = permanent;
                Outage = outage;
            }
        }
    }

    /// <summary>Fails the shard with an unexpected error: an outage when a service was unreachable, a retryable failure otherwise.</summary>
    public void Fail(Exception e) => Fail(SafeErrors.Describe(e), permanent: false, ServiceUnavailableException.ServiceOf(e));

    /// <summary>
    /// Fails the shard because its run cannot work (options or model, whichever shard is tried): the write stage then
    /// fails the run through the lease port rather than spend this shard's attempts, or hand it back to loop.
    /// </summary>
    public void FailRun(string reason)
    {
        lock (_quarantine)
        {
            if (Error is null)
            {
                Error = reason;
                Permanent = true;
                RunFault = true;
            }
        }
    }

    /// <summary>A record enters the batches (batch stage); it stays open until its last window is aggregated.</summary>
    public void OpenRecord() => Interlocked.Increment(ref _open);

    /// <summary>A record's last window was aggregated (score stage); true when nothing of the shard is open any more.</summary>
    public bool CloseRecord() => Interlocked.Decrement(ref _open) == 0;

    /// <summary>The batch stage saw the shard's end; true when nothing of the shard is open any more.</summary>
    public bool CloseEnd() => Interlocked.Decrement(ref _open) == 0;

    /// <summary>
    /// The rows gathered so far as one item for the writer (none when the shard was dropped); <paramref name="last"/>
    /// marks the shard's end. Called by the one stage that holds the shard at that moment (see <see cref="ShardWork"/>).
    /// </summary>
    public WriteItem TakeWrite(bool last)
    {
        var rows = Rows;
        Rows = [];
        if (Dropped)
        {
            _queues.AddRows(-rows.Count);
            rows = [];
        }

        return new WriteItem(this, rows, last);
    }

    /// <summary>
    /// Adds a quarantine row; a record id that cannot be a key (<see cref="PostgresText.KeyProblem"/>) is stored as
    /// its <see cref="PostgresText.StorableKey"/>.
    /// </summary>
    public void Quarantine(string recordId, string blob, string reason)
    {
        var row = new QuarantineRow(Lease.RunId, PostgresText.StorableKey(recordId), Lease.ShardNo, blob, reason, DateTime.UtcNow);
        lock (_quarantine)
        {
            _quarantine.Add(row);
        }

        _queues.AddRows(1);
    }

    public List<QuarantineRow> TakeQuarantine()
    {
        lock (_quarantine)
        {
            return [.. _quarantine];
        }
    }

    public void Dispose() => _token.Dispose();
}
