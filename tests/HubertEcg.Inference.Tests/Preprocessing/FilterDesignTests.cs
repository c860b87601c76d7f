using System.Numerics;
using HubertEcg.Inference.Preprocessing;

namespace HubertEcg.Inference.Tests.Preprocessing;

public sealed class FilterDesignTests
{
    [Fact]
    public void FirwinBandPassMatchesScipyDocumentation()
    {
        // scipy.signal.firwin docstring: firwin(3, [0.1, 0.2], pass_zero=False) -> [0.06301614, 0.88770441, 0.06301614].
        var taps = FirDesign.BandPass(3, 0.1, 0.2);
        Assert.Equal(3, taps.Length);
        Assert.Equal(0.06301614, taps[0], 8);
        Assert.Equal(0.88770441, taps[1], 8);
        Assert.Equal(0.06301614, taps[2], 8);
    }

    [Fact]
    public void HammingWindowHasItsClosedForm()
    {
        var w = FirDesign.Hamming(151);
        for (var i = 0; i < w.Length; i++)
        {
            Assert.Equal(0.54 - (0.46 * Math.Cos(2 * Math.PI * i / 150)), w[i], 1e-12);
        }

        Assert.Equal(0.08, w[0], 1e-15);
        Assert.Equal(1.0, w[75], 1e-15);
    }

    [Theory]
    [InlineData(100.0, 31)]
    [InlineData(400.0, 121)]
    [InlineData(500.0, 151)]
    [InlineData(1000.0, 301)]
    [InlineData(257.0, 77)]
    public void BandPassForARateHasUnitGainAtPassBandCentre(double fs, int expectedTaps)
    {
        var taps = EcgPreprocessor.BandPassTaps(fs);
        Assert.Equal(expectedTaps, taps.Length);

        // Linear phase: symmetric taps.
        for (var i = 0; i < taps.Length; i++)
        {
            Assert.Equal(taps[i], taps[taps.Length - 1 - i], 1e-15);
        }

        // |H| at the centre of [0.05 Hz, 47 Hz] is 1. A 0.3 s filter cannot resolve the 0.05 Hz edge, so DC passes
        // almost unattenuated (about 0.98); above 47 Hz plus the Hamming transition width the stop band holds.
        var centre = Math.PI * 0.5 * ((2 * 0.05 / fs) + (2 * 47 / fs));
        Assert.Equal(1.0, Magnitude(taps, centre), 1e-12);
        Assert.InRange(taps.Sum(), 0.95, 0.999);
        if (fs >= 250)
        {
            Assert.True(Magnitude(taps, 2 * Math.PI * 70 / fs) < 0.01, $"gain at 70 Hz {Magnitude(taps, 2 * Math.PI * 70 / fs)}");
        }
    }

    [Fact]
    public void ChebyshevSectionsHaveTheDesignedResponse()
    {
        var sos = ChebyshevDesign.LowPassSos(8, 0.05, 0.16);
        Assert.Equal(24, sos.Length);
        var ripple = Math.Pow(10, -0.05 / 20);

        // Every section: zeros at -1 (b proportional to 1, 2, 1), a0 = 1, poles inside the unit circle.
        var radii = new double[4];
        for (var s = 0; s < 4; s++)
        {
            var b0 = sos[s * 6];
            Assert.Equal(2 * b0, sos[(s * 6) + 1], 1e-14);
            Assert.Equal(b0, sos[(s * 6) + 2], 1e-14);
            Assert.Equal(1.0, sos[(s * 6) + 3]);
            radii[s] = Math.Sqrt(sos[(s * 6) + 5]);
            Assert.InRange(radii[s], 0.0, 1.0);
        }

        // Pairing: the pole closest to the unit circle sits in the last section, the gain in the first.
        Assert.Equal(radii.Order().ToArray(), radii);
        for (var s = 1; s < 4; s++)
        {
            Assert.Equal(1.0, sos[s * 6]);
        }

        // An even-order Chebyshev I filter sits at the bottom of its ripple at DC and at the cut-off,
        // never exceeds 1 in the pass band, and is far down in the stop band.
        Assert.Equal(ripple, SosMagnitude(sos, 0), 1e-12);
        Assert.Equal(ripple, SosMagnitude(sos, Math.PI * 0.16), 1e-10);
        for (var w = 0.0; w < Math.PI * 0.16; w += 0.001)
        {
            Assert.InRange(SosMagnitude(sos, w), ripple - 1e-12, 1 + 1e-12);
        }

        Assert.True(SosMagnitude(sos, Math.PI * 0.2) < 0.1);
        Assert.True(SosMagnitude(sos, Math.PI * 0.5) < 1e-5);
    }

