using System.Buffers;
using System.Collections.Concurrent;
using System.Globalization;
using System.Numerics;
using HubertEcg.Inference.Ecg;

namespace HubertEcg.Inference.Preprocessing;

/// <summary>Settings of <see cref="EcgPreprocessor"/>.</summary>
public sealed record EcgPreprocessorOptions
{
    public PreprocessingProfile Profile { get; init; } = PreprocessingProfile.HubertEcg2024;

    /// <summary>At most this many 5 s windows per record (from the start); null: every whole window.</summary>
    public int? MaxWindows { get; init; }

    /// <summary>Longest record accepted, in samples per lead at 500 Hz (default one hour).</summary>
    public int MaxSamplesAt500Hz { get; init; } = 3600 * EcgWindows.SamplingRate;

    /// <summary>
    /// Highest sampling rate accepted, in Hz (default 20 kHz). The band-pass has 0.3 x rate taps, so an absurd rate
    /// would turn filtering into hours of work.
    /// </summary>
    public double MaxSamplingRate { get; init; } = 20_000;
}

/// <summary>A preprocessed record: the 500 Hz signal and the model inputs.</summary>
public sealed class PreprocessedEcg
{
    internal PreprocessedEcg(string recordId, double[] signal, int samples, float[] windows, int windowCount, int nanLeads)
    {
        RecordId = recordId;
        Signal = signal;
        SampleCount = samples;
        Windows = windows;
        WindowCount = windowCount;
        NaNLeadCount = nanLeads;
    }

    public string RecordId { get; }

    /// <summary>Band-passed, scaled signal at 500 Hz, row-major 12 x <see cref="SampleCount"/> (standard lead order).</summary>
    public double[] Signal { get; }

    /// <summary>Samples per lead at 500 Hz.</summary>
    public int SampleCount { get; }

    /// <summary>Model inputs, row-major <see cref="WindowCount"/> x 6000.</summary>
    public float[] Windows { get; }

    public int WindowCount { get; }

    /// <summary>
    /// Leads that held a NaN (invalid sample) in the source: as in the reference pipeline, a NaN spreads through the
    /// resampling, filter and min/max scaling to the whole lead, which the window NaN fill then replaces by the mean
    /// of the other leads.
    /// </summary>
    public int NaNLeadCount { get; }

    /// <summary>The 6000 model inputs of window <paramref name="index"/>.</summary>
    public ReadOnlySpan<float> Window(int index)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(index, WindowCount);
        return Windows.AsSpan(index * EcgWindows.ModelInputLength, EcgWindows.ModelInputLength);
    }
}

/// <summary>
/// HuBERT-ECG preprocessing of one 12-lead record (docs/design.md, Pipeline): resampling to 500 Hz, band-pass
/// 0.05-47 Hz (in the order the profile says), per-lead scaling to [-1, 1], then <see cref="EcgWindows"/>.
/// Thread-safe; filter designs are cached per sampling rate and scratch buffers come from the shared array pool,
/// so a call allocates only its outputs.
/// </summary>
public sealed class EcgPreprocessor
{
    private const double LowCutHz = 0.05;
    private const double HighCutHz = 47;
    private const int MaxCachedFilters = 64;
    private static readonly ConcurrentDictionary<double, ZeroPhaseFir> Filters = new();

    public EcgPreprocessor(EcgPreprocessorOptions? options = null)
    {
        Options = options ?? new EcgPreprocessorOptions();
        if (Options.MaxWindows is < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(options), Options.MaxWindows, "MaxWindows must be at least 1");
        }

        if (Options.MaxSamplesAt500Hz < EcgWindows.WindowSamples)
        {
            throw new ArgumentOutOfRangeException(nameof(options), Options.MaxSamplesAt500Hz, $"MaxSamplesAt500Hz must be at least {EcgWindows.WindowSamples}");
        }

