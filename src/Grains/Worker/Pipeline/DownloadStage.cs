using System.Collections.Concurrent;
using System.Threading.Channels;
using HubertEcg.Grains;
using HubertEcg.Inference.Ecg;
using HubertEcg.Inference.Formats;
using HubertEcg.Inference.IO;
using Microsoft.Extensions.Logging;

namespace HubertEcg.Worker.Pipeline;

/// <summary>
/// Stage 0: takes a slot (<see cref="InFlightLeases"/>), asks the lease port for a shard, starts opening its model and
/// downloads its blobs into a folder of its own, then passes the held lease on to the prepare stage. A shard that
/// cannot be downloaded has its lease released with the reason; an error while asking for work is logged and asked
/// again after <see cref="WorkerOptions.IdlePollInterval"/>. Completes its output when the worker stops.
/// </summary>
internal sealed partial class DownloadStage(
    string workerId,
    WorkerPorts ports,
    FormatRegistry formats,
    WorkerOptions options,
    ScorerCache scorers,
    ScoringMetrics.WorkerQueues queues,
    OutageBackoff backoff,
    ILogger logger)
{
    public async Task RunAsync(ChannelWriter<HeldLease> output, InFlightLeases leases, CancellationToken stoppingToken)
    {
        try
        {
            while (!stoppingToken.IsCancellationRequested)
            {
                await backoff.WaitAsync(stoppingToken);
                await leases.TakeSlotAsync(stoppingToken);
                HeldLease? held = null;
                IDisposable? scope = null;
                var passedOn = false;
                try
                {
                    held = await AcquireAsync(stoppingToken);
                    if (held is null)
                    {
                        await Task.Delay(options.IdlePollInterval, stoppingToken);
                        continue;
                    }

                    scope = ScoringPipeline.ShardScope(logger, held.Lease.RunId, held.Lease.ShardNo, workerId);

                    // The model loads (once per model) while the shard downloads; a failure shows when the shard is read.
                    scorers.Start(held.Lease);
                    if (await DownloadAsync(held, stoppingToken))
                    {
                        leases.Add(held);
                        queues.AddShards(1);
                        try
                        {
                            await output.WriteAsync(held, stoppingToken);
                        }
                        catch
                        {
                            queues.AddShards(-1);
                            throw;
                        }

                        passedOn = true;
                        held = null;
                    }
                }
                catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
                {
                    break;
                }
                catch (Exception e)
                {
                    if (held is null)
                    {
                        LogFetchFailed(logger, SafeErrors.ForLog(e), workerId);
                    }
                    else if (ServiceUnavailableException.ServiceOf(e) is { } service)
                    {
                        // Storage is down, not the shard's fault: hand it back without spending an attempt, and wait.
                        var wait = backoff.Failed();
                        LogOutage(logger, workerId, held.Lease.RunId, held.Lease.ShardNo, service, wait.TotalSeconds, SafeErrors.Describe(e));
                        await held.InterruptAsync(service, $"worker {workerId}: {SafeErrors.Describe(e)}");
                    }
                    else
                    {
                        LogShardFailed(logger, SafeErrors.ForLog(e), workerId, held.Lease.RunId, held.Lease.ShardNo);
                        await held.TryReleaseAsync($"worker {workerId}: {SafeErrors.Describe(e)}", permanent: false);
                    }

                    await Task.Delay(options.IdlePollInterval, CancellationToken.None);
                }
                finally
                {
                    if (!passedOn)
                    {
                        leases.ReturnSlot();
                    }

                    if (held is not null)
                    {
                        leases.Remove(held);
                        if (stoppingToken.IsCancellationRequested)
                        {
                            await held.HandBackAsync();
                        }

                        await held.DisposeAsync();
                    }

                    scope?.Dispose();
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // Stopped while waiting for a free slot.
        }
        finally
        {
            output.Complete();
        }
    }

    private async Task<HeldLease?> AcquireAsync(CancellationToken cancellationToken)
    {
        var lease = await ports.Leases.AcquireAsync(workerId, cancellationToken);
        if (lease is null)
        {
            return null;
        }

        LogLeased(logger, workerId, lease.RunId, lease.ShardNo, lease.LeaseId);
        return new HeldLease(workerId, ports.Leases, lease, logger);
    }

    /// <summary>
    /// Downloads the shard's blobs; false (and the lease released) when the shard cannot be downloaded. For a run
    /// whose input is a manifest, a listed blob that does not exist is noted (its record is quarantined) rather than
    /// failing the shard; so is, in any run, a blob the input store refuses to read (a folder's FIFO, say). The signal
    /// files each WFDB header of a manifest run names are downloaded too (a manifest may list only the headers).
    /// </summary>
    private async Task<bool> DownloadAsync(HeldLease held, CancellationToken stoppingToken)
    {
        var lease = held.Lease;
        var root = string.IsNullOrEmpty(options.TempDirectory) ? Path.GetTempPath() : options.TempDirectory;
        var directory = Path.Combine(root, "hubert-ecg", $"{lease.RunId:N}-{lease.ShardNo}-{lease.LeaseId}-{Guid.NewGuid():N}");
        held.LocalDirectory = directory;
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken, held.Stopped);
        var results = new DownloadedBlob?[lease.Blobs.Count];
        var missing = new ConcurrentBag<string>();
        var refused = new ConcurrentDictionary<string, string>(StringComparer.Ordinal);
        long total = 0;
        async Task<string?> DownloadOneAsync(string name, string path, CancellationToken ct)
        {
            string etag;
            try
            {
                etag = await ports.Blobs.DownloadToFileAsync(lease.Container, name, path, options.MaxShardBytes, ct);
            }
            catch (BlobNotFoundException) when (lease.FromManifest)
            {
                return null;
            }
            catch (InputRefusedException e)
            {
                refused[name] = e.Message;
                return null;
            }

            if (Interlocked.Add(ref total, new FileInfo(path).Length) > options.MaxShardBytes)
            {
                throw new BlobTooLargeException(lease.Container, name, Interlocked.Read(ref total), options.MaxShardBytes);
            }

            return etag;
        }

        var parallel = new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, options.DownloadConcurrency), CancellationToken = linked.Token };
        var blobsOut = new List<DownloadedBlob>();
        try
        {
            await Parallel.ForEachAsync(
                Enumerable.Range(0, lease.Blobs.Count),
                parallel,
                async (i, ct) =>
                {
                    var name = lease.Blobs[i];
                    var path = LocalPaths.PathFor(directory, "", i, name);
                    if (await DownloadOneAsync(name, path, ct) is { } etag)
                    {
                        results[i] = new DownloadedBlob(name, path, etag);
                    }
                    else if (!refused.ContainsKey(name))
                    {
                        missing.Add(name);
                    }
                });
            blobsOut.AddRange(results.OfType<DownloadedBlob>());
            if (lease.FromManifest && lease.Kind == ShardKind.Records)
            {
                var signalFiles = CompanionFilesToFetch(blobsOut);
                var extra = new DownloadedBlob?[signalFiles.Count];
                await Parallel.ForEachAsync(
                    Enumerable.Range(0, signalFiles.Count),
                    parallel,
                    async (i, ct) =>
                    {
                        var (name, stem) = signalFiles[i];
                        var path = LocalPaths.PathFor(directory, "s", i, name);

                        // A signal file that does not exist is left out: its record reports the missing file when read.
                        if (await DownloadOneAsync(name, path, ct) is { } etag)
                        {
                            extra[i] = new DownloadedBlob(name, path, etag, stem);
                        }
                    });
                blobsOut.AddRange(extra.OfType<DownloadedBlob>());
            }
        }
        catch (Exception e) when (e is BlobNotFoundException or BlobTooLargeException)
        {
            LogShardFailed(logger, SafeErrors.ForLog(e), workerId, lease.RunId, lease.ShardNo);
            await held.TryReleaseAsync(e.Message, permanent: true);
            return false;
        }
        catch (OperationCanceledException) when (held.Stopped.IsCancellationRequested && !stoppingToken.IsCancellationRequested)
        {
            return false;
        }

        held.Shard = new DownloadedShard(lease.Kind, lease.Container, directory, blobsOut)
        {
            MissingBlobs = missing.Order(StringComparer.Ordinal).ToList(),
            RefusedBlobs = new Dictionary<string, string>(refused, StringComparer.Ordinal),
        };
        return true;
    }

    /// <summary>
    /// The files the downloaded records' primary files say they also need (a WFDB header's signal files) that are
    /// not part of the shard yet, each with its record (path without extension). The format registry reads them.
    /// </summary>
    private List<(string BlobName, string RecordStem)> CompanionFilesToFetch(IReadOnlyList<DownloadedBlob> downloaded)
    {
        var present = downloaded.Select(b => b.BlobName).ToHashSet(StringComparer.Ordinal);
        var wanted = new List<(string, string)>();
        foreach (var blob in downloaded)
        {
            var stem = FormatRegistry.RecordStem(blob.BlobName);
            var source = new MappedRecordFileSource(new Dictionary<string, string>(StringComparer.Ordinal) { [Path.GetFileName(blob.BlobName)] = blob.LocalPath });
            var folder = blob.BlobName[..(blob.BlobName.LastIndexOf('/') + 1)];
            foreach (var file in formats.CompanionFiles(blob.BlobName, source))
            {
                if (present.Add(folder + file))
                {
                    wanted.Add((folder + file, stem));
                }
            }
        }

        return wanted;
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "{Worker}: leased run {RunId} shard {ShardNo} attempt {LeaseId}")]
    private static partial void LogLeased(ILogger logger, string worker, Guid runId, int shardNo, int leaseId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Worker}: run {RunId} shard {ShardNo} failed")]
    private static partial void LogShardFailed(ILogger logger, Exception e, string worker, Guid runId, int shardNo);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Worker}: run {RunId} shard {ShardNo}: {Service} unreachable; handed back without spending an attempt, next shard in {WaitSeconds:0.0} s: {Reason}")]
    private static partial void LogOutage(ILogger logger, string worker, Guid runId, int shardNo, string service, double waitSeconds, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Worker}: error while asking for work (no shard leased)")]
    private static partial void LogFetchFailed(ILogger logger, Exception e, string worker);
}
