using System.Buffers;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace HubertEcg.Inference.Preprocessing;

/// <summary>
/// Turns a preprocessed 12-lead 500 Hz signal into model inputs: 5 s windows (2500 samples, starts 0, 2500, ...),
/// NaN replaced by the mean of the window's other values (one mean over all leads), flattened lead by lead into
/// 30000 values and decimated by 5 like <c>scipy.signal.decimate(x, 5)</c> (Chebyshev I order 8, 0.05 dB ripple,
/// cut-off 0.8 / 5 of Nyquist, zero-phase second-order sections, every 5th sample): 6000 float32 per window.
/// </summary>
public static class EcgWindows
{
    public const int LeadCount = 12;
    public const int SamplingRate = 500;
    public const int WindowSamples = 2500;
    public const int DecimationFactor = 5;
    public const int FlatLength = LeadCount * WindowSamples;
    public const int ModelInputLength = FlatLength / DecimationFactor;

    private static readonly ZeroPhaseSos Decimator = new(ChebyshevDesign.LowPassSos(8, 0.05, 0.8 / DecimationFactor));

    /// <summary>Number of whole windows in <paramref name="samples"/> samples at 500 Hz, at most <paramref name="maxWindows"/> (null: no limit).</summary>
    public static int Count(int samples, int? maxWindows = null)
    {
        var count = samples / WindowSamples;
        return maxWindows is { } max ? Math.Min(count, Math.Max(max, 0)) : count;
    }

    /// <summary>
    /// Writes windows 0 .. <paramref name="windowCount"/>-1 of <paramref name="signal"/> (row-major 12 x
    /// <paramref name="samples"/>) into <paramref name="destination"/> (windowCount x 6000).
    /// A window whose every value is NaN cannot be filled and is rejected.
    /// </summary>
    public static void Write(ReadOnlySpan<double> signal, int samples, int windowCount, Span<float> destination, string recordId = "?")
    {
        if (signal.Length != LeadCount * samples)
        {
            throw new ArgumentException($"signal holds {signal.Length} values, expected 12 x {samples}", nameof(signal));
        }

        if (windowCount < 0 || (long)windowCount * WindowSamples > samples)
        {
            throw new ArgumentOutOfRangeException(nameof(windowCount), windowCount, $"{samples} samples hold {samples / WindowSamples} whole windows");
        }

        if (destination.Length < windowCount * ModelInputLength)
        {
            throw new ArgumentException($"destination holds {destination.Length} values, {windowCount} windows need {windowCount * ModelInputLength}", nameof(destination));
        }

        var buffer = ArrayPool<double>.Shared.Rent(2 * (FlatLength + ModelInputLength));
        try
        {
            var flat = buffer.AsSpan(0, FlatLength);
            var flatNext = buffer.AsSpan(FlatLength, FlatLength);
            var decimated = buffer.AsSpan(2 * FlatLength, ModelInputLength);
            var decimatedNext = buffer.AsSpan((2 * FlatLength) + ModelInputLength, ModelInputLength);
            var w = 0;

            // Two windows at a time share the decimation filter's SIMD lanes.
            for (; w + 1 < windowCount; w += 2)
            {
                Flatten(signal, samples, w, flat, recordId);
                Flatten(signal, samples, w + 1, flatNext, recordId);
                Decimator.ApplyPair(flat, flatNext, decimated, decimatedNext, DecimationFactor);
                Narrow(decimated, destination.Slice(w * ModelInputLength, ModelInputLength));
                Narrow(decimatedNext, destination.Slice((w + 1) * ModelInputLength, ModelInputLength));
            }

            if (w < windowCount)
            {
                Flatten(signal, samples, w, flat, recordId);
                Decimator.Apply(flat, decimated, DecimationFactor);
                Narrow(decimated, destination.Slice(w * ModelInputLength, ModelInputLength));
            }
        }
        finally
        {
            ArrayPool<double>.Shared.Return(buffer);
        }
    }

    // Window w, lead by lead, NaN filled.
    private static void Flatten(ReadOnlySpan<double> signal, int samples, int w, Span<double> flat, string recordId)
    {
        var start = w * WindowSamples;
        for (var lead = 0; lead < LeadCount; lead++)
        {
            signal.Slice((lead * samples) + start, WindowSamples).CopyTo(flat.Slice(lead * WindowSamples, WindowSamples));
        }

        FillNaN(flat, recordId, w);
    }

    private static void Narrow(ReadOnlySpan<double> values, Span<float> output)
    {
        var i = 0;
        if (Vector256.IsHardwareAccelerated && output.Length >= values.Length)
        {
            // Rounds each value to float exactly as the scalar cast does.
            ref var from = ref MemoryMarshal.GetReference(values);
            ref var to = ref MemoryMarshal.GetReference(output);
            for (; i <= values.Length - (2 * Vector256<double>.Count); i += 2 * Vector256<double>.Count)
            {
                Vector256.Narrow(Vector256.LoadUnsafe(ref from, (nuint)i), Vector256.LoadUnsafe(ref from, (nuint)(i + Vector256<double>.Count))).StoreUnsafe(ref to, (nuint)i);
            }
        }

        for (; i < values.Length; i++)
        {
            output[i] = (float)values[i];
        }
    }

    private static void FillNaN(Span<double> flat, string recordId, int window)
    {
        if (!SampleScan.ContainsNaN(flat))
        {
            return;
        }

        var nanCount = 0;
        var sum = 0.0;
        foreach (var v in flat)
        {
            if (double.IsNaN(v))
            {
                nanCount++;
            }
            else
            {
                sum += v;
            }
        }

        if (nanCount == 0)
        {
            return;
        }

        if (nanCount == flat.Length)
        {
            throw new Ecg.EcgFormatException(recordId, $"window {window} (from {window * WindowSamples / (double)SamplingRate} s) holds no valid sample in any lead");
        }

        var mean = sum / (flat.Length - nanCount);
        for (var i = 0; i < flat.Length; i++)
        {
            if (double.IsNaN(flat[i]))
            {
                flat[i] = mean;
            }
        }
    }
}
