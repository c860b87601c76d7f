using System.Text;
using HubertEcg.Grains;
using HubertEcg.Inference.Ecg;
using HubertEcg.Inference.Ecg.Synthetic;
using HubertEcg.Inference.Formats;
using HubertEcg.Inference.Formats.Archive;
using HubertEcg.Inference.Formats.Hdf5;
using HubertEcg.Storage;
using HubertEcg.Testing;

namespace HubertEcg.Unit.Tests.Formats;

/// <summary>Reading tar and zip archive shards with the real record readers, from files on disk.</summary>
public sealed class ArchiveFormatTests : IDisposable
{
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "hubert-archive-" + Guid.NewGuid().ToString("N"));

    public ArchiveFormatTests()
    {
        Directory.CreateDirectory(_directory);
    }

    public void Dispose()
    {
        Directory.Delete(_directory, recursive: true);
    }

    [Theory]
    [InlineData("cohort.tar")]
    [InlineData("cohort.tar.gz")]
    [InlineData("cohort.tgz")]
    [InlineData("cohort.zip")]
    public void EveryMemberRecordIsReadUnderTheArchiveName(string blobName)
    {
        var (members, records) = ArchiveBuilder.Cohort(seed: 5);
        var bytes = blobName.EndsWith(".zip", StringComparison.Ordinal)
            ? ArchiveBuilder.Zip(members)
            : ArchiveBuilder.Tar(members, gzip: blobName.EndsWith("gz", StringComparison.Ordinal));

        var outcome = Read("in/" + blobName, bytes);

        Assert.Equal(records.Select(r => $"in/{blobName}/{r}").Order(StringComparer.Ordinal), outcome.Signals.Keys.Order(StringComparer.Ordinal));
        Assert.Empty(outcome.Errors);
        Assert.All(outcome.Signals.Values, s => Assert.Equal(12, s.Leads.Length));
        Assert.Equal(100, outcome.Signals[$"in/{blobName}/wfdb/p2"].SamplingRate);
    }

    [Fact]
    public void ACorruptMemberQuarantinesItsRecordOnly()
    {
        var (members, records) = ArchiveBuilder.Cohort(seed: 6);
        members.Add(new("bad/x1.hea", Encoding.ASCII.GetBytes("this is not a WFDB header\n")));
        members.Add(new("bad/x1.dat", new byte[100]));

        var outcome = Read("c.tar", ArchiveBuilder.Tar(members));

        Assert.Equal(records.Count, outcome.Signals.Count);
        Assert.Equal(["c.tar/bad/x1"], outcome.Errors.Keys);
    }

    [Fact]
    public void AZipMemberFailingItsChecksumQuarantinesItsRecordOnly()
    {
        var (members, records) = ArchiveBuilder.Cohort(seed: 7);
        var zip = ArchiveBuilder.Zip(members);

        // Flip bytes inside npy/r1.npy's compressed data (after its local header and name).
        var name = Encoding.ASCII.GetBytes("npy/r1.npy");
        var at = zip.AsSpan().IndexOf(name) + name.Length + 64;
        for (var i = 0; i < 16; i++)
        {
            zip[at + i] ^= 0x5A;
        }

        var outcome = Read("z.zip", zip);

        Assert.Equal(records.Where(r => r != "npy/r1").Select(r => "z.zip/" + r).Order(StringComparer.Ordinal), outcome.Signals.Keys.Order(StringComparer.Ordinal));
        Assert.Equal(["z.zip/npy/r1"], outcome.Errors.Keys);
        Assert.Contains("npy/r1.npy", outcome.Errors["z.zip/npy/r1"], StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void ATruncatedTarKeepsTheRecordsBeforeTheCut(bool gzip)
    {
        var (members, _) = ArchiveBuilder.Cohort(seed: 8);
        members.RemoveAll(m => m.Key == "README.txt");

        // Cut inside the data of the last member (npy/r1.npy).
        var tar = ArchiveBuilder.Tar(members);
        var cut = ArchiveBuilder.TarHeaderOffset(members, members.Count - 1) + 512 + (members[^1].Value.Length / 2);
        var bytes = tar[..cut];
        if (gzip)
        {
            bytes = ArchiveBuilder.Gzip(bytes);
        }

        var outcome = Read(gzip ? "t.tgz" : "t.tar", bytes);
        var prefix = gzip ? "t.tgz/" : "t.tar/";

        Assert.Equal(
            new[] { "challenge/A0001", "wfdb/p1", "wfdb/p2" }.Select(r => prefix + r),
            outcome.Signals.Keys.Order(StringComparer.Ordinal));
        Assert.Equal([prefix + "npy/r1"], outcome.Errors.Keys);
        Assert.Contains("truncated", outcome.Errors[prefix + "npy/r1"], StringComparison.Ordinal);
    }

    [Fact]
    public void ATarCutInsideAFileThatIsNoRecordQuarantinesTheArchiveItself()
    {
        var (members, records) = ArchiveBuilder.Cohort(seed: 12);
        members.RemoveAll(m => m.Key == "README.txt");
        members.Add(new("notes.txt", new byte[4000]));
        members.Add(new("late/r9.npy", new byte[100]));
        var tar = ArchiveBuilder.Tar(members);
        var cut = ArchiveBuilder.TarHeaderOffset(members, members.Count - 2) + 512 + 1000;

        var outcome = Read("n.tar", tar[..cut]);

        // The records before the cut are read; the lost tail is reported once, under the archive's name.
        Assert.Equal(records.Count, outcome.Signals.Count);
        Assert.Equal(["n.tar"], outcome.Errors.Keys);
        Assert.Contains("notes.txt", outcome.Errors["n.tar"], StringComparison.Ordinal);
    }

    [Fact]
    public void AContainerInsideAnArchiveIsQuarantined()
    {
        var (members, records) = ArchiveBuilder.Cohort(seed: 13);
        members.Add(new("inner/exams.hdf5", Code15ShardWriter.Write([SyntheticEcg.Generate("e", 1, 400, 10)], [1])));

        var outcome = Read("o.zip", ArchiveBuilder.Zip(members));

        Assert.Equal(records.Count, outcome.Signals.Count);
        Assert.Contains("containers inside an archive are not read", Assert.Single(outcome.Errors).Value, StringComparison.Ordinal);
    }

    [Fact]
    public void AMemberClaimingAHugeSizeIsQuarantinedNotRead()
    {
        var (members, _) = ArchiveBuilder.Cohort(seed: 9);
        members.RemoveAll(m => m.Key == "README.txt");
        var tar = ArchiveBuilder.Tar(members);

        // The last member claims 8 GiB; the archive ends long before.
        ArchiveBuilder.PatchTarSize(tar, ArchiveBuilder.TarHeaderOffset(members, members.Count - 1), 8L << 30);

        var outcome = Read("h.tar", tar);

        Assert.Equal(3, outcome.Signals.Count);
        Assert.Equal(["h.tar", "h.tar/npy/r1"], outcome.Errors.Keys.Order(StringComparer.Ordinal));
        Assert.Contains("claims 8589934592 bytes", outcome.Errors["h.tar/npy/r1"], StringComparison.Ordinal);
    }

    [Fact]
    public void ATruncatedZipIsOneQuarantinedContainer()
    {
        var (members, _) = ArchiveBuilder.Cohort(seed: 10);
        var zip = ArchiveBuilder.Zip(members);
        var path = Path.Combine(_directory, "cut.zip");
        File.WriteAllBytes(path, zip[..(zip.Length / 2)]);

        var e = Assert.Throws<EcgFormatException>(() => Format().Open(path, "cut.zip", Registry, new List<IDisposable>()).ToList());
        Assert.Equal("cut.zip", e.RecordId);
        Assert.Contains("zip", e.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void UnsafeMemberPathsAreQuarantined()
    {
        var (members, records) = ArchiveBuilder.Cohort(seed: 11);
        members.Add(new("../escape/x.npy", new byte[10]));

        var outcome = Read("u.tar", ArchiveBuilder.Tar(members));

        Assert.Equal(records.Count, outcome.Signals.Count);
        Assert.Contains("unsafe", Assert.Single(outcome.Errors).Value, StringComparison.Ordinal);
        Assert.False(Directory.Exists(Path.Combine(_directory, "escape")));
    }

    [Fact]
    public void TheExtractionLimitIsTheLeastOfTheCapTheFreeDiskAndTheArchiveTimesItsExpansion()
    {
        var options = new ArchiveOptions { MaxExtractedBytes = 16L << 30, FreeSpaceFraction = 0.25, MaxExpansion = 100 };
        Assert.Equal((360_000_000L, "100 times the archive's 3,600,000 bytes (Workers:Archives:MaxExpansion)"), options.ExtractionLimit(3_600_000, 40L << 30));
        Assert.Equal((1_000_000L, "0.25 of the 4,000,000 bytes free on the worker's disk (Workers:Archives:FreeSpaceFraction)"), options.ExtractionLimit(3_600_000, 4_000_000));
        Assert.Equal((16L << 30, "Workers:Archives:MaxExtractedBytes"), options.ExtractionLimit(1L << 40, 1L << 50));
        Assert.Equal(0, options.ExtractionLimit(3_600_000, -1).Bytes);
    }

    [Fact]
    public void AZipBombStopsAtTheExtractionLimitAndTheArchiveIsQuarantined()
    {
        // The cohort, then 40 members of 8 MiB of zeros each: 320 MiB from an archive of well under 1 MiB.
        var (members, records) = ArchiveBuilder.Cohort(seed: 12);
        using var output = new MemoryStream();
        using (var zip = new System.IO.Compression.ZipArchive(output, System.IO.Compression.ZipArchiveMode.Create, leaveOpen: true))
        {
            foreach (var (name, bytes) in members)
            {
                using var entry = zip.CreateEntry(name).Open();
                entry.Write(bytes);
            }

            var zeros = new byte[8 << 20];
            for (var i = 0; i < 40; i++)
            {
                using var entry = zip.CreateEntry($"bomb/zeros{i:D2}.dat", System.IO.Compression.CompressionLevel.SmallestSize).Open();
                entry.Write(zeros);
            }
        }

        var archive = output.ToArray();
        Assert.InRange(archive.Length, 1, 1 << 20);
        var path = Path.Combine(_directory, "download.tmp");
        File.WriteAllBytes(path, archive);
        var options = new ArchiveOptions { MaxMemberBytes = 16L << 20 };
        var contained = new ArchiveFormat(options).Open(path, "in/bomb.zip", Registry, new List<IDisposable>()).ToList();

        // What was written stays within 100 times the archive's size (the default expansion limit).
        var written = new DirectoryInfo(path + ".members").EnumerateFiles("*", SearchOption.AllDirectories).Sum(f => f.Length);
        Assert.InRange(written, 1, 100L * archive.Length);
        var bomb = Assert.Single(contained, r => r.RecordId == "in/bomb.zip");
        var reason = Assert.Throws<EcgFormatException>(() => bomb.Load()).Reason;
        Assert.StartsWith($"archive expands to more than {100L * archive.Length:N0} bytes (100 times the archive's {archive.Length:N0} bytes (Workers:Archives:MaxExpansion)); members from 'bomb/zeros", reason, StringComparison.Ordinal);
        Assert.DoesNotContain(_directory, reason, StringComparison.Ordinal);

        // The records before the bomb are read as usual (the bomb's members extracted before the limit are records
        // of their own, without a header).
        var read = contained.Where(r => records.Any(id => r.RecordId == "in/bomb.zip/" + id)).ToList();
        Assert.Equal(records.Count, read.Count);
        Assert.All(read, r => Assert.Equal(12, r.Load().ToStandard12Lead().Leads.Length));
    }

    [Fact]
    public void LinksDevicesAndFifosInATarAreQuarantinedByMemberName()
    {
        var (members, records) = ArchiveBuilder.Cohort(seed: 13);
        using var output = new MemoryStream();
        using (var writer = new System.Formats.Tar.TarWriter(output, System.Formats.Tar.TarEntryFormat.Ustar, leaveOpen: true))
        {
            foreach (var (name, bytes) in members)
            {
                writer.WriteEntry(new System.Formats.Tar.UstarTarEntry(System.Formats.Tar.TarEntryType.RegularFile, name) { DataStream = new MemoryStream(bytes) });
            }

            writer.WriteEntry(new System.Formats.Tar.UstarTarEntry(System.Formats.Tar.TarEntryType.Directory, "links/"));
            writer.WriteEntry(new System.Formats.Tar.UstarTarEntry(System.Formats.Tar.TarEntryType.SymbolicLink, "links/p9.hea") { LinkName = "/etc/passwd" });
            writer.WriteEntry(new System.Formats.Tar.UstarTarEntry(System.Formats.Tar.TarEntryType.HardLink, "links/r1.npy") { LinkName = "npy/r1.npy" });
            writer.WriteEntry(new System.Formats.Tar.UstarTarEntry(System.Formats.Tar.TarEntryType.Fifo, "links/pipe"));
            writer.WriteEntry(new System.Formats.Tar.UstarTarEntry(System.Formats.Tar.TarEntryType.CharacterDevice, "links/null") { DeviceMajor = 1, DeviceMinor = 3 });
            writer.WriteEntry(new System.Formats.Tar.UstarTarEntry(System.Formats.Tar.TarEntryType.BlockDevice, "links/sda") { DeviceMajor = 8, DeviceMinor = 0 });
        }

        var outcome = Read("s.tar", output.ToArray());

        Assert.Equal(records.Select(r => "s.tar/" + r).Order(StringComparer.Ordinal), outcome.Signals.Keys.Order(StringComparer.Ordinal));
        const string Tail = ", not a regular file; links, devices and FIFOs in an archive are not read";
        Assert.Equal(
            new Dictionary<string, string>
            {
                ["s.tar/links/p9.hea"] = "member 'links/p9.hea' is a symbolic link" + Tail,
                ["s.tar/links/r1.npy"] = "member 'links/r1.npy' is a hard link" + Tail,
                ["s.tar/links/pipe"] = "member 'links/pipe' is a FIFO" + Tail,
                ["s.tar/links/null"] = "member 'links/null' is a character device" + Tail,
                ["s.tar/links/sda"] = "member 'links/sda' is a block device" + Tail,
            },
            outcome.Errors);
    }

    private static readonly FormatRegistry Registry = FormatRegistry.Create(new FormatOptions { NpySamplingRate = 500 });

    private static ArchiveFormat Format() => new(new ArchiveOptions { MaxMemberBytes = 16L << 20 });

    private (Dictionary<string, EcgSignal> Signals, Dictionary<string, string> Errors) Read(string blobName, byte[] bytes)
    {
        var path = Path.Combine(_directory, Guid.NewGuid().ToString("N") + Path.GetFileName(blobName));
        File.WriteAllBytes(path, bytes);
        var signals = new Dictionary<string, EcgSignal>(StringComparer.Ordinal);
        var errors = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (recordId, load) in Format().Open(path, blobName, Registry, new List<IDisposable>()))
        {
            try
            {
                signals.Add(recordId, load().ToStandard12Lead());
            }
            catch (EcgFormatException e)
            {
                Assert.Equal(recordId, e.RecordId);
                errors.Add(recordId, e.Reason);
            }
        }

        return (signals, errors);
    }
}
