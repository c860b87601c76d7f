using HubertEcg.Inference.Ecg;
using HubertEcg.Inference.Formats;
using HubertEcg.Inference.Formats.Hdf5;
using PureHDF;

namespace HubertEcg.Inference.Tests.Ecg;

/// <summary>HDF5 shards in the CODE-15% layout, written here with PureHDF.</summary>
public sealed class Hdf5ShardReaderTests : IDisposable
{
    private const int Exams = 5;
    private const int Samples = 4096;
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("hdf5-shard");

    public void Dispose() => _dir.Delete(recursive: true);

    private static float Value(int exam, int t, int lead) => (exam * 1000) + (lead * 10) + ((t % 97) * 0.01f);

    private static float[,,] Tracings(int exams)
    {
        var data = new float[exams, Samples, 12];
        for (var e = 0; e < exams; e++)
        {
            for (var t = 0; t < Samples; t++)
            {
                for (var l = 0; l < 12; l++)
                {
                    data[e, t, l] = Value(e, t, l);
                }
            }
        }

        return data;
    }

    private string WriteCode15(string name)
    {
        var path = Path.Combine(_dir.FullName, name);
        var file = new H5File
        {
            ["tracings"] = Tracings(Exams),
            ["exam_id"] = new long[] { 1169160, 2873686, 168405, 271011, 384368 },
        };
        file.Write(path);
        return path;
    }

    [Fact]
    public void ReadsExamByExamWithIds()
    {
        var path = WriteCode15("exams_part0.hdf5");
        using var shard = Hdf5ShardReader.Open(path);
        Assert.Equal(Exams, shard.ExamCount);
        Assert.Equal(Samples, shard.SamplesPerExam);
        Assert.Equal(12, shard.LeadCount);
        Assert.Equal([1169160L, 2873686, 168405, 271011, 384368], shard.ExamIds()!);
        foreach (var exam in new[] { 3, 0, 4 })
        {
            var signal = shard.ReadExam(exam);
            Assert.Equal(400, signal.SamplingRate);
            Assert.Equal(StandardLeads.Names, signal.LeadNames);
            Assert.Equal(shard.ExamId(exam)!.Value.ToString(System.Globalization.CultureInfo.InvariantCulture), signal.Metadata["exam_id"]);
            foreach (var (t, l) in new[] { (0, 0), (1, 5), (4095, 11), (2000, 7) })
            {
                Assert.Equal(Value(exam, t, l), signal.Leads[l][t]);
            }
        }
    }

    [Fact]
    public void ReadsFromAStreamAndThroughTheLoader()
    {
        var path = WriteCode15("exams_part1.hdf5");
        using (var stream = new MemoryStream(File.ReadAllBytes(path)))
        using (var shard = Hdf5ShardReader.Open(stream, "blob://exams_part1.hdf5"))
        {
            var record = Hdf5Format.LoadExam(shard, 2, "exams_part1.hdf5");
            Assert.Equal("hdf5", record.Format);
            Assert.Equal(Value(2, 10, 3), record.ToStandard12Lead().Leads[3][10]);
            Assert.Contains("exam 168405", record.RecordId, StringComparison.Ordinal);
        }

        var loaded = FormatRegistry.Default.Load(path + "#1", samplingRate: 500);
        Assert.Equal(500, loaded.Signal.SamplingRate);
        Assert.Equal(Value(1, 100, 9), loaded.Signal.Leads[9][100]);
    }

    [Fact]
    public void ShardsWithoutIdsAndWithOtherNamesAndLeadOrders()
    {
        var path = Path.Combine(_dir.FullName, "samitrop.h5");
        new H5File { ["tracings"] = Tracings(2) }.Write(path);
        Assert.Throws<EcgFormatException>(() => Hdf5ShardReader.Open(path));
        using (var shard = Hdf5ShardReader.Open(path, new Hdf5ShardOptions { ExamIdDataset = null }))
        {
            Assert.False(shard.HasExamIds);
            Assert.Null(shard.ExamIds());
            Assert.Null(shard.ExamId(1));
            Assert.Equal(Value(1, 7, 2), shard.ReadExam(1).Leads[2][7]);
        }

        var renamed = Path.Combine(_dir.FullName, "other.h5");
        new H5File { ["ecg"] = Tracings(1), ["ids"] = new int[] { 42 } }.Write(renamed);
        string[] reversed = ["V6", "V5", "V4", "V3", "V2", "V1", "aVF", "aVL", "aVR", "III", "II", "I"];
        using var other = Hdf5ShardReader.Open(renamed, new Hdf5ShardOptions { TracingsDataset = "ecg", ExamIdDataset = "ids", SamplingRate = 500, LeadNames = reversed, ScaleToMillivolts = 0.5 });
        Assert.Equal(42, other.ExamId(0));
        var record = Hdf5Format.LoadExam(other, 0, "other.h5").ToStandard12Lead();
        Assert.Equal(Value(0, 3, 11) * 0.5, record.Leads[0][3], 5); // stored lead 11 is I
    }

