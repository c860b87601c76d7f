using HubertEcg.Inference.Ecg;
using HubertEcg.Inference.Formats;
using HubertEcg.Inference.Preprocessing;
using HubertEcg.Testing;

namespace HubertEcg.Inference.Tests.Preprocessing;

/// <summary>
/// Parity starting from the real record files (WFDB readers + lead mapping + preprocessing), not from raw.npy:
/// the whole path a scored record takes must reproduce the golden arrays.
/// </summary>
public sealed class RecordFileParityTests
{
    public static TheoryData<string, string, string> Cases()
    {
        var data = new TheoryData<string, string, string>();
        foreach (var profile in PreprocessingProfiles.Names)
        {
            data.Add("00001_lr", Path.Combine("ptb-xl", "00001_lr.hea"), profile);
            data.Add("s0010_re", Path.Combine("wfdb", "s0010_re.hea"), profile);
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void RecordFileMatchesGolden(string golden, string recordFile, string profile)
    {
        var record = FormatRegistry.Default.Load(RepoPaths.SharedFile("ecg-samples", recordFile));
        var signal = record.ToStandard12Lead();
        Assert.Equal(StandardLeads.Names, signal.LeadNames);
        PreprocessingParityTests.AssertMatchesGolden(signal, golden, profile);
    }
}