        // Fails fast on an undefined profile value.
        _ = Options.Profile.Name();
    }

    public EcgPreprocessorOptions Options { get; }

    /// <summary>Samples per lead after resampling <paramref name="samples"/> samples at <paramref name="samplingRate"/> Hz to 500 Hz: <c>floor(N * 500 / fs)</c>.</summary>
    public static long ResampledLength(int samples, double samplingRate) =>
        samplingRate == EcgWindows.SamplingRate ? samples : (long)Math.Floor(samples * (double)EcgWindows.SamplingRate / samplingRate);

    /// <summary>Band-pass taps for a sampling rate: <c>firwin(numtaps, [2*0.05/fs, 2*47/fs], pass_zero=False)</c>, <c>numtaps = int(0.3 fs)</c> made odd.</summary>
    public static double[] BandPassTaps(double samplingRate) => [.. BandPass(samplingRate).Taps];

    /// <summary>Number of windows <paramref name="signal"/> yields under these options (after validation).</summary>
    public int WindowCount(EcgSignal signal)
    {
        var samples = Validate(signal, out _);
        return EcgWindows.Count(samples, Options.MaxWindows);
    }

    /// <summary>Preprocesses a record whose leads are in the standard order (<see cref="StandardLeads"/>).</summary>
    /// <exception cref="EcgFormatException">The record cannot be preprocessed; the reason says why.</exception>
    public PreprocessedEcg Preprocess(EcgSignal signal)
    {
        var samples = Validate(signal, out var finiteLeads);
        var preprocessed = new double[EcgWindows.LeadCount * samples];
        var nanLeads = Run(signal, preprocessed, samples, finiteLeads);
        var count = EcgWindows.Count(samples, Options.MaxWindows);
        var windows = new float[count * EcgWindows.ModelInputLength];
        EcgWindows.Write(preprocessed, samples, count, windows, signal.RecordId);
        return new PreprocessedEcg(signal.RecordId, preprocessed, samples, windows, count, nanLeads);
    }

    /// <summary>
    /// Preprocesses a record and writes only its model inputs into <paramref name="destination"/>
    /// (window count x 6000 floats; size it with <see cref="WindowCount"/>). Returns the number of windows written.
    /// </summary>
    /// <exception cref="EcgFormatException">The record cannot be preprocessed; the reason says why.</exception>
    public int Preprocess(EcgSignal signal, Span<float> destination)
    {
        var samples = Validate(signal, out var finiteLeads);
        var count = EcgWindows.Count(samples, Options.MaxWindows);
        if (destination.Length < count * EcgWindows.ModelInputLength)
        {
            throw new ArgumentException($"destination holds {destination.Length} values; record {signal.RecordId} yields {count} windows of {EcgWindows.ModelInputLength}", nameof(destination));
        }

        var length = EcgWindows.LeadCount * samples;
        var buffer = ArrayPool<double>.Shared.Rent(length);
        try
        {
            var preprocessed = buffer.AsSpan(0, length);
            Run(signal, preprocessed, samples, finiteLeads);
            EcgWindows.Write(preprocessed, samples, count, destination, signal.RecordId);
            return count;
        }
        finally
        {
            ArrayPool<double>.Shared.Return(buffer);
        }
    }

    private static ZeroPhaseFir BandPass(double samplingRate)
    {
        if (Filters.TryGetValue(samplingRate, out var filter))
        {
            return filter;
        }

        var numTaps = (int)(0.3 * samplingRate);
        if (numTaps % 2 == 0)
        {
            numTaps++;
        }

        filter = new ZeroPhaseFir(FirDesign.BandPass(numTaps, 2 * LowCutHz / samplingRate, 2 * HighCutHz / samplingRate));
        return Filters.Count < MaxCachedFilters ? Filters.GetOrAdd(samplingRate, filter) : filter;
    }

    private static string Format(double value) => value.ToString("0.###", CultureInfo.InvariantCulture);

    // Also returns the leads known to hold only finite values (bit i for lead i), which need no NaN scan later.
    private int Validate(EcgSignal signal, out int finiteLeads)
    {
        finiteLeads = 0;
        ArgumentNullException.ThrowIfNull(signal);
        var id = signal.RecordId;
        if (signal.Leads.Length != EcgWindows.LeadCount)
        {
            throw new EcgFormatException(id, $"preprocessing needs the 12 standard leads, the record has {signal.Leads.Length}");
        }

        for (var i = 0; i < EcgWindows.LeadCount; i++)
        {
            if (!string.Equals(signal.LeadNames[i], StandardLeads.Names[i], StringComparison.OrdinalIgnoreCase))
            {
                throw new EcgFormatException(id, $"lead {i} is '{signal.LeadNames[i]}', expected '{StandardLeads.Names[i]}' (leads must be in the standard order)");
            }

            if (signal.Leads[i] is null || signal.Leads[i].Length != signal.Leads[0].Length)
            {
                throw new EcgFormatException(id, $"lead {StandardLeads.Names[i]} has {signal.Leads[i]?.Length ?? 0} samples, lead I has {signal.Leads[0].Length}");
            }
        }

        var fs = signal.SamplingRate;
        if (!double.IsFinite(fs) || fs <= 0)
        {
            throw new EcgFormatException(id, $"sampling rate {fs} Hz is not a positive number");
        }

        if (fs > Options.MaxSamplingRate)
        {
            throw new EcgFormatException(id, $"sampling rate {Format(fs)} Hz is above the limit of {Format(Options.MaxSamplingRate)} Hz");
        }

        if (Options.Profile == PreprocessingProfile.HubertEcg2025 && fs <= 2 * HighCutHz)
        {
            throw new EcgFormatException(id, $"profile {Options.Profile.Name()} band-passes at the source rate and needs more than {2 * HighCutHz} Hz, the record has {Format(fs)} Hz");
        }

        var n = signal.SampleCount;
        var m = ResampledLength(n, fs);
        if (m < EcgWindows.WindowSamples)
        {
            throw new EcgFormatException(id, $"record is {Format(n / fs)} s long ({n} samples at {Format(fs)} Hz); at least {EcgWindows.WindowSamples / EcgWindows.SamplingRate} s are needed");
        }

        if (m > Options.MaxSamplesAt500Hz)
        {
            throw new EcgFormatException(id, $"record is {Format(n / fs)} s long; the limit is {Options.MaxSamplesAt500Hz / EcgWindows.SamplingRate} s");
        }

        if (Options.Profile == PreprocessingProfile.HubertEcg2025 && n <= BandPass(fs).PadLength)
        {
            throw new EcgFormatException(id, $"record has {n} samples, the band-pass at {Format(fs)} Hz needs more than {BandPass(fs).PadLength}");
        }

        for (var i = 0; i < EcgWindows.LeadCount; i++)
        {
            var lead = signal.Leads[i].AsSpan();
            if (SampleScan.AllFinite(lead))
            {
                finiteLeads |= 1 << i;
            }
            else
            {
                for (var j = 0; j < lead.Length; j++)
                {
                    if (double.IsInfinity(lead[j]))
                    {
                        throw new EcgFormatException(id, $"lead {StandardLeads.Names[i]} has an infinite value at sample {j}");
                    }
                }
            }
        }

        return (int)m;
    }

    // Resample + band-pass + scale every lead into `output` (row-major 12 x samples). Returns the number of NaN leads.
    private int Run(EcgSignal signal, Span<double> output, int samples, int finiteLeads)
    {
        var fs = signal.SamplingRate;
        var n = signal.SampleCount;
        var nanLeads = 0;
        var at500 = fs == EcgWindows.SamplingRate;
        var filter500 = BandPass(EcgWindows.SamplingRate);
        var sourceFilter = Options.Profile == PreprocessingProfile.HubertEcg2025 && !at500 ? BandPass(fs) : filter500;
        // Leads holding NaN: NaN reaches every sample of the lead through the FFT and the min/max scaling.
        Span<int> valid = stackalloc int[EcgWindows.LeadCount];
        var validCount = 0;
        for (var lead = 0; lead < EcgWindows.LeadCount; lead++)
        {
            if ((finiteLeads & (1 << lead)) == 0 && SampleScan.ContainsNaN(signal.Leads[lead]))
            {
                output.Slice(lead * samples, samples).Fill(double.NaN);
                nanLeads++;
            }
            else
            {
                valid[validCount++] = lead;
            }
        }

        var scratchLength = Math.Max(n, samples);
        var scratch = ArrayPool<double>.Shared.Rent(2 * scratchLength);
        try
        {
            // Two leads at a time share one complex FFT when resampling.
            for (var v = 0; v < validCount; v += 2)
            {
                var a = valid[v];
                var xa = signal.Leads[a].AsSpan();
                var ya = output.Slice(a * samples, samples);
                var paired = v + 1 < validCount;
                var b = paired ? valid[v + 1] : a;
                var xb = signal.Leads[b].AsSpan();
                var yb = output.Slice(b * samples, samples);
                if (at500)
                {
                    filter500.Apply(xa, ya);
                    if (paired)
                    {
                        filter500.Apply(xb, yb);
                    }
                }
                else if (Options.Profile == PreprocessingProfile.HubertEcg2024)
                {
                    var ra = scratch.AsSpan(0, samples);
                    var rb = scratch.AsSpan(scratchLength, samples);
                    if (paired)
                    {
                        FourierResampler.ResamplePair(xa, xb, ra, rb);
                        filter500.Apply(ra, ya);
                        filter500.Apply(rb, yb);
                    }
                    else
                    {
                        FourierResampler.Resample(xa, ra);
                        filter500.Apply(ra, ya);
                    }
                }
                else
                {
                    var fa = scratch.AsSpan(0, n);
                    var fb = scratch.AsSpan(scratchLength, n);
                    sourceFilter.Apply(xa, fa);
                    if (paired)
                    {
                        sourceFilter.Apply(xb, fb);
                        FourierResampler.ResamplePair(fa, fb, ya, yb);
                    }
                    else
                    {
                        FourierResampler.Resample(fa, ya);
                    }
                }

                Scale(ya);
                if (paired)
                {
                    Scale(yb);
                }
            }
        }
        finally
        {
            ArrayPool<double>.Shared.Return(scratch);
        }

        if (nanLeads == EcgWindows.LeadCount)
        {
            throw new EcgFormatException(signal.RecordId, "every lead holds invalid (NaN) samples; nothing is left to fill them from");
        }

        return nanLeads;
    }

    // 2 (x - min) / (max - min + 1e-8) - 1 over the whole lead (the lead holds no NaN here).
    private static void Scale(Span<double> y)
    {
        var min = double.PositiveInfinity;
        var max = double.NegativeInfinity;
        var i = 0;
        if (Vector.IsHardwareAccelerated && y.Length >= Vector<double>.Count)
        {
            var vmin = new Vector<double>(min);
            var vmax = new Vector<double>(max);
            for (; i <= y.Length - Vector<double>.Count; i += Vector<double>.Count)
            {
                var v = new Vector<double>(y[i..]);
                vmin = Vector.Min(vmin, v);
                vmax = Vector.Max(vmax, v);
            }

            for (var k = 0; k < Vector<double>.Count; k++)
            {
                min = Math.Min(min, vmin[k]);
                max = Math.Max(max, vmax[k]);
            }
        }

        for (; i < y.Length; i++)
        {
            min = Math.Min(min, y[i]);
            max = Math.Max(max, y[i]);
        }

        var range = max - min + 1e-8;
        i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            var vmin = new Vector<double>(min);
            var vrange = new Vector<double>(range);
            var two = new Vector<double>(2.0);
            for (; i <= y.Length - Vector<double>.Count; i += Vector<double>.Count)
            {
                var v = new Vector<double>(y[i..]);
                ((two * (v - vmin) / vrange) - Vector<double>.One).CopyTo(y[i..]);
            }
        }

        for (; i < y.Length; i++)
        {
            y[i] = (2 * (y[i] - min) / range) - 1;
        }
    }
}
