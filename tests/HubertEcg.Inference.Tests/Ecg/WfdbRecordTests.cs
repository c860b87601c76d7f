using HubertEcg.Inference.Ecg;
using HubertEcg.Inference.Formats.Wfdb;
using static HubertEcg.Inference.Tests.Ecg.WfdbTestFiles;

namespace HubertEcg.Inference.Tests.Ecg;

/// <summary>Header grammar and reader features beyond the rdsamp conformance cases, on records built in memory.</summary>
public sealed class WfdbRecordTests
{
    [Fact]
    public void RecordLineWithCounterFrequencyBaseTimeAndDate()
    {
        var header = WfdbHeader.Parse("# leading comment\nrec 1 360/720(12.5) 2 13:05:07.250 24/11/2026\n# middle\nrec.dat 16 200 16 0 0 0 0 x\n# trailing\n", "rec");
        Assert.Equal("rec", header.RecordName);
        Assert.Equal(360, header.SamplingFrequency);
        Assert.Equal(720, header.CounterFrequency);
        Assert.Equal(12.5, header.BaseCounterValue);
        Assert.Equal(2, header.SampleCount);
        Assert.Equal(new TimeSpan(0, 13, 5, 7, 250), header.BaseTime);
        Assert.Equal(new DateOnly(2026, 11, 24), header.BaseDate);
        Assert.Equal(["leading comment", "middle", "trailing"], header.Comments);
    }

    [Fact]
    public void MissingFieldsTakeTheSpecificationDefaults()
    {
        var header = WfdbHeader.Parse("rec 2\nrec.dat 212\nrec.dat 212 100(7)/uV\n", "rec");
        Assert.Equal(250, header.SamplingFrequency);
        Assert.Equal(250, header.CounterFrequency);
        Assert.Equal(0, header.SampleCount);
        var first = header.Signals[0];
        Assert.Equal(0, first.Gain);
        Assert.False(first.IsCalibrated);
        Assert.Equal(WfdbSignalSpec.DefaultGain, first.EffectiveGain);
        Assert.Equal("mV", first.Units);
        Assert.Equal(12, first.AdcResolution); // format 212's default, and WFDB's default for formats that imply none
        Assert.Equal(0, first.AdcZero);
        Assert.Equal(0, first.Baseline);
        Assert.Equal(0, first.InitialValue);
        Assert.Null(first.Checksum);
        Assert.Equal(0, first.BlockSize);
        Assert.Equal("record rec, signal 0", first.Description);
        var second = header.Signals[1];
        Assert.Equal(100, second.Gain);
        Assert.Equal(7, second.Baseline);
        Assert.Equal("uV", second.Units);
        Assert.Equal("record rec, signal 1", second.Description);
    }

    [Fact]
    public void FormatFieldCarriesSamplesPerFrameSkewAndByteOffset()
    {
        var header = WfdbHeader.Parse("rec 1 100 10\nrec.dat 16x4:6+32 50(-3)/V 12 5 9 1234 0 lead with spaces  \n", "rec");
        var s = header.Signals[0];
        Assert.Equal(16, s.Format);
        Assert.Equal(4, s.SamplesPerFrame);
        Assert.Equal(2, s.Skew); // 6 samples rounded to frames of 4
        Assert.Equal(32, s.ByteOffset);
        Assert.Equal(-3, s.Baseline);
        Assert.Equal(5, s.AdcZero);
        Assert.Equal(9, s.InitialValue);
        Assert.Equal(1234, s.Checksum);
        Assert.Equal("lead with spaces", s.Description);
    }

    [Fact]
    public void SamplesPerFrameAreAveragedOrKeptAtHighResolution()
    {
        // Signal 0: 2 samples per frame; signal 1: 1 sample per frame. Frames: [1,2 | 10], [3,6 | 20], [-3,-4 | 30].
        var source = Source(
            ("r.hea", Text("r 2 100 3\nr.dat 16x2 1 16 0 0 0 0 fast\nr.dat 16 1 16 0 0 0 0 slow\n")),
            ("r.dat", Format16([1, 2, 10], [3, 6, 20], [-3, -4, 30])));
        var record = WfdbRecord.Open(source, "r");
        var frame = record.ReadDigital();
        Assert.Equal([1, 4, -3], frame[0]); // getvec's integer mean truncates toward zero: 1.5 -> 1, 4.5 -> 4, -3.5 -> -3
        Assert.Equal([10, 20, 30], frame[1]);
        var high = record.ReadDigital(resolution: WfdbResolution.High);
        Assert.Equal([1, 2, 3, 6, -3, -4], high[0]);
        Assert.Equal([10, 10, 20, 20, 30, 30], high[1]);
        Assert.Equal(100, record.ToEcgSignal().SamplingRate);

        // Three samples per frame: -5/3 -> -1 and 5/3 -> 1 (truncated toward zero, as rdsamp and wfdb-python give them),
        // where rounding to nearest would give -2 and 2.
        var three = WfdbRecord.Open(
            Source(("t.hea", Text("t 1 100 3\nt.dat 16x3 1 16 0 0 0 0 x\n")), ("t.dat", Format16([-2, -2, -1], [2, 2, 1], [0, 0, -1]))), "t");
        Assert.Equal([-1, 1, 0], three.ReadDigital()[0]);
    }

