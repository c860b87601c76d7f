using HubertEcg.Inference.Ecg;
using HubertEcg.Inference.Formats;
using HubertEcg.Inference.IO;
using HubertEcg.Inference.Preprocessing;
using HubertEcg.Inference.Tests.Preprocessing;
using HubertEcg.Testing;

namespace HubertEcg.Inference.Tests.Formats.Clinical;

/// <summary>
/// The clinical samples in <c>../shared/ecg-samples/clinical</c> and their reference readings in
/// <c>../shared/golden/clinical/&lt;name&gt;</c>: <c>raw.npy</c> (12 x N, mV, standard order, the first 10 s) and the
/// preprocessing goldens of both profiles.
/// </summary>
public static class ClinicalGoldens
{
    /// <summary>Largest difference allowed between a reading and <c>raw.npy</c> (mV).</summary>
    public const double RawTolerance = 1e-9;

    /// <summary>The path of a clinical sample, e.g. <c>Sample("dicom", "ECGToolkit_Example.dcm")</c>.</summary>
    public static string Sample(string folder, string file) => RepoPaths.SharedFile("ecg-samples", "clinical", folder, file);

    /// <summary>The reference reading of golden <paramref name="name"/> (e.g. <c>dicom_ECGToolkit_Example</c>) as a signal in standard order.</summary>
    public static EcgSignal Raw(string name)
    {
        var raw = Npy.Read(RepoPaths.SharedFile("golden", "clinical", name, "raw.npy"));
        Assert.Equal(2, raw.Shape.Length);
        Assert.Equal(12, raw.Shape[0]);
        var n = raw.Shape[1];
        var leads = new double[12][];
        for (var i = 0; i < 12; i++)
        {
            leads[i] = raw.Data.AsSpan(i * n, n).ToArray();
        }

        return new EcgSignal(name, 500, StandardLeads.Names, leads);
    }

    /// <summary>
    /// Reads <paramref name="samplePath"/> through the format registry (as <c>ecg inspect</c> and a worker do) and
    /// checks its 12 standard leads against golden <paramref name="name"/>: every sample within
    /// <see cref="RawTolerance"/>, and preprocessing under both profiles within the preprocessing tolerances.
    /// Returns the record read.
    /// </summary>
    public static EcgRecord AssertReadsToGolden(string samplePath, string name)
    {
        var record = FormatRegistry.Default.Load(samplePath);
        var signal = record.ToStandard12Lead();
        Assert.Equal(StandardLeads.Names, signal.LeadNames);
        Assert.Equal(500, signal.SamplingRate);
        AssertSameSignal(Raw(name), signal, RawTolerance, name);
        foreach (var profile in PreprocessingProfiles.Names)
        {
            PreprocessingParityTests.AssertMatchesGoldenIn(signal, RepoPaths.SharedFile("golden", "clinical", name, profile), name, profile);
        }

        return record;
    }

    /// <summary>Same leads, same length, every sample within <paramref name="tolerance"/> (mV).</summary>
    public static void AssertSameSignal(EcgSignal expected, EcgSignal actual, double tolerance, string what)
    {
        Assert.Equal(expected.LeadNames, actual.LeadNames);
        Assert.Equal(expected.SampleCount, actual.SampleCount);
        for (var lead = 0; lead < expected.Leads.Length; lead++)
        {
            for (var t = 0; t < expected.SampleCount; t++)
            {
                var difference = Math.Abs(expected.Leads[lead][t] - actual.Leads[lead][t]);
                Assert.True(
                    difference <= tolerance,
                    $"{what}: lead {expected.LeadNames[lead]} sample {t}: expected {expected.Leads[lead][t]:R}, read {actual.Leads[lead][t]:R}");
            }
        }
    }
}
