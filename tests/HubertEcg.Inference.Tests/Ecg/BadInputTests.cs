using HubertEcg.Inference.Ecg;
using HubertEcg.Inference.Formats;
using HubertEcg.Inference.Formats.Npy;
using HubertEcg.Inference.Formats.Wfdb;
using HubertEcg.Testing;
using static HubertEcg.Inference.Tests.Ecg.WfdbTestFiles;

namespace HubertEcg.Inference.Tests.Ecg;

/// <summary>Bad input gives an <see cref="EcgFormatException"/> naming the record and the reason; never another exception or a huge allocation.</summary>
public sealed class BadInputTests
{
    private static InMemoryRecordFileSource Sample(string name, string directory = "wfdb") =>
        new(Directory.GetFiles(RepoPaths.SharedFile("ecg-samples", directory))
            .Where(f => Path.GetFileName(f).StartsWith(name + ".", StringComparison.Ordinal))
            .Select(f => new KeyValuePair<string, byte[]>(Path.GetFileName(f), File.ReadAllBytes(f))));

    private static string Header(InMemoryRecordFileSource source, string name)
    {
        using var reader = new StreamReader(source.Open(name + ".hea"));
        return reader.ReadToEnd();
    }

    /// <summary>Loads the record and its 12 leads; returns the typed error's reason.</summary>
    private static string Fails(IRecordFileSource source, string name)
    {
        var before = GC.GetAllocatedBytesForCurrentThread();
        var e = Assert.Throws<EcgFormatException>(() =>
        {
            var record = WfdbFormat.Load(source, name, "bad/" + name);
            record.ToStandard12Lead();
        });
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 64 << 20, "allocated more than 64 MiB");
        Assert.Equal("bad/" + name, e.RecordId);
        Assert.False(string.IsNullOrWhiteSpace(e.Reason));
        return e.Reason;
    }

    [Fact]
    public void TruncatedSignalFile()
    {
        var source = Sample("00001_lr", "ptb-xl");
        source.Set("00001_lr.dat", File.ReadAllBytes(RepoPaths.SharedFile("ecg-samples", "ptb-xl", "00001_lr.dat"))[..20000]);
        Assert.Contains("holds 833 frames but the header claims 1000", Fails(source, "00001_lr"), StringComparison.Ordinal);
    }

    [Fact]
    public void HeaderLyingAboutLength()
    {
        var source = Sample("00001_lr", "ptb-xl");
        source.Set("00001_lr.hea", Text(Header(source, "00001_lr").Replace("00001_lr 12 100 1000", "00001_lr 12 100 1001", StringComparison.Ordinal)));
        Assert.Contains("truncated file, or wrong length or format", Fails(source, "00001_lr"), StringComparison.Ordinal);
    }

    [Fact]
    public void HeaderLyingAboutFormat()
    {
        var source = Sample("00001_lr", "ptb-xl");
        source.Set("00001_lr.hea", Text(Header(source, "00001_lr").Replace(".dat 16 ", ".dat 32 ", StringComparison.Ordinal)));
        Assert.Contains("holds 500 frames", Fails(source, "00001_lr"), StringComparison.Ordinal);

        var mixed = Sample("00001_lr", "ptb-xl");
        var lines = Header(mixed, "00001_lr").Split('\n');
        lines[3] = lines[3].Replace(".dat 16 ", ".dat 212 ", StringComparison.Ordinal);
        mixed.Set("00001_lr.hea", Text(string.Join('\n', lines)));
        Assert.Contains("differ in format", Fails(mixed, "00001_lr"), StringComparison.Ordinal);

        var mat = Sample("a103l");
        mat.Set("a103l.hea", Text(Header(mat, "a103l").Replace("16+24", "16+20", StringComparison.Ordinal)));
        Assert.Contains("does not match the MATLAB v4 matrix", Fails(mat, "a103l"), StringComparison.Ordinal);

        var matFormat = Sample("a103l");
        matFormat.Set("a103l.hea", Text(Header(matFormat, "a103l").Replace("16+24", "32+24", StringComparison.Ordinal)));
        Assert.Contains("matrix of int16", Fails(matFormat, "a103l"), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("17", "unknown format 17")]
    [InlineData("516", "FLAC")]
    [InlineData("abc", "is not a number")]
    public void UnknownFormats(string format, string reason)
    {
        var source = TwelveLead();
        source.Set("rec.hea", Text(Header(source, "rec").Replace("rec.dat 16 ", $"rec.dat {format} ", StringComparison.Ordinal)));
        Assert.Contains(reason, Fails(source, "rec"), StringComparison.Ordinal);
    }

    [Fact]
    public void ZeroOrNonNumericGain()
    {
        var zero = TwelveLead();
        zero.Set("rec.hea", Text(Header(zero, "rec").Replace("200/mV 16 0 0 0 0 V2", "0/mV 16 0 0 0 0 V2", StringComparison.Ordinal)));
        Assert.Contains("lead V2 (channel 7) is in 'mV (uncalibrated)'", Fails(zero, "rec"), StringComparison.Ordinal);

        var text = TwelveLead();
        text.Set("rec.hea", Text(Header(text, "rec").Replace("200/mV 16 0 0 0 0 V2", "two/mV 16 0 0 0 0 V2", StringComparison.Ordinal)));
        Assert.Contains("signal 7 gain 'two' is not a finite number", Fails(text, "rec"), StringComparison.Ordinal);

        var nan = TwelveLead();
        nan.Set("rec.hea", Text(Header(nan, "rec").Replace("200/mV 16 0 0 0 0 I\n", "NaN/mV 16 0 0 0 0 I\n", StringComparison.Ordinal)));
        Assert.Contains("gain 'NaN'", Fails(nan, "rec"), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("0")]
    [InlineData("-500")]
    [InlineData("NaN")]
    [InlineData("fast")]
    public void BadSamplingRate(string rate)
    {
        var source = TwelveLead();
        source.Set("rec.hea", Text(Header(source, "rec").Replace("rec 12 500 500", $"rec 12 {rate} 500", StringComparison.Ordinal)));
        Assert.Contains("sampling frequency", Fails(source, "rec"), StringComparison.Ordinal);
    }

    [Fact]
    public void NpySamplingRateOfZero()
    {
        var path = RepoPaths.SharedFile("golden", "preprocess", "synthetic_500hz", "raw.npy");
        Assert.Contains("sampling rate 0", Assert.Throws<EcgFormatException>(() => FormatRegistry.Default.Load(path, 0)).Reason, StringComparison.Ordinal);
        Assert.Throws<EcgFormatException>(() => FormatRegistry.Default.Load(path, double.PositiveInfinity));
    }

    [Fact]
    public void MissingFiles()
    {
        var source = Sample("s0010_re");
        var noXyz = new InMemoryRecordFileSource(source.FileNames.Where(n => n != "s0010_re.xyz").Select(n => new KeyValuePair<string, byte[]>(n, ReadAll(source, n))));
        Assert.Contains("signal file s0010_re.xyz is missing", Fails(noXyz, "s0010_re"), StringComparison.Ordinal);
        Assert.Contains("file nothing.hea is missing", Fails(source, "nothing"), StringComparison.Ordinal);
        Assert.Throws<EcgFormatException>(() => FormatRegistry.Default.Load(Path.Combine(Path.GetTempPath(), Guid.NewGuid().ToString("N"))));
        Assert.Throws<EcgFormatException>(() => FormatRegistry.Default.Load(Path.Combine(Path.GetTempPath(), Guid.NewGuid().ToString("N") + ".npy"), 500));
        Assert.Throws<EcgFormatException>(() => FormatRegistry.Default.Load(Path.Combine(Path.GetTempPath(), Guid.NewGuid().ToString("N") + ".hdf5#0")));
    }

    [Fact]
    public void SignalFileOutsideTheRecordFolder()
    {
        var source = TwelveLead();
        source.Set("rec.hea", Text(Header(source, "rec").Replace("rec.dat", "../rec.dat", StringComparison.Ordinal)));
        Assert.Contains("not a plain file name", Fails(source, "rec"), StringComparison.Ordinal);
    }

    [Fact]
    public void OneLeadRecord()
    {
        var source = Source(("one.hea", Text("one 1 500 500\none.dat 16 200 16 0 0 0 0 II\n")), ("one.dat", new byte[1000]));
        Assert.Contains("missing leads I, III, aVR, aVL, aVF, V1, V2, V3, V4, V5, V6", Fails(source, "one"), StringComparison.Ordinal);
    }

    [Fact]
    public void NaNAndInfinities()
    {
        var dir = Directory.CreateTempSubdirectory("bad-npy");
        try
        {
            var data = new float[12 * 100];
            data[5] = float.NaN;
            var withNaN = Path.Combine(dir.FullName, "nan.npy");
            HubertEcg.Inference.IO.Npy.WriteFloat32(withNaN, data, 12, 100);
            var loaded = FormatRegistry.Default.Load(withNaN, 500);
            Assert.True(double.IsNaN(loaded.ToStandard12Lead().Leads[0][5])); // an invalid sample, filled by preprocessing

            data[300] = float.PositiveInfinity;
            var withInf = Path.Combine(dir.FullName, "inf.npy");
            HubertEcg.Inference.IO.Npy.WriteFloat32(withInf, data, 12, 100);
            Assert.Contains("lead aVR sample 0 is infinite", Assert.Throws<EcgFormatException>(() => FormatRegistry.Default.Load(withInf, 500)).Reason, StringComparison.Ordinal);

            var allNaN = Enumerable.Repeat(float.NaN, 12 * 100).ToArray();
            var nanOnly = Path.Combine(dir.FullName, "allnan.npy");
            HubertEcg.Inference.IO.Npy.WriteFloat32(nanOnly, allNaN, 12, 100);
            Assert.Contains("no valid samples", Assert.Throws<EcgFormatException>(() => FormatRegistry.Default.Load(nanOnly, 500).ToStandard12Lead()).Reason, StringComparison.Ordinal);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public void EmptyFiles()
    {
        var emptyHeader = Source(("e.hea", []), ("e.dat", new byte[100]));
        Assert.Contains("empty", Fails(emptyHeader, "e"), StringComparison.Ordinal);
        var blankHeader = Source(("e.hea", Text("\n# only a comment\n\n")));
        Assert.Contains("no record line", Fails(blankHeader, "e"), StringComparison.Ordinal);
        var emptySignal = TwelveLead();
        emptySignal.Set("rec.dat", []);
        Assert.Contains("holds 0 frames", Fails(emptySignal, "rec"), StringComparison.Ordinal);
        var noSamples = Source(("z.hea", Text("z 12 500\n" + string.Concat(Enumerable.Repeat("z.dat 16 200 16 0 0 0 0 I\n", 12)))), ("z.dat", []));
        Fails(noSamples, "z");
        var dir = Directory.CreateTempSubdirectory("empty-npy");
        try
        {
            var empty = Path.Combine(dir.FullName, "empty.npy");
            File.WriteAllBytes(empty, []);
            Assert.Contains("bad magic", Assert.Throws<EcgFormatException>(() => FormatRegistry.Default.Load(empty, 500)).Reason, StringComparison.Ordinal);
            var zeroSamples = Path.Combine(dir.FullName, "zero.npy");
            HubertEcg.Inference.IO.Npy.WriteFloat32(zeroSamples, [], 12, 0);
            Assert.Contains("holds no samples", Assert.Throws<EcgFormatException>(() => FormatRegistry.Default.Load(zeroSamples, 500)).Reason, StringComparison.Ordinal);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public void TwoGigabyteLengthClaimInAOneKilobyteFile()
    {
        var source = Source(("big.hea", Text("big 12 500 2000000000\n" + string.Concat(Enumerable.Range(0, 12).Select(k => $"big.dat 16 200 16 0 0 0 0 {StandardLeads.Names[k]}\n")))), ("big.dat", new byte[1024]));
        Assert.Contains("holds 42 frames but the header claims 2000000000", Fails(source, "big"), StringComparison.Ordinal);

        // The same lie where the source cannot tell the length up front (a stream).
        var streaming = new UnknownLengthSource(source);
        Assert.Contains("holds 42 frames", Fails(streaming, "big"), StringComparison.Ordinal);

        // A multi-segment record claiming a 2-billion-frame gap.
        var gap = Source(("g.hea", Text("g/2 1 500\ns 10\n~ 2000000000\n")), ("s.hea", Text("s 1 500 10\ns.dat 16 200 16 0 0 0 0 II\n")), ("s.dat", new byte[20]));
        Assert.Contains("reader's limit", Fails(gap, "g"), StringComparison.Ordinal);

        // A .npy array claiming 12 x 100 million float64 samples in 1 KB, from a file and from a non-seekable stream.
        var header = "{'descr': '<f8', 'fortran_order': False, 'shape': (12, 100000000), }".PadRight(117) + "\n";
        var bytes = new byte[1024];
        new byte[] { 0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', 1, 0, (byte)header.Length, 0 }.CopyTo(bytes, 0);
        System.Text.Encoding.ASCII.GetBytes(header).CopyTo(bytes, 10);
        var before = GC.GetAllocatedBytesForCurrentThread();
        Assert.Throws<EcgFormatException>(() => NpyFormat.Load(new MemoryStream(bytes), "npy-lie", 500));
        Assert.Throws<EcgFormatException>(() => NpyFormat.Load(new NonSeekableStream(bytes), "npy-lie", 500));
        var smaller = header.Replace("(12, 100000000)", "(12, 1000000)  ", StringComparison.Ordinal);
        System.Text.Encoding.ASCII.GetBytes(smaller).CopyTo(bytes, 10);
        Assert.Contains("truncated", Assert.Throws<EcgFormatException>(() => NpyFormat.Load(new NonSeekableStream(bytes), "npy-lie", 500)).Reason, StringComparison.Ordinal);
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 64 << 20);
    }

    [Fact]
    public void HeadersThatCountWrong()
    {
        Assert.Contains("claims 12 signals", Fails(Source(("h.hea", Text("h 12 500 10\nh.dat 16 200 16 0 0 0 0 I\n")), ("h.dat", new byte[20])), "h"), StringComparison.Ordinal);
        Assert.Contains("signal count", Fails(Source(("h.hea", Text("h 99999999999 500 10\n"))), "h"), StringComparison.Ordinal);
        Assert.Contains("segment count", Fails(Source(("h.hea", Text("h/0 1 500 10\n"))), "h"), StringComparison.Ordinal);
        Assert.Contains("record has no signals", Fails(Source(("h.hea", Text("h 0 500 10\n"))), "h"), StringComparison.Ordinal);
        Assert.Contains("number of samples", Fails(Source(("h.hea", Text("h 1 500 -10\nh.dat 16\n"))), "h"), StringComparison.Ordinal);
        Assert.Contains("NUL", Fails(Source(("h.hea", [0x68, 0x20, 0x31, 0x00, 0x0A])), "h"), StringComparison.Ordinal);
        Assert.Contains("base time", Fails(Source(("h.hea", Text("h 1 500 10 25:61:00\nh.dat 16\n"))), "h"), StringComparison.Ordinal);
    }

    [Fact]
    public void SampleRangesOutsideTheRecord()
    {
        var record = WfdbRecord.Open(TwelveLead(), "rec");
        Assert.Throws<EcgFormatException>(() => record.ReadDigital(-1, 10));
        Assert.Throws<EcgFormatException>(() => record.ReadDigital(0, 501));
        Assert.Throws<EcgFormatException>(() => record.ReadDigital(10, 5));
        Assert.Throws<EcgFormatException>(() => record.ReadDigital(0, 10, [12]));
        Assert.Empty(record.ReadDigital(5, 5)[0]);
    }

    private static byte[] ReadAll(InMemoryRecordFileSource source, string name)
    {
        using var stream = source.Open(name);
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        return copy.ToArray();
    }

    /// <summary>A source that does not know its files' lengths and serves non-seekable streams.</summary>
    private sealed class UnknownLengthSource(InMemoryRecordFileSource inner) : IRecordFileSource
    {
        public bool Exists(string fileName) => inner.Exists(fileName);

        public Stream Open(string fileName) => new NonSeekableStream(ReadAll(inner, fileName));

        public long Length(string fileName) => -1;
    }

    internal sealed class NonSeekableStream(byte[] bytes) : Stream
    {
        private readonly MemoryStream _inner = new(bytes);

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override void Flush()
        {
        }

        public override int Read(byte[] buffer, int offset, int count) => _inner.Read(buffer, offset, count);

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