    [Fact]
    public void UniformSamplesPerFrameRaiseTheSignalRate()
    {
        var source = Source(
            ("r.hea", Text("r 1 250 2\nr.dat 16x2 1 16 0 0 0 0 x\n")),
            ("r.dat", Format16([1, 2], [3, 4])));
        var signal = WfdbRecord.Open(source, "r").ToEcgSignal();
        Assert.Equal(500, signal.SamplingRate);
        Assert.Equal([1.0, 2, 3, 4], signal.Leads[0]);
    }

    [Fact]
    public void SkewDelaysASignalAndPadsItsEndWithInvalidSamples()
    {
        var source = Source(
            ("r.hea", Text("r 2 100 3\nr.dat 16 1 16 0 0 0 0 a\nr.dat 16:1 1 16 0 0 0 0 b\n")),
            ("r.dat", Format16([1, 100], [2, 200], [3, 300])));
        var record = WfdbRecord.Open(source, "r");
        var digital = record.ReadDigital();
        Assert.Equal([1, 2, 3], digital[0]);
        Assert.Equal([200, 300, WfdbSignalFormats.InvalidSample], digital[1]);
        var physical = record.ReadPhysical(1, 3, [1]);
        Assert.Equal(300, physical[0][0]);
        Assert.True(double.IsNaN(physical[0][1]));
    }

    [Fact]
    public void InvalidSamplesBecomeNaN()
    {
        var source = Source(
            ("r.hea", Text("r 1 100 3\nr.dat 16 10 16 0 0 0 0 x\n")),
            ("r.dat", Format16([5], [-32768], [15])));
        var record = WfdbRecord.Open(source, "r");
        var physical = record.ReadPhysical()[0];
        Assert.Equal(0.5, physical[0]);
        Assert.True(double.IsNaN(physical[1]));
        Assert.Equal(1.5, physical[2]);
        Assert.Equal(WfdbSignalFormats.InvalidSample, record.ReadDigital()[0][1]);
        using var text = new StringWriter();
        SampleText.WritePhysical(text, [physical]);
        Assert.Equal("     0.50000000\n            NaN\n     1.50000000\n", text.ToString());
    }

    [Fact]
    public void ChecksumMismatchIsAWarningNotAFailure()
    {
        // Sum of samples is 6; the header claims 7.
        var source = Source(
            ("r.hea", Text("r 1 100 3\nr.dat 16 1 16 0 0 7 0 x\n")),
            ("r.dat", Format16([1], [2], [3])));
        var record = WfdbRecord.Open(source, "r");
        Assert.Equal([1, 2, 3], record.ReadDigital()[0]);
        var warning = Assert.Single(record.Warnings);
        Assert.Contains("checksum", warning, StringComparison.Ordinal);

        var good = WfdbRecord.Open(Source(("r.hea", Text("r 1 100 3\nr.dat 16 1 16 0 0 6 0 x\n")), ("r.dat", Format16([1], [2], [3]))), "r");
        good.ReadDigital();
        Assert.Empty(good.Warnings);
    }

    [Theory]
    [InlineData("uV", 0.001, 1.0)]
    [InlineData("mV", 1.0, 1.0)]
    [InlineData("V", 1000.0, 1.0)]
    [InlineData("nV", 1e-6, 1.0)]
    public void VoltageUnitsAreConvertedToMillivolts(string units, double gain, double expectedMv)
    {
        var source = Source(
            ("r.hea", Text($"r 1 100 1\nr.dat 16 {gain.ToString("R", System.Globalization.CultureInfo.InvariantCulture)}/{units} 16 0 0 0 0 I\n")),
            ("r.dat", Format16([1])));
        var loaded = WfdbFormat.Load(source, "r");
        Assert.Equal(expectedMv, loaded.Signal.Leads[0][0], 12);
        Assert.Equal("mV", loaded.Units[0]);
        Assert.Equal(units, loaded.SourceUnits[0]);
    }

