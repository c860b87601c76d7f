using System.Numerics;
using HubertEcg.Inference.Preprocessing;

namespace HubertEcg.Inference.Tests.Preprocessing;

public sealed class FourierTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(7)]
    [InlineData(12)]
    [InlineData(13)]
    [InlineData(97)]
    [InlineData(1000)]
    [InlineData(1024)]
    [InlineData(2 * 1031)]
    public void FftEqualsTheDefinition(int n)
    {
        var random = new Random(n);
        var x = Enumerable.Range(0, n).Select(_ => new Complex(random.NextDouble() - 0.5, random.NextDouble() - 0.5)).ToArray();
        var actual = (Complex[])x.Clone();
        Fft.ForLength(n).Forward(actual);
        for (var k = 0; k < n; k++)
        {
            var sum = Complex.Zero;
            for (var j = 0; j < n; j++)
            {
                var angle = -2 * Math.PI * ((long)j * k % n) / n;
                sum += x[j] * new Complex(Math.Cos(angle), Math.Sin(angle));
            }

            Assert.True((sum - actual[k]).Magnitude < 1e-11 * Math.Max(1, n), $"bin {k}: {sum} vs {actual[k]}");
        }

        Fft.ForLength(n).InverseUnscaled(actual);
        for (var j = 0; j < n; j++)
        {
            Assert.True((x[j] - (actual[j] / n)).Magnitude < 1e-13, $"sample {j}");
        }
    }

    [Theory]
    [InlineData(1000, 5000)]
    [InlineData(38400, 19200)]
    [InlineData(999, 4995)]
    [InlineData(4096, 5120)]
    [InlineData(5001, 2500)]
    [InlineData(600, 600)]
    public void ResamplingABandLimitedPeriodicSignalIsExact(int n, int num)
    {
        // A few whole cycles of low-frequency tones: the Fourier method reproduces them exactly at any rate.
        static double Signal(double t) => 0.3 + Math.Sin(2 * Math.PI * 3 * t) - (0.5 * Math.Cos(2 * Math.PI * 17 * t));
        var x = Enumerable.Range(0, n).Select(i => Signal((double)i / n)).ToArray();
        var y = new double[num];
        FourierResampler.Resample(x, y);
        for (var i = 0; i < num; i++)
        {
            Assert.Equal(Signal((double)i / num), y[i], 1e-10);
        }
    }

    [Theory]
    [InlineData(1000, 5000)]
    [InlineData(999, 4995)]
    [InlineData(38400, 19200)]
    [InlineData(5001, 2500)]
    [InlineData(5000, 2501)]
    [InlineData(600, 600)]
    [InlineData(2, 1)]
    public void PairedResamplingEqualsSeparateResampling(int n, int num)
    {
        var random = new Random(n + num);
        var a = Enumerable.Range(0, n).Select(_ => random.NextDouble() - 0.5).ToArray();
        var b = Enumerable.Range(0, n).Select(_ => (3 * random.NextDouble()) + 1).ToArray();
        var pairA = new double[num];
        var pairB = new double[num];
        FourierResampler.ResamplePair(a, b, pairA, pairB);
        var soloA = new double[num];
        var soloB = new double[num];
        FourierResampler.Resample(a, soloA);
        FourierResampler.Resample(b, soloB);
        for (var i = 0; i < num; i++)
        {
            Assert.Equal(soloA[i], pairA[i], 1e-12);
            Assert.Equal(soloB[i], pairB[i], 1e-12);
        }
    }

    [Fact]
    public void DownsamplingAnEvenSpectrumDoublesTheNewNyquistBin()
    {
        // x = cos(pi i / 2) (period 4) at n = 8, resampled to 4: the tone lands on the new Nyquist bin and
        // scipy.signal.resample doubles it there (spectrum folding), giving 2 cos(pi i) * 4/8 = cos(pi i).
        var x = Enumerable.Range(0, 8).Select(i => Math.Cos(Math.PI * i / 2)).ToArray();
        var y = new double[4];
        FourierResampler.Resample(x, y);
        Assert.Equal([1, -1, 1, -1], y.Select(v => Math.Round(v, 12)).ToArray());
    }
}
