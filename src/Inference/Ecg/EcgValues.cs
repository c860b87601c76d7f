namespace HubertEcg.Inference.Ecg;

/// <summary>Checks on sample values shared by the readers.</summary>
internal static class EcgValues
{
    /// <summary>Infinities are never valid samples (NaN marks an invalid one).</summary>
    internal static void CheckFinite(string recordId, string lead, ReadOnlySpan<double> values)
    {
        for (var t = 0; t < values.Length; t++)
        {
            if (double.IsInfinity(values[t]))
            {
                throw new EcgFormatException(recordId, $"lead {lead} sample {t} is infinite");
            }
        }
    }
}
