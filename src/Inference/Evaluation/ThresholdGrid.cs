namespace HubertEcg.Inference.Evaluation;

/// <summary>
/// The threshold grid g_k = k/1000 (the float nearest, the value Postgres stores for the literal) on which the
/// dashboard keeps per-run label bucket counts (infra/sql/0025_threshold_buckets.sql): a threshold on it changes in
/// well under a second, one off it recounts every score row of the model. <c>thresholds fit</c> picks grid thresholds
/// unless told <c>--exact</c>.
/// </summary>
public static class ThresholdGrid
{
    /// <summary>Grid steps: thresholds k / Steps for k = 0..Steps.</summary>
    public const int Steps = 1000;

    /// <summary>The grid threshold g_k.</summary>
    public static float Threshold(int k) => (float)(k / (double)Steps);

    /// <summary>The highest grid threshold at or below <paramref name="p"/> (a probability in [0, 1]; above 1: g_1000).</summary>
    public static float Floor(float p)
    {
        if (!(p >= 0f))
        {
            throw new ArgumentOutOfRangeException(nameof(p), p, "a probability below 0 has no grid threshold at or below it");
        }

        var k = (int)Math.Min(Steps, Math.Floor(p * (double)Steps));
        if (k < Steps && Threshold(k + 1) <= p)
        {
            k++;
        }

        while (k > 0 && Threshold(k) > p)
        {
            k--;
        }

        return Threshold(k);
    }
}