    [Fact]
    public void ZeroPaddingCanBeTrimmed()
    {
        var data = new float[2, 100, 12];
        for (var t = 20; t < 90; t++)
        {
            data[0, t, t % 12] = t;
        }

        var path = Path.Combine(_dir.FullName, "padded.hdf5");
        new H5File { ["tracings"] = data, ["exam_id"] = new long[] { 1, 2 } }.Write(path);
        using (var kept = Hdf5ShardReader.Open(path))
        {
            Assert.Equal(100, kept.ReadExam(0).SampleCount);
        }

        using var trimmed = Hdf5ShardReader.Open(path, new Hdf5ShardOptions { TrimZeroPadding = true });
        var signal = trimmed.ReadExam(0);
        Assert.Equal(70, signal.SampleCount);
        Assert.Equal(20, signal.Leads[8][0]);
        Assert.Equal(89, signal.Leads[89 % 12][69]);
        Assert.Contains("every sample", Assert.Throws<EcgFormatException>(() => trimmed.ReadExam(1)).Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void BadShardsAreTypedErrors()
    {
        var notHdf5 = Path.Combine(_dir.FullName, "junk.hdf5");
        File.WriteAllBytes(notHdf5, new byte[1024]);
        Assert.Throws<EcgFormatException>(() => Hdf5ShardReader.Open(notHdf5));
        var empty = Path.Combine(_dir.FullName, "empty.hdf5");
        File.WriteAllBytes(empty, []);
        Assert.Throws<EcgFormatException>(() => Hdf5ShardReader.Open(empty));
        var path = WriteCode15("exams_part2.hdf5");
        using var shard = Hdf5ShardReader.Open(path);
        Assert.Throws<EcgFormatException>(() => shard.ReadExam(Exams));
        Assert.Throws<EcgFormatException>(() => shard.ReadExam(-1));
        Assert.Throws<EcgFormatException>(() => Hdf5ShardReader.Open(path, new Hdf5ShardOptions { LeadNames = ["I", "II"] }));
        Assert.Throws<EcgFormatException>(() => Hdf5ShardReader.Open(path, new Hdf5ShardOptions { TracingsDataset = "missing" }));
        Assert.Throws<EcgFormatException>(() => Hdf5ShardReader.Open(path, new Hdf5ShardOptions { SamplingRate = 0 }));

        var truncated = Path.Combine(_dir.FullName, "truncated.hdf5");
        var bytes = File.ReadAllBytes(path);
        File.WriteAllBytes(truncated, bytes[..(bytes.Length / 2)]);
        var e = Record.Exception(() =>
        {
            using var t = Hdf5ShardReader.Open(truncated);
            for (var i = 0; i < t.ExamCount; i++)
            {
                t.ReadExam(i);
            }
        });
        Assert.IsType<EcgFormatException>(e);
    }

    [Theory]
    [InlineData(1UL, 20_000_000UL, "dataset 'tracings' claims 1 exams of 20,000,000 samples x 12 leads: each exam is longer than the 1,048,576 samples an exam may have (Workers:Hdf5:MaxSamplesPerExam)")]
    [InlineData(2_147_483_647UL, 4096UL, "dataset 'tracings' claims 2,147,483,647 exams of 4,096 samples x 12 leads: more than the 1,048,576 exams a shard may hold (Workers:Hdf5:MaxExams)")]
    [InlineData(1_000_000UL, 4096UL, "dataset 'tracings' claims 1,000,000 exams of 4,096 samples x 12 leads (196,608,000,000 bytes of samples) in a file of ")]
    public void AShardClaimingMoreThanItHoldsIsRefusedNamingTheBlobBeforeAnythingIsAllocated(ulong exams, ulong samples, string reason)
    {
        var bytes = HubertEcg.Testing.HostileHdf5.Claiming(exams, samples);
        Assert.InRange(bytes.Length, 1, 4 << 20);

        // Downloaded to a worker's temporary file: the reason and the record id name the blob, never that path.
        var local = Path.Combine(_dir.FullName, "download-7f3a.tmp");
        File.WriteAllBytes(local, bytes);
        var resources = new List<IDisposable>();
        var before = GC.GetAllocatedBytesForCurrentThread();
        var e = Assert.Throws<EcgFormatException>(() => FormatRegistry.Default.OpenContainer(local, "hostile/exams_part9.hdf5", resources).ToList());
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Equal("hostile/exams_part9.hdf5", e.RecordId);
        Assert.StartsWith(reason, e.Reason, StringComparison.Ordinal);
        Assert.DoesNotContain(_dir.FullName, e.Message, StringComparison.Ordinal);
        Assert.InRange(allocated, 0, 16L << 20);
        Assert.Empty(resources);
    }

    [Fact]
    public void AnUnreadableShardOpenedFromADownloadIsNamedByItsBlob()
    {
        var local = Path.Combine(_dir.FullName, "download-91c2.tmp");
        File.WriteAllBytes(local, new byte[2048]);
        var e = Assert.Throws<EcgFormatException>(() => FormatRegistry.Default.OpenContainer(local, "hostile/junk.hdf5", []).ToList());
        Assert.Equal("hostile/junk.hdf5", e.RecordId);
        Assert.DoesNotContain(_dir.FullName, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ARealShardWithinTheBoundsStillOpens()
    {
        var path = WriteCode15("exams_part3.hdf5");
        using var shard = Hdf5ShardReader.Open(path, new Hdf5ShardOptions { MaxExams = Exams, MaxSamplesPerExam = Samples, MaxExpansion = 2 });
        Assert.Equal((Exams, Samples), (shard.ExamCount, shard.SamplesPerExam));
        Assert.Throws<EcgFormatException>(() => Hdf5ShardReader.Open(path, new Hdf5ShardOptions { MaxExams = Exams - 1 }));
        Assert.Throws<EcgFormatException>(() => Hdf5ShardReader.Open(path, new Hdf5ShardOptions { MaxSamplesPerExam = Samples - 1 }));
    }
}
