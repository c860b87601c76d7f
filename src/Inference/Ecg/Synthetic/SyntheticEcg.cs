namespace HubertEcg.Inference.Ecg.Synthetic;

/// <summary>
/// Synthetic 12-lead ECGs for demos, benchmarks and tests, stored by each format's own writer (in its folder under
/// <c>Formats/</c>). The signals are ECG-like (a beat every 0.6 to 1.1 s, a T wave, baseline wander, noise),
/// deterministic per seed.
/// </summary>
public static class SyntheticEcg
{
    /// <summary>A 12-lead signal in mV, leads in the standard order.</summary>
    public static EcgSignal Generate(string recordId, int seed, double samplingRate, double seconds)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(samplingRate);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(seconds);
        var samples = (int)Math.Round(seconds * samplingRate);
        var random = new Random(seed);
        var beat = 0.6 + (0.5 * random.NextDouble());
        var leads = new double[StandardLeads.Names.Count][];
        for (var lead = 0; lead < leads.Length; lead++)
        {
            var amplitude = (0.3 + random.NextDouble()) * (random.Next(4) == 0 ? -1 : 1);
            var wander = random.NextDouble() * 2 * Math.PI;
            var values = new double[samples];
            for (var i = 0; i < samples; i++)
            {
                var t = i / samplingRate;
                var phase = (t % beat) - (beat / 2);
                var qrs = amplitude * Math.Exp(-phase * phase / 0.0002);
                var tw = 0.25 * amplitude * Math.Exp(-(phase - 0.22) * (phase - 0.22) / 0.003);
                values[i] = qrs + tw + (0.08 * Math.Sin((2 * Math.PI * 0.25 * t) + wander)) + (0.01 * (random.NextDouble() - 0.5));
            }

            leads[lead] = values;
        }

        return new EcgSignal(recordId, samplingRate, StandardLeads.Names, leads);
    }
}
