namespace HubertEcg.Inference.Preprocessing;

/// <summary>
/// Window-method FIR design with the semantics of <c>scipy.signal.firwin</c> for a single pass band
/// (<c>pass_zero=False</c>, Hamming window, <c>scale=True</c>): the ideal band-pass impulse response
/// (difference of two sincs) times a symmetric Hamming window, normalised to unit gain at the centre of
/// the pass band.
/// </summary>
public static class FirDesign
{
    /// <summary>
    /// Band-pass taps. <paramref name="low"/> and <paramref name="high"/> are fractions of the Nyquist
    /// frequency (scipy's default <c>fs=None</c> convention), <c>0 &lt; low &lt; high &lt; 1</c>.
    /// </summary>
    public static double[] BandPass(int numTaps, double low, double high)
    {
        if (numTaps < 1 || numTaps % 2 == 0)
        {
            throw new ArgumentOutOfRangeException(nameof(numTaps), numTaps, "a band-pass FIR needs an odd, positive number of taps");
        }

        if (!(low > 0) || !(high > low) || !(high < 1))
        {
            throw new ArgumentOutOfRangeException(nameof(low), $"cut-offs must satisfy 0 < low < high < 1 (fraction of Nyquist), got {low} and {high}");
        }

        var alpha = 0.5 * (numTaps - 1);
        var window = Hamming(numTaps);
        var taps = new double[numTaps];
        for (var i = 0; i < numTaps; i++)
        {
            var m = i - alpha;
            var h = 0.0;
            h += high * Sinc(high * m);
            h -= low * Sinc(low * m);
            taps[i] = h * window[i];
        }

        // Unit gain at the centre of the pass band.
        var scaleFrequency = 0.5 * (low + high);
        var sum = 0.0;
        for (var i = 0; i < numTaps; i++)
        {
            sum += taps[i] * Math.Cos(Math.PI * (i - alpha) * scaleFrequency);
        }

        for (var i = 0; i < numTaps; i++)
        {
            taps[i] /= sum;
        }

        return taps;
    }

    /// <summary>Symmetric Hamming window, <c>0.54 + 0.46 cos(t)</c> for <c>t</c> evenly spaced over [-pi, pi].</summary>
    public static double[] Hamming(int length)
    {
        var w = new double[length];
        if (length == 1)
        {
            w[0] = 1.0;
            return w;
        }

        var step = 2 * Math.PI / (length - 1);
        for (var i = 0; i < length; i++)
        {
            var t = i == length - 1 ? Math.PI : (i * step) + -Math.PI;
            w[i] = 0.54 + (0.46 * Math.Cos(t));
        }

        return w;
    }

    /// <summary>Normalised sinc, <c>sin(pi x) / (pi x)</c>, 1 at 0.</summary>
    public static double Sinc(double x)
    {
        var y = Math.PI * (x == 0 ? 1e-20 : x);
        return Math.Sin(y) / y;
    }
}
