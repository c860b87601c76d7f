using System.Numerics;

namespace HubertEcg.Inference.Preprocessing;

/// <summary>
/// Digital Chebyshev type I low-pass design with the semantics of
/// <c>scipy.signal.cheby1(order, rp, wn, output='sos')</c>: the analog prototype's poles on an ellipse,
/// frequency pre-warping, low-pass scaling, the bilinear transform (all zeros at z = -1), then second-order
/// sections paired like <c>zpk2sos(pairing='nearest')</c>: the pole closest to the unit circle goes to the
/// last section, the overall gain into the first.
/// </summary>
public static class ChebyshevDesign
{
    /// <summary>
    /// Second-order sections, row-major <c>[section][b0 b1 b2 a0 a1 a2]</c>. <paramref name="cutoff"/> is a
    /// fraction of the Nyquist frequency. Only even orders are supported (all poles in conjugate pairs).
    /// </summary>
    public static double[] LowPassSos(int order, double rippleDb, double cutoff)
    {
        if (order < 2 || order % 2 != 0)
        {
            throw new ArgumentOutOfRangeException(nameof(order), order, "only even orders of at least 2 are supported");
        }

        if (!(rippleDb > 0))
        {
            throw new ArgumentOutOfRangeException(nameof(rippleDb), rippleDb, "pass-band ripple must be positive");
        }

        if (!(cutoff > 0) || !(cutoff < 1))
        {
            throw new ArgumentOutOfRangeException(nameof(cutoff), cutoff, "cut-off must lie strictly between 0 and 1 (fraction of Nyquist)");
        }

        // Analog prototype (cut-off 1 rad/s): poles p = -sinh(mu + j theta).
        var eps = Math.Sqrt(Math.Pow(10, 0.1 * rippleDb) - 1.0);
        var mu = 1.0 / order * Math.Asinh(1 / eps);
        var poles = new Complex[order];
        for (var i = 0; i < order; i++)
        {
            var m = -order + 1 + (2 * i);
            var theta = Math.PI * m / (2 * order);
            poles[i] = new Complex(-(Math.Sinh(mu) * Math.Cos(theta)), -(Math.Cosh(mu) * Math.Sin(theta)));
        }

        var prod = Complex.One;
        foreach (var p in poles)
        {
            prod *= -p;
        }

        var gain = prod.Real / Math.Sqrt(1 + (eps * eps));

        // Pre-warp (digital design with fs = 2), scale to the cut-off, bilinear transform.
        const double Fs = 2.0;
        var warped = 2 * Fs * Math.Tan(Math.PI * cutoff / Fs);
        const double Fs2 = 2.0 * Fs;
        var denominator = Complex.One;
        var digitalPoles = new Complex[order];
        for (var i = 0; i < order; i++)
        {
            var p = poles[i] * warped;
            denominator *= Fs2 - p;
            digitalPoles[i] = (Fs2 + p) / (Fs2 - p);
        }

        gain *= Math.Pow(warped, order);
        gain *= (Complex.One / denominator).Real;

        // One pole of each conjugate pair (upper half plane), averaged with its partner, sorted by real part.
        var upper = new List<Complex>(order / 2);
        for (var i = 0; i < order; i++)
        {
            var p = digitalPoles[i];
            if (p.Imaginary > 0)
            {
                var partner = digitalPoles.First(q => q.Imaginary < 0 && q == Complex.Conjugate(p));
                upper.Add((p + Complex.Conjugate(partner)) / 2);
            }
        }

        if (upper.Count != order / 2)
        {
            throw new InvalidOperationException("Chebyshev design: poles did not come in conjugate pairs");
        }

        upper.Sort((a, b) => a.Real != b.Real ? a.Real.CompareTo(b.Real) : a.Imaginary.CompareTo(b.Imaginary));

        var sections = order / 2;
        var sos = new double[sections * 6];
        for (var si = sections - 1; si >= 0; si--)
        {
            // The "worst" pole: closest to the unit circle; first one on ties.
            var worst = 0;
            for (var i = 1; i < upper.Count; i++)
            {
                if (Math.Abs(1 - Complex.Abs(upper[i])) < Math.Abs(1 - Complex.Abs(upper[worst])))
                {
                    worst = i;
                }
            }

            var p1 = upper[worst];
            upper.RemoveAt(worst);
            var p2 = Complex.Conjugate(p1);

            // Two zeros at -1: (1 + z^-1)^2.
            var row = sos.AsSpan(si * 6, 6);
            row[0] = 1;
            row[1] = 2;
            row[2] = 1;
            row[3] = 1;
            row[4] = (-p2 + -p1).Real;
            row[5] = (p1 * p2).Real;
        }

        sos[0] *= gain;
        sos[1] *= gain;
        sos[2] *= gain;
        return sos;
    }

    /// <summary>
    /// Initial state of each section for a unit step in steady state (<c>scipy.signal.sosfilt_zi</c>):
    /// row-major <c>[section][z0 z1]</c>.
    /// </summary>
    public static double[] SosStepInitialState(ReadOnlySpan<double> sos)
    {
        if (sos.Length == 0 || sos.Length % 6 != 0)
        {
            throw new ArgumentException("sos must hold whole sections of 6 coefficients", nameof(sos));
        }

        var sections = sos.Length / 6;
        var zi = new double[sections * 2];
        var scale = 1.0;
        for (var s = 0; s < sections; s++)
        {
            var row = sos.Slice(s * 6, 6);
            var a0 = row[3];
            double b0 = row[0] / a0, b1 = row[1] / a0, b2 = row[2] / a0, a1 = row[4] / a0, a2 = row[5] / a0;

            // Solve (I - A) zi = B for the transposed direct form II state of this biquad.
            var c0 = b1 - (a1 * b0);
            var c1 = b2 - (a2 * b0);
            var z0 = (c0 + c1) / (1 + a1 + a2);
            var z1 = c1 - (a2 * z0);
            zi[s * 2] = scale * z0;
            zi[(s * 2) + 1] = scale * z1;
            scale *= (row[0] + row[1] + row[2]) / (row[3] + row[4] + row[5]);
        }

        return zi;
    }
}