    [Fact]
    public void SosStepStateHoldsAConstantInputSteady()
    {
        var sos = ChebyshevDesign.LowPassSos(8, 0.05, 0.16);
        var zi = ChebyshevDesign.SosStepInitialState(sos);
        var state = zi.Select(z => z * 3.0).ToArray();
        var gain = 1.0;
        for (var s = 0; s < 4; s++)
        {
            gain *= (sos[s * 6] + sos[(s * 6) + 1] + sos[(s * 6) + 2]) / (1 + sos[(s * 6) + 4] + sos[(s * 6) + 5]);
        }

        for (var i = 0; i < 50; i++)
        {
            var x = 3.0;
            for (var s = 0; s < 4; s++)
            {
                var y = (sos[s * 6] * x) + state[2 * s];
                state[2 * s] = (sos[(s * 6) + 1] * x) - (sos[(s * 6) + 4] * y) + state[(2 * s) + 1];
                state[(2 * s) + 1] = (sos[(s * 6) + 2] * x) - (sos[(s * 6) + 5] * y);
                x = y;
            }

            Assert.Equal(3.0 * gain, x, 1e-12);
        }
    }

    [Fact]
    public void ZeroPhaseSosOfAConstantIsTheConstantTimesTheSquaredDcGain()
    {
        var sos = ChebyshevDesign.LowPassSos(8, 0.05, 0.16);
        var filter = new ZeroPhaseSos(sos);
        Assert.Equal(27, filter.PadLength);
        var input = Enumerable.Repeat(-1.5, 200).ToArray();
        var output = new double[40];
        filter.Apply(input, output, 5);
        var dc = Math.Pow(10, -0.05 / 20);
        Assert.All(output, v => Assert.Equal(-1.5 * dc * dc, v, 12));
    }

    [Theory]
    [InlineData(2, 1.0, 0.3)]
    [InlineData(4, 0.5, 0.2)]
    [InlineData(6, 0.1, 0.45)]
    public void OtherEvenOrdersKeepTheirRippleAndRunZeroPhase(int order, double ripple, double cutoff)
    {
        var sos = ChebyshevDesign.LowPassSos(order, ripple, cutoff);
        Assert.Equal(order / 2 * 6, sos.Length);
        var bottom = Math.Pow(10, -ripple / 20);
        Assert.Equal(bottom, SosMagnitude(sos, 0), 1e-12);
        Assert.Equal(bottom, SosMagnitude(sos, Math.PI * cutoff), 1e-9);

        // The general (not 4-section) path: a constant comes out times the squared DC gain, with the pad the
        // section count implies.
        var filter = new ZeroPhaseSos(sos);
        Assert.Equal(3 * (order + 1), filter.PadLength);
        var output = new double[100];
        filter.Apply(Enumerable.Repeat(2.0, 100).ToArray(), output);
        Assert.All(output, v => Assert.Equal(2.0 * bottom * bottom, v, 1e-12));
    }

    [Fact]
    public void PairedSosFilteringEqualsTwoSeparateRuns()
    {
        var filter = new ZeroPhaseSos(ChebyshevDesign.LowPassSos(8, 0.05, 0.16));
        var random = new Random(3);
        var a = Enumerable.Range(0, 3000).Select(i => Math.Sin(i * 0.02) + random.NextDouble()).ToArray();
        var b = Enumerable.Range(0, 3000).Select(i => Math.Cos(i * 0.005) - random.NextDouble()).ToArray();
        var pairA = new double[600];
        var pairB = new double[600];
        filter.ApplyPair(a, b, pairA, pairB, 5);
        var soloA = new double[600];
        var soloB = new double[600];
        filter.Apply(a, soloA, 5);
        filter.Apply(b, soloB, 5);
        Assert.Equal(soloA, pairA);
        Assert.Equal(soloB, pairB);

        // Every 5th sample of the full-rate output.
        var full = new double[3000];
        filter.Apply(a, full);
        Assert.Equal(Enumerable.Range(0, 600).Select(i => full[i * 5]).ToArray(), soloA);
    }

    [Fact]
    public void ZeroPhaseFirEqualsFiltfiltWithLfilterZi()
    {
        var taps = FirDesign.BandPass(31, 0.001, 0.94);
        var random = new Random(7);
        foreach (var length in new[] { 500, 503, 5000, 100_007 })
        {
            // Lengths that are and are not whole register blocks (the last block overlaps the one before it).
            var x = Enumerable.Range(0, length).Select(i => Math.Sin(i * 0.05) + random.NextDouble() - 0.5).ToArray();
            var actual = new double[x.Length];
            new ZeroPhaseFir(taps).Apply(x, actual);
            var expected = ReferenceFiltfilt(taps, x);
            for (var i = 0; i < x.Length; i++)
            {
                Assert.Equal(expected[i], actual[i], 1e-12);
            }
        }
    }

