using HubertEcg.Inference.Ecg;

namespace HubertEcg.Inference.Tests.Ecg;

public sealed class LeadMappingTests
{
    [Theory]
    [InlineData("I", "I")]
    [InlineData("ii", "II")]
    [InlineData("DIII", "III")]
    [InlineData("D2", "II")]
    [InlineData("AVR", "aVR")]
    [InlineData("avl", "aVL")]
    [InlineData("aVF", "aVF")]
    [InlineData("Lead V1", "V1")]
    [InlineData("ECG V6", "V6")]
    [InlineData("C3", "V3")]
    [InlineData("lead_aVR", "aVR")]
    [InlineData("MLII", null)]
    [InlineData("ECG 1", null)]
    [InlineData("PLETH", null)]
    [InlineData("vx", null)]
    public void NamesMapCaseInsensitively(string name, string? expected) => Assert.Equal(expected, LeadMapping.StandardName(name));

    [Fact]
    public void ReordersAndIgnoresExtraChannels()
    {
        string[] names = ["V6", "PLETH", "V5", "V4", "V3", "V2", "V1", "AVF", "AVL", "AVR", "III", "II", "I"];
        var leads = names.Select((_, k) => new double[] { k, k + 0.5 }).ToArray();
        var mapped = LeadMapping.ToStandard12(new EcgSignal("r", 500, names, leads));
        Assert.Equal(StandardLeads.Names, mapped.LeadNames);
        Assert.Equal([12.0, 12.5], mapped.Leads[0]); // I was channel 12
        Assert.Equal([0.0, 0.5], mapped.Leads[11]); // V6 was channel 0
        Assert.Equal(500, mapped.SamplingRate);
    }

    [Fact]
    public void DerivesTheLimbLeadsFromIAndII()
    {
        string[] names = ["I", "II", "V1", "V2", "V3", "V4", "V5", "V6"];
        var leads = names.Select((_, k) => new double[] { k + 1.0, -(k + 1.0) }).ToArray();
        leads[0] = [1.0, 0.4];
        leads[1] = [3.0, -0.2];
        var mapped = LeadMapping.ToStandard12(new EcgSignal("r", 500, names, leads));
        Assert.Equal([2.0, -0.6000000000000001], mapped.Leads[2]); // III = II - I
        Assert.Equal([-2.0, -0.1], mapped.Leads[3]); // aVR = -(I + II) / 2
        Assert.Equal([-0.5, 0.5], mapped.Leads[4]); // aVL = I - II / 2
        Assert.Equal([2.5, -0.4], mapped.Leads[5]); // aVF = II - I / 2
        Assert.Equal(leads[2], mapped.Leads[6]);
    }

    [Fact]
    public void AMissingLeadIsNamed()
    {
        string[] names = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V4", "V5", "V6"];
        var leads = names.Select(_ => new double[] { 1 }).ToArray();
        var e = Assert.Throws<EcgFormatException>(() => LeadMapping.ToStandard12(new EcgSignal("rec7", 500, names, leads)));
        Assert.Equal("rec7", e.RecordId);
        Assert.Contains("missing lead V3", e.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void WithoutLeadIINothingIsDerived()
    {
        string[] names = ["I", "V1", "V2", "V3", "V4", "V5", "V6"];
        var e = Assert.Throws<EcgFormatException>(() => LeadMapping.ToStandard12(new EcgSignal("r", 500, names, names.Select(_ => new double[] { 1 }).ToArray())));
        Assert.Contains("II, III, aVR, aVL, aVF", e.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void DuplicateLeadsNonVoltageUnitsInfinitiesAndEmptyLeadsAreRejected()
    {
        var names = StandardLeads.Names.ToList();
        double[][] Leads() => names.Select(_ => new double[] { 1, 2 }).ToArray();

        var duplicate = names.Append("ii").ToList();
        var dupLeads = duplicate.Select(_ => new double[] { 1, 2 }).ToArray();
        Assert.Contains("appears twice", Assert.Throws<EcgFormatException>(() => LeadMapping.ToStandard12(new EcgSignal("r", 500, duplicate, dupLeads))).Reason, StringComparison.Ordinal);

        var units = names.Select(_ => "mV").ToList();
        units[4] = "mmHg";
        Assert.Contains("lead aVL", Assert.Throws<EcgFormatException>(() => LeadMapping.ToStandard12(new EcgSignal("r", 500, names, Leads()), units)).Reason, StringComparison.Ordinal);

        var infinite = Leads();
        infinite[7][1] = double.PositiveInfinity;
        Assert.Contains("lead V2 sample 1 is infinite", Assert.Throws<EcgFormatException>(() => LeadMapping.ToStandard12(new EcgSignal("r", 500, names, infinite))).Reason, StringComparison.Ordinal);

        var allNaN = Leads();
        allNaN[9] = [double.NaN, double.NaN];
        Assert.Contains("lead V4 has no valid samples", Assert.Throws<EcgFormatException>(() => LeadMapping.ToStandard12(new EcgSignal("r", 500, names, allNaN))).Reason, StringComparison.Ordinal);

        Assert.Contains("sampling rate", Assert.Throws<EcgFormatException>(() => LeadMapping.ToStandard12(new EcgSignal("r", 0, names, Leads()))).Reason, StringComparison.Ordinal);
        Assert.Contains("no samples", Assert.Throws<EcgFormatException>(() => LeadMapping.ToStandard12(new EcgSignal("r", 500, names, names.Select(_ => Array.Empty<double>()).ToArray()))).Reason, StringComparison.Ordinal);
    }
}