    [Fact]
    public void FixedLayoutMultiSegmentRecordWithANullSegment()
    {
        var source = Source(
            ("m.hea", Text("m/3 2 100 7\ns1 3\n~ 2\ns2 2\n")),
            ("s1.hea", Text("s1 2 100 3\ns1.dat 16 10 16 0 0 0 0 a\ns1.dat 16 10 16 0 0 0 0 b\n")),
            ("s1.dat", Format16([1, 10], [2, 20], [3, 30])),
            ("s2.hea", Text("s2 2 100 2\ns2.dat 16 10 16 0 0 0 0 a\ns2.dat 16 10 16 0 0 0 0 b\n")),
            ("s2.dat", Format16([4, 40], [5, 50])));
        var record = WfdbRecord.Open(source, "m");
        Assert.True(record.Header.IsMultiSegment);
        Assert.Equal(7, record.SampleCount);
        const int X = WfdbSignalFormats.InvalidSample;
        Assert.Equal([1, 2, 3, X, X, 4, 5], record.ReadDigital()[0]);
        Assert.Equal([20, 30, X, X, 40], record.ReadDigital(1, 6, [1])[0]);
        var physical = record.ReadPhysical(2, 6, [0])[0];
        Assert.Equal(0.3, physical[0], 12);
        Assert.True(double.IsNaN(physical[1]) && double.IsNaN(physical[2]));
        Assert.Equal(0.4, physical[3], 12);
    }

    [Fact]
    public void VariableLayoutMapsSignalsByNameAndRescalesToTheLayoutGain()
    {
        // Layout: II at gain 200, V1 at gain 100. Segment 1 has II only (gain 100); segment 2 has V1 and II (II at gain 400, baseline 8).
        var source = Source(
            ("v.hea", Text("v/3 2 100 4\nv_layout 0\nseg1 2\nseg2 2\n")),
            ("v_layout.hea", Text("v_layout 2 100 0\n~ 0 200 16 0 0 0 0 II\n~ 0 100 16 0 0 0 0 V1\n")),
            ("seg1.hea", Text("seg1 1 100 2\nseg1.dat 16 100 16 0 0 0 0 II\n")),
            ("seg1.dat", Format16([50], [-25])),
            ("seg2.hea", Text("seg2 2 100 2\nseg2.dat 16 100 16 0 0 0 0 V1\nseg2.dat 16 400(8) 16 0 0 0 0 II\n")),
            ("seg2.dat", Format16([7, 408], [9, 208])));
        var record = WfdbRecord.Open(source, "v");
        Assert.Equal(["II", "V1"], record.Signals.Select(s => s.Description));
        Assert.Equal(4, record.SampleCount);
        var physical = record.ReadPhysical();
        Assert.Equal([0.5, -0.25, 1.0, 0.5], physical[0]);
        Assert.True(double.IsNaN(physical[1][0]) && double.IsNaN(physical[1][1]));
        Assert.Equal([0.07, 0.09], physical[1][2..]);
        var digital = record.ReadDigital();
        const int X = WfdbSignalFormats.InvalidSample;
        Assert.Equal([100, -50, 200, 100], digital[0]);
        Assert.Equal([X, X, 7, 9], digital[1]);
    }

    [Fact]
    public void SegmentsInOtherVoltageUnitsAreConvertedToTheLayoutUnits()
    {
        var source = Source(
            ("v.hea", Text("v/2 1 100 2\nv_layout 0\nseg 2\n")),
            ("v_layout.hea", Text("v_layout 1 100 0\n~ 0 200/mV 16 0 0 0 0 II\n")),
            ("seg.hea", Text("seg 1 100 2\nseg.dat 16 1/uV 16 0 0 0 0 II\n")),
            ("seg.dat", Format16([500], [-250])));
        Assert.Equal([0.5, -0.25], WfdbRecord.Open(source, "v").ReadPhysical()[0]);
    }

    [Fact]
    public void AHeaderStoredUnderAnotherNameReadsWithAWarning()
    {
        var source = Source(("copy.hea", Text("orig 1 100 1\nx.dat 16 1 16 0 0 3 0 a\n")), ("x.dat", Format16([3])));
        var record = WfdbRecord.Open(source, "copy");
        Assert.Equal([3], record.ReadDigital()[0]);
        Assert.Contains("names the record 'orig'", Assert.Single(record.Warnings), StringComparison.Ordinal);
    }

    [Fact]
    public void Format8DifferencesAccumulateFromTheInitialValuePerSignal()
    {
        // Two signals interleaved; initial values 100 and -5; deltas (1, -1), (2, -2), (-3, 3).
        var source = Source(
            ("r.hea", Text("r 2 100 3\nr.d 8 1 8 0 100 0 0 a\nr.d 8 1 8 0 -5 0 0 b\n")),
            ("r.d", [1, 0xFF, 2, 0xFE, 0xFD, 3]));
        var record = WfdbRecord.Open(source, "r");
        var digital = record.ReadDigital();
        Assert.Equal([101, 103, 100], digital[0]);
        Assert.Equal([-6, -8, -5], digital[1]);
        Assert.Equal([103, 100], record.ReadDigital(1, 3, [0])[0]);
    }

    [Fact]
    public void SignalFileBesideItsHeaderOpensTheRecord()
    {
        var viaMat = WfdbRecord.Open(HubertEcg.Testing.RepoPaths.SharedFile("ecg-samples", "wfdb", "a103l.mat"));
        Assert.Equal("a103l", viaMat.RecordName);
        Assert.Equal("MATLAB v4", viaMat.Container);
        Assert.Equal(82500, viaMat.SampleCount);
    }
}