    [Fact]
    public void BlockedAndPlainSymmetricCorrelationAgree()
    {
        var random = new Random(11);
        foreach (var (taps, count) in new[] { (1, 70), (5, 64), (31, 129), (151, 5000), (301, 1003) })
        {
            var g = Enumerable.Range(0, taps).Select(_ => random.NextDouble() - 0.5).ToArray();
            var input = Enumerable.Range(0, count + (2 * (taps - 1))).Select(_ => (random.NextDouble() * 2000) - 1000).ToArray();
            var plain = new double[count];
            ZeroPhaseFir.SymmetricCorrelate(input, g, plain);
            var blocked = new double[count];
            if (ZeroPhaseFir.CorrelateBlocked(input, g, blocked))
            {
                for (var i = 0; i < count; i++)
                {
                    Assert.Equal(plain[i], blocked[i], 1e-9);
                }
            }

            // Plain loop against the definition.
            for (var o = 0; o < count; o += 97)
            {
                var sum = 0.0;
                for (var d = -(taps - 1); d < taps; d++)
                {
                    sum += g[Math.Abs(d)] * input[o + taps - 1 + d];
                }

                Assert.Equal(sum, plain[o], 1e-9);
            }
        }
    }

    [Fact]
    public void ZeroPhaseFiltersRejectSignalsNotLongerThanThePad()
    {
        var fir = new ZeroPhaseFir(FirDesign.BandPass(11, 0.1, 0.5));
        Assert.Throws<ArgumentException>(() => fir.Apply(new double[33], new double[33]));
        var sos = new ZeroPhaseSos(ChebyshevDesign.LowPassSos(8, 0.05, 0.16));
        Assert.Throws<ArgumentException>(() => sos.Apply(new double[27], new double[6], 5));
    }

    [Fact]
    public void DesignsRejectInvalidArguments()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => FirDesign.BandPass(4, 0.1, 0.2));
        Assert.Throws<ArgumentOutOfRangeException>(() => FirDesign.BandPass(5, 0.2, 0.1));
        Assert.Throws<ArgumentOutOfRangeException>(() => FirDesign.BandPass(5, 0.1, 1.0));
        Assert.Throws<ArgumentOutOfRangeException>(() => ChebyshevDesign.LowPassSos(7, 0.05, 0.16));
        Assert.Throws<ArgumentOutOfRangeException>(() => ChebyshevDesign.LowPassSos(8, 0.05, 1.2));
    }

    // scipy.signal.filtfilt(b, [1], x) written out literally: odd extension of 3 * len(b), transposed direct form II
    // with zi = lfilter_zi(b, 1) * first sample, forward then on the reversed output, cut.
    private static double[] ReferenceFiltfilt(double[] b, double[] x)
    {
        var edge = 3 * b.Length;
        var n = x.Length;
        var ext = new double[n + (2 * edge)];
        for (var j = 0; j < edge; j++)
        {
            ext[j] = (2 * x[0]) - x[edge - j];
            ext[edge + n + j] = (2 * x[n - 1]) - x[n - 2 - j];
        }

        Array.Copy(x, 0, ext, edge, n);
        var zi = new double[b.Length - 1];
        for (var k = b.Length - 2; k >= 0; k--)
        {
            zi[k] = b[k + 1] + (k + 1 < zi.Length ? zi[k + 1] : 0);
        }

        var y = Lfilter(b, ext, zi);
        Array.Reverse(y);
        y = Lfilter(b, y, zi);
        Array.Reverse(y);
        return y[edge..(edge + n)];
    }

    private static double[] Lfilter(double[] b, double[] x, double[] zi)
    {
        var z = zi.Select(v => v * x[0]).ToArray();
        var y = new double[x.Length];
        for (var i = 0; i < x.Length; i++)
        {
            y[i] = (b[0] * x[i]) + z[0];
            for (var k = 0; k < z.Length - 1; k++)
            {
                z[k] = (b[k + 1] * x[i]) + z[k + 1];
            }

            z[^1] = b[^1] * x[i];
        }

        return y;
    }

    private static double Magnitude(double[] taps, double omega)
    {
        var sum = Complex.Zero;
        for (var k = 0; k < taps.Length; k++)
        {
            sum += taps[k] * Complex.Exp(new Complex(0, -omega * k));
        }

        return sum.Magnitude;
    }

    private static double SosMagnitude(double[] sos, double omega)
    {
        var z1 = Complex.Exp(new Complex(0, -omega));
        var z2 = z1 * z1;
        var h = Complex.One;
        for (var s = 0; s < sos.Length / 6; s++)
        {
            var r = s * 6;
            h *= (sos[r] + (sos[r + 1] * z1) + (sos[r + 2] * z2)) / (sos[r + 3] + (sos[r + 4] * z1) + (sos[r + 5] * z2));
        }

        return h.Magnitude;
    }
}
