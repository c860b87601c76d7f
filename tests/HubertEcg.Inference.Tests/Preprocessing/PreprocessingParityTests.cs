using System.Text.Json;
using HubertEcg.Inference.Ecg;
using HubertEcg.Inference.IO;
using HubertEcg.Inference.Preprocessing;
using HubertEcg.Testing;

namespace HubertEcg.Inference.Tests.Preprocessing;

/// <summary>Parity with the golden fixtures in shared/golden/preprocess (computed with NumPy/SciPy).</summary>
public sealed class PreprocessingParityTests
{
    private const double SignalTolerance = 1e-9;
    private const double WindowTolerance = 1e-6;

    public static TheoryData<string, string> Cases()
    {
        var data = new TheoryData<string, string>();
        foreach (var record in GoldenRecords())
        {
            foreach (var profile in PreprocessingProfiles.Names)
            {
                data.Add(record, profile);
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void RawNpyMatchesGolden(string record, string profile)
    {
        var signal = LoadRaw(record);
        AssertMatchesGolden(signal, record, profile);
    }

    [Fact]
    public void EveryGoldenRecordIsCovered()
    {
        // The fixtures folder holds three records plus nan_fill; a missing folder must not silently shrink the theory.
        Assert.Equal(["00001_lr", "s0010_re", "synthetic_500hz"], GoldenRecords());
    }

    [Fact]
    public void FortranOrderRawArraysReadInLeadMajorOrder()
    {
        // The real records' raw.npy files are stored Fortran-ordered (samples x leads transposed); element
        // (lead i, sample j) sits at j * 12 + i in the file. Npy.Read must hand them back lead-major.
        var path = RepoPaths.SharedFile("golden", "preprocess", "s0010_re", "raw.npy");
        var bytes = File.ReadAllBytes(path);
        var headerLength = BitConverter.ToUInt16(bytes, 8);
        Assert.Contains("'fortran_order': True", System.Text.Encoding.Latin1.GetString(bytes, 10, headerLength), StringComparison.Ordinal);
        var array = Npy.Read(path);
        var n = array.Shape[1];
        foreach (var (lead, sample) in new[] { (0, 0), (1, 5), (11, n - 1), (7, 12345) })
        {
            var fileValue = BitConverter.ToDouble(bytes, 10 + headerLength + (8 * ((sample * 12) + lead)));
            Assert.Equal(fileValue, array.Data[(lead * n) + sample]);
        }
    }

    [Fact]
    public void NaNFillMatchesGolden()
    {
        var input = Npy.Read(RepoPaths.SharedFile("golden", "preprocess", "nan_fill", "preprocessed_500hz_with_nan.npy"));
        var expected = Npy.Read(RepoPaths.SharedFile("golden", "preprocess", "nan_fill", "window0.npy"));
        Assert.Equal(12, input.Shape[0]);
        Assert.Contains(input.Data, double.IsNaN);
        var samples = input.Shape[1];
        var window = new float[EcgWindows.ModelInputLength];
        EcgWindows.Write(input.Data, samples, 1, window, "nan_fill");
        AssertClose(expected.Data, window, WindowTolerance, "nan_fill window0");
    }

    /// <summary>
    /// Checks a signal (from raw.npy here; from the real WFDB/PTB-XL record files once the readers exist) against
    /// the golden outputs of <paramref name="record"/> under <paramref name="profile"/>.
    /// </summary>
    internal static void AssertMatchesGolden(EcgSignal signal, string record, string profile) =>
        AssertMatchesGoldenIn(signal, RepoPaths.SharedFile("golden", "preprocess", record, profile), record, profile);

    /// <summary>As <see cref="AssertMatchesGolden"/>, for the golden outputs in <paramref name="folder"/> (one profile's folder).</summary>
    internal static void AssertMatchesGoldenIn(EcgSignal signal, string folder, string record, string profile)
    {
        var expectedSignal = Npy.Read(Path.Combine(folder, "preprocessed_500hz.npy"));
        var windowFiles = Directory.GetFiles(folder, "window*.npy");
        var preprocessor = new EcgPreprocessor(new EcgPreprocessorOptions { Profile = PreprocessingProfiles.Parse(profile) });

        var result = preprocessor.Preprocess(signal);

        Assert.Equal(new[] { 12, result.SampleCount }, expectedSignal.Shape);
        AssertClose(expectedSignal.Data, result.Signal, SignalTolerance, $"{record}/{profile} preprocessed_500hz");
        Assert.Equal(windowFiles.Length, result.WindowCount);
        for (var k = 0; k < result.WindowCount; k++)
        {
            var expected = Npy.Read(Path.Combine(folder, $"window{k}.npy"));
            Assert.Equal([EcgWindows.ModelInputLength], expected.Shape);
            AssertClose(expected.Data, result.Window(k), WindowTolerance, $"{record}/{profile} window{k}");
        }

        // The buffer overload writes the same windows.
        var buffer = new float[preprocessor.WindowCount(signal) * EcgWindows.ModelInputLength];
        Assert.Equal(result.WindowCount, preprocessor.Preprocess(signal, buffer));
        Assert.Equal(result.Windows, buffer);
    }

    internal static EcgSignal LoadRaw(string record)
    {
        var raw = Npy.Read(RepoPaths.SharedFile("golden", "preprocess", record, "raw.npy"));
        using var info = JsonDocument.Parse(File.ReadAllText(RepoPaths.SharedFile("golden", "preprocess", record, "info.json")));
        var fs = info.RootElement.GetProperty("fs").GetDouble();
        Assert.Equal(2, raw.Shape.Length);
        Assert.Equal(12, raw.Shape[0]);
        var n = raw.Shape[1];
        var leads = new double[12][];
        for (var i = 0; i < 12; i++)
        {
            leads[i] = raw.Data.AsSpan(i * n, n).ToArray();
        }

        return new EcgSignal(record, fs, StandardLeads.Names, leads);
    }

    private static string[] GoldenRecords() =>
        [.. Directory.GetDirectories(RepoPaths.SharedFile("golden", "preprocess"))
            .Where(d => File.Exists(Path.Combine(d, "raw.npy")))
            .Select(Path.GetFileName)
            .Select(n => n!)
            .Order(StringComparer.Ordinal)];

    private static void AssertClose(double[] expected, ReadOnlySpan<double> actual, double tolerance, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        var worst = 0.0;
        var worstAt = -1;
        for (var i = 0; i < expected.Length; i++)
        {
            var d = Math.Abs(expected[i] - actual[i]);
            if (!(d <= worst))
            {
                worst = d;
                worstAt = i;
            }
        }

        Assert.True(worst <= tolerance, $"{what}: max |diff| {worst:E3} at {worstAt} (expected {(worstAt >= 0 ? expected[worstAt] : 0)}, got {(worstAt >= 0 ? actual[worstAt] : 0)})");
    }

    private static void AssertClose(double[] expected, ReadOnlySpan<float> actual, double tolerance, string what)
    {
        var widened = new double[actual.Length];
        for (var i = 0; i < actual.Length; i++)
        {
            widened[i] = actual[i];
        }

        AssertClose(expected, widened, tolerance, what);
    }
}
