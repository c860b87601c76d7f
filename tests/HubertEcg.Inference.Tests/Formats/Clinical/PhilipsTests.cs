using HubertEcg.Inference.Ecg;
using HubertEcg.Inference.Formats;
using HubertEcg.Inference.Formats.Philips;

namespace HubertEcg.Inference.Tests.Formats.Clinical;

/// <summary>The Philips XML reader on the shared samples (against sierraecg's readings) and on files its writer makes.</summary>
public sealed class PhilipsTests
{
    [Fact]
    public void Version103SampleReadsToItsGolden()
    {
        var record = ClinicalGoldens.AssertReadsToGolden(ClinicalGoldens.Sample("philips", "129DYPRG_1-03.XML"), "philips_129DYPRG_1-03");
        Assert.Equal("philips", record.Format);
        Assert.Equal("SierraECG 1.03", record.Description.Version);
        Assert.Equal("HeartstartMRx", record.Description.Device);
        Assert.Contains("0.05-150 Hz", record.Description.Filters, StringComparison.Ordinal);
        Assert.Equal(StandardLeads.Names, record.Signal.LeadNames);
        Assert.Equal(5000, record.Signal.SampleCount);
    }

    [Fact]
    public void Version104Utf16SampleReadsToItsGolden()
    {
        var record = ClinicalGoldens.AssertReadsToGolden(ClinicalGoldens.Sample("philips", "3191723_ZZDEMOPTONLY_1-04_orig.xml"), "philips_3191723_1-04");
        Assert.Equal("PhilipsECG 1.04", record.Description.Version);
        Assert.Equal("PageWriter Touch (Philips Medical Products:860315:A.01.01.01)", record.Description.Device);
        Assert.Contains("0.05-150 Hz", record.Description.Filters, StringComparison.Ordinal);
        Assert.Equal(5000, record.Signal.SampleCount);
    }
}
