using System.Formats.Tar;
using System.IO.Compression;
using HubertEcg.Grains;
using HubertEcg.Storage;
using HubertEcg.Testing;

namespace HubertEcg.Integration.Tests.Scoring;

/// <summary>
/// Hostile containers scored by a cluster against real Postgres and Azurite (issue 12, findings 4 and 6): HDF5 headers
/// claiming far more than their files hold, an unreadable HDF5 file, a zip bomb and a tar of links, devices and FIFOs.
/// Each is quarantined under its blob (and member) name with the reason, never a worker's temporary path, the run
/// completes, and the silo's memory stays bounded.
/// </summary>
public sealed class BoundedInputRunTests(PostgresDatabaseFixture database, BlobContainerFixture blobs)
    : IClassFixture<PostgresDatabaseFixture>, IClassFixture<BlobContainerFixture>
{
    [Fact]
    public async Task HostileContainersAreQuarantinedByBlobAndMemberNameWithBoundedMemory()
    {
        using var model = new TinyModel(seed: 46);
        var good = SyntheticCohort.Hdf5Bytes(3, out var examIds);
        var uploads = new Dictionary<string, byte[]>(StringComparer.Ordinal)
        {
            ["bounds/good.hdf5"] = good,
            ["bounds/long-exam.hdf5"] = HostileHdf5.Claiming(1, 20_000_000),
            ["bounds/many-exams.hdf5"] = HostileHdf5.Claiming(int.MaxValue, 4096),
            ["bounds/junk.hdf5"] = new byte[2048],
            ["bounds/bomb.zip"] = ZipBomb(),
            ["bounds/links.tar"] = TarOfLinks(),
        };
        foreach (var (name, bytes) in uploads)
        {
            await blobs.Container.GetBlobClient(name).UploadAsync(new BinaryData(bytes), overwrite: true);
        }

        var store = new RunStore(database.DataSource);
        await using var cluster = await ScoringCluster.StartAsync(1, database.ConnectionString, blobs.ConnectionString);
        var allocatedBefore = GC.GetTotalAllocatedBytes(precise: true);
        var runId = await Runs.SubmitAsync(store, model.Descriptor, blobs.ContainerName, "bounds/", shardSize: 10, modelPath: model.Path);
        var run = await Runs.WaitFinishedAsync(store, runId, TimeSpan.FromMinutes(5));
        var allocated = GC.GetTotalAllocatedBytes(precise: true) - allocatedBefore;

        Assert.Equal((RunState.Completed, 0, 6), (run.State, run.ShardsFailed, run.ShardsDone));

        // Reading a 20,000,000-sample exam would allocate about 3 GB; the whole run stays far below 1 GB.
        Assert.InRange(allocated, 0, 1L << 30);

        var scored = await Runs.StringsAsync(database.DataSource, "select record_id from scores where run_id = @run", runId);
        Assert.Superset(examIds.Select(id => $"bounds/good.hdf5#{id}").ToHashSet(), scored.ToHashSet());

        var quarantined = new Dictionary<string, (string Source, string Reason)>(StringComparer.Ordinal);
        await using (var cmd = database.DataSource.CreateCommand("select record_id, source_blob, reason from quarantine where run_id = @run"))
        {
            cmd.Parameters.AddWithValue("run", runId);
            await using var reader = await cmd.ExecuteReaderAsync();
            while (await reader.ReadAsync())
            {
                quarantined.Add(reader.GetString(0), (reader.GetString(1), reader.GetString(2)));
            }
        }

        Assert.Equal(
            ("bounds/long-exam.hdf5", "dataset 'tracings' claims 1 exams of 20,000,000 samples x 12 leads: each exam is longer than the 1,048,576 samples an exam may have (Workers:Hdf5:MaxSamplesPerExam)"),
            quarantined["bounds/long-exam.hdf5"]);
        Assert.Equal(
            ("bounds/many-exams.hdf5", "dataset 'tracings' claims 2,147,483,647 exams of 4,096 samples x 12 leads: more than the 1,048,576 exams a shard may hold (Workers:Hdf5:MaxExams)"),
            quarantined["bounds/many-exams.hdf5"]);
        Assert.StartsWith("not a readable HDF5 file", quarantined["bounds/junk.hdf5"].Reason, StringComparison.Ordinal);
        Assert.StartsWith("archive expands to more than ", quarantined["bounds/bomb.zip"].Reason, StringComparison.Ordinal);
        Assert.Contains("(Workers:Archives:MaxExpansion)", quarantined["bounds/bomb.zip"].Reason, StringComparison.Ordinal);
        Assert.Equal(
            ("bounds/links.tar", "member 'links/p9.hea' is a symbolic link, not a regular file; links, devices and FIFOs in an archive are not read"),
            quarantined["bounds/links.tar/links/p9.hea"]);
        Assert.Equal(
            ("bounds/links.tar", "member 'links/pipe' is a FIFO, not a regular file; links, devices and FIFOs in an archive are not read"),
            quarantined["bounds/links.tar/links/pipe"]);

        // Keyed by blob and member names: no worker's temporary path anywhere.
        Assert.All(quarantined, q =>
        {
            Assert.StartsWith("bounds/", q.Key, StringComparison.Ordinal);
            Assert.StartsWith("bounds/", q.Value.Source, StringComparison.Ordinal);
            Assert.DoesNotContain(Path.GetTempPath().TrimEnd('/'), q.Value.Reason, StringComparison.Ordinal);
            Assert.DoesNotContain(".members", q.Value.Reason, StringComparison.Ordinal);
        });

        // The counters equal the rows.
        Assert.Equal(run.RecordsQuarantined, quarantined.Count);
        Assert.Equal(run.RecordsDone, scored.Count);
    }

    /// <summary>A zip of one .npy record and 40 members of 8 MiB of zeros: 320 MiB from well under 1 MiB.</summary>
    private static byte[] ZipBomb()
    {
        using var output = new MemoryStream();
        using (var zip = new ZipArchive(output, ZipArchiveMode.Create, leaveOpen: true))
        {
            var zeros = new byte[8 << 20];
            for (var i = 0; i < 40; i++)
            {
                using var entry = zip.CreateEntry($"bomb/zeros{i:D2}.dat", CompressionLevel.SmallestSize).Open();
                entry.Write(zeros);
            }
        }

        return output.ToArray();
    }

    /// <summary>A tar of a symbolic link named like a WFDB header, and a FIFO.</summary>
    private static byte[] TarOfLinks()
    {
        using var output = new MemoryStream();
        using (var writer = new TarWriter(output, TarEntryFormat.Ustar, leaveOpen: true))
        {
            writer.WriteEntry(new UstarTarEntry(TarEntryType.SymbolicLink, "links/p9.hea") { LinkName = "/etc/passwd" });
            writer.WriteEntry(new UstarTarEntry(TarEntryType.Fifo, "links/pipe"));
        }

        return output.ToArray();
    }
}
