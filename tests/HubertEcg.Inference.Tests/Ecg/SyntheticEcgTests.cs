using HubertEcg.Inference.Ecg;
using HubertEcg.Inference.Ecg.Synthetic;
using HubertEcg.Inference.Formats.Hdf5;
using HubertEcg.Inference.Formats.Wfdb;

namespace HubertEcg.Inference.Tests.Ecg;

/// <summary>The demo cohort's writers produce records the project's own readers read back to the same signal.</summary>
public sealed class SyntheticEcgTests
{
    private static void AssertClose(EcgSignal expected, EcgSignal actual, double tolerance)
    {
        Assert.Equal(StandardLeads.Names, actual.LeadNames);
        Assert.Equal(expected.SamplingRate, actual.SamplingRate);
        Assert.Equal(expected.SampleCount, actual.SampleCount);
        for (var l = 0; l < 12; l++)
        {
            for (var i = 0; i < expected.SampleCount; i++)
            {
                Assert.InRange(actual.Leads[l][i] - expected.Leads[l][i], -tolerance, tolerance);
            }
        }
    }

    [Theory]
    [InlineData(16, 500.0)]
    [InlineData(212, 100.0)]
    public void WfdbRecordsReadBack(int format, double rate)
    {
        var signal = SyntheticEcg.Generate("r1", 7, rate, 10);
        var files = WfdbWriter.Write(signal, "r1", format, gain: 200);
        var record = WfdbFormat.Load(new InMemoryRecordFileSource(files), "r1");
        Assert.Empty(record.Warnings);
        AssertClose(signal, record.ToStandard12Lead(), 0.5 / 200 + 1e-12);
    }

    [Fact]
    public void ChallengeMatRecordReadsBack()
    {
        var signal = SyntheticEcg.Generate("A0001", 3, 500, 10);
        var files = WfdbWriter.WriteChallengeMat(signal, "A0001");
        var record = WfdbFormat.Load(new InMemoryRecordFileSource(files), "A0001");
        Assert.Empty(record.Warnings);
        AssertClose(signal, record.ToStandard12Lead(), 0.5 / 1000 + 1e-12);
    }

    [Fact]
    public void Code15ShardReadsBackExamByExam()
    {
        var exams = Enumerable.Range(0, 3).Select(i => SyntheticEcg.Generate($"e{i}", i, 400, 4096 / 400.0)).ToArray();
        var bytes = Code15ShardWriter.Write(exams, [11, 22, 33]);
        using var shard = Hdf5ShardReader.Open(new MemoryStream(bytes), "shard.hdf5");
        Assert.Equal(3, shard.ExamCount);
        for (var i = 0; i < 3; i++)
        {
            Assert.Equal(new long[] { 11, 22, 33 }[i], shard.ExamId(i));
            var record = Hdf5Format.LoadExam(shard, i, "shard.hdf5");
            AssertClose(exams[i], record.ToStandard12Lead(), 1e-6);
        }
    }

    [Fact]
    public void SameSeedSameSignal()
    {
        var a = SyntheticEcg.Generate("a", 5, 500, 5);
        var b = SyntheticEcg.Generate("b", 5, 500, 5);
        var c = SyntheticEcg.Generate("c", 6, 500, 5);
        Assert.Equal(a.Leads[3], b.Leads[3]);
        Assert.NotEqual(a.Leads[3], c.Leads[3]);
    }
}
