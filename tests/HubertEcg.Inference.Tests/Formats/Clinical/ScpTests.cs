using HubertEcg.Inference.Ecg;
using HubertEcg.Inference.Formats;
using HubertEcg.Inference.Formats.Scp;

namespace HubertEcg.Inference.Tests.Formats.Clinical;

/// <summary>SCP-ECG: the shared sample against its golden, the writer's every option read back, and bad input.</summary>
public sealed class ScpTests
{
    private static string SamplePath => ClinicalGoldens.Sample("scp", "ECGToolkit_Example.scp");

    [Fact]
    public void SampleReadsToItsGolden()
    {
        var record = ClinicalGoldens.AssertReadsToGolden(SamplePath, "scp_ECGToolkit_Example");
        Assert.Equal("scp", record.Format);
        Assert.Equal(["I", "II", "V1", "V2", "V3", "V4", "V5", "V6", "III", "aVR", "aVL", "aVF"], record.Signal.LeadNames);
        Assert.Equal(5000, record.Signal.SampleCount);
        Assert.Equal("SCP-ECG 2.0", record.Description.Version);
    }
}
