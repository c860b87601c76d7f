using HubertEcg.Inference.Ecg;
using HubertEcg.Inference.Formats;
using HubertEcg.Storage;
using HubertEcg.Worker;

namespace HubertEcg.Silo.Dashboard;

/// <summary>What the record page draws: the 12 standard leads in mV, or why they could not be read.</summary>
/// <param name="Signal">The record's 12 standard leads (I, II, III, aVR, aVL, aVF, V1-V6) in mV; null when <paramref name="Problem"/> says why.</param>
/// <param name="CurrentVersion">The version of the record's files now (as <see cref="FormatRegistry.SourceVersion"/> forms it); null when unknown.</param>
/// <param name="Problem">Why the record could not be read, in one line naming the record or blob; null when it was.</param>
public sealed record RecordRead(EcgSignal? Signal, string? CurrentVersion, string? Problem);

/// <summary>
/// Reads one scored record on demand from the run's input store (blob container or mounted folder) exactly as the
/// workers do: the files of a single record (those sharing its path without extension, plus the signal files its
/// primary file names) or the container blob it is a member of, read by the format registry and mapped to the 12
/// standard leads in mV. Nothing is cached and nothing is written but a temporary folder, deleted at once. A record
/// larger than <see cref="MaxBytes"/>, a missing blob, an unreadable one or an unreachable store is a
/// <see cref="RecordRead.Problem"/>, never an exception.
/// </summary>
public sealed class DashboardRecords(IInputStore? store, FormatRegistry registry)
{
    /// <summary>The most bytes one record page downloads (a container's whole blob counts).</summary>
    public const long MaxBytes = 256L * 1024 * 1024;

    private const int ListPageSize = 100;
    private const int MaxListPages = 10;

    public async Task<RecordRead> ReadAsync(string container, string sourceBlob, string recordId, CancellationToken cancellationToken)
    {
        if (store is null)
        {
            return new RecordRead(null, null, "this server has no input store configured (BlobStorage:ConnectionString), so it cannot read ECGs");
        }

        var directory = Directory.CreateTempSubdirectory("hubert-ecg-dashboard-").FullName;
        try
        {
            return registry.IsContainer(sourceBlob)
                ? await ReadMemberAsync(store, container, sourceBlob, recordId, directory, cancellationToken)
                : await ReadRecordAsync(store, container, sourceBlob, recordId, directory, cancellationToken);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            throw;
        }
        catch (BlobNotFoundException)
        {
            return new RecordRead(null, null, $"the record's source blob '{sourceBlob}' no longer exists in '{container}'");
        }
        catch (Exception e)
        {
            return new RecordRead(null, null, $"{recordId} could not be read: {SafeErrors.Describe(e)}");
        }
        finally
        {
            try
            {
                Directory.Delete(directory, recursive: true);
            }
            catch (IOException)
            {
                // A file still open elsewhere: the temporary folder is the system's to clean.
            }
        }
    }

    private async Task<RecordRead> ReadMemberAsync(
        IInputStore input, string container, string blobName, string recordId, string directory, CancellationToken cancellationToken)
    {
        var path = Path.Combine(directory, "container" + Path.GetExtension(blobName));
        var etag = await input.DownloadToFileAsync(container, blobName, path, MaxBytes, cancellationToken);
        var resources = new List<IDisposable>();
        try
        {
            foreach (var member in registry.OpenContainer(path, blobName, resources))
            {
                if (string.Equals(member.RecordId, recordId, StringComparison.Ordinal))
                {
                    return new RecordRead(member.Load().ToStandard12Lead(), etag, null);
                }
            }

            return new RecordRead(null, etag, $"{blobName} no longer holds record {recordId}");
        }
        finally
        {
            foreach (var resource in resources)
            {
                resource.Dispose();
            }
        }
    }

    private async Task<RecordRead> ReadRecordAsync(
        IInputStore input, string container, string sourceBlob, string recordId, string directory, CancellationToken cancellationToken)
    {
        // The record's files: every name under its path that has its stem, as the planner grouped them.
        var names = new List<string>();
        string? token = null;
        var pages = 0;
        do
        {
            var page = await input.ListPageAsync(container, recordId + ".", token, ListPageSize, cancellationToken);
            names.AddRange(page.Items.Select(i => i.Name).Where(n => FormatRegistry.RecordStem(n) == recordId && !registry.IsContainer(n)));
            token = page.ContinuationToken;
        }
        while (token is not null && ++pages < MaxListPages);

        if (!names.Contains(sourceBlob, StringComparer.Ordinal))
        {
            return new RecordRead(null, null, $"the record's source blob '{sourceBlob}' no longer exists in '{container}'");
        }

        var files = new Dictionary<string, string>(StringComparer.Ordinal);
        var versions = new List<(string Blob, string ETag)>();
        long total = 0;
        async Task DownloadAsync(string name, bool required)
        {
            var path = Path.Combine(directory, $"{files.Count}-{Path.GetFileName(name)}");
            string etag;
            try
            {
                etag = await input.DownloadToFileAsync(container, name, path, MaxBytes, cancellationToken);
            }
            catch (BlobNotFoundException) when (!required)
            {
                return; // the reader names the missing file
            }

            total += new FileInfo(path).Length;
            if (total > MaxBytes)
            {
                throw new BlobTooLargeException(container, name, total, MaxBytes);
            }

            files[Path.GetFileName(name)] = path;
            versions.Add((name, etag));
        }

        foreach (var name in names)
        {
            await DownloadAsync(name, required: name == sourceBlob);
        }

        // The signal files the primary file names (a WFDB header's), as the workers fetch them for manifest runs.
        var folder = sourceBlob[..(sourceBlob.LastIndexOf('/') + 1)];
        foreach (var companion in registry.CompanionFiles(sourceBlob, new MappedRecordFileSource(files)))
        {
            if (!files.ContainsKey(companion))
            {
                await DownloadAsync(folder + companion, required: false);
            }
        }

        var version = FormatRegistry.SourceVersion(versions);
        var handle = registry.Record(recordId, Path.GetFileName(recordId), files.Keys, new MappedRecordFileSource(files));
        return new RecordRead(handle.Load().ToStandard12Lead(), version, null);
    }
}
