using HubertEcg.Grains;

namespace HubertEcg.Unit.Tests.Runs;

/// <summary>The bounds every path that creates or runs a run checks (<see cref="RunSettingsRules"/>).</summary>
public sealed class RunSettingsRulesTests
{
    [Fact]
    public void TheDefaultsAndEveryBoundItselfPass()
    {
        Assert.Empty(RunSettingsRules.CheckOptions(batchSize: 32, maxWindows: 6, shardSize: 100, leaseSeconds: 60, maxAttempts: 3));
        Assert.Empty(RunSettingsRules.CheckOptions(1, 1, 1, 1, 1));
        Assert.Empty(RunSettingsRules.CheckOptions(
            RunSettingsRules.MaxBatchSize, RunSettingsRules.MaxMaxWindows, RunSettingsRules.MaxShardSize, RunSettingsRules.MaxLeaseSeconds, RunSettingsRules.MaxAttempts));
        Assert.Empty(RunSettingsRules.CheckModel(hiddenSize: 1024, labelCount: 164));
        Assert.Empty(RunSettingsRules.CheckModel(hiddenSize: 1, labelCount: 0));
        Assert.Empty(RunSettingsRules.CheckModel(RunSettingsRules.MaxHiddenSize, RunSettingsRules.MaxLabelCount));
    }

    [Theory]
    [InlineData(400_000, 6, 100, 60, 3, "--batch 400000 is outside 1..1024")]
    [InlineData(1025, 6, 100, 60, 3, "--batch 1025 is outside 1..1024")]
    [InlineData(0, 6, 100, 60, 3, "--batch 0 is outside 1..1024")]
    [InlineData(-5, 6, 100, 60, 3, "--batch -5 is outside 1..1024")]
    [InlineData(32, 721, 100, 60, 3, "--max-windows 721 is outside 1..720")]
    [InlineData(32, 0, 100, 60, 3, "--max-windows 0 is outside 1..720")]
    [InlineData(32, 6, 10_001, 60, 3, "--shard-size 10001 is outside 1..10000")]
    [InlineData(32, 6, 0, 60, 3, "--shard-size 0 is outside 1..10000")]
    [InlineData(32, 6, 100, 86_401, 3, "--lease-seconds 86401 is outside 1..86400")]
    [InlineData(32, 6, 100, 0, 3, "--lease-seconds 0 is outside 1..86400")]
    [InlineData(32, 6, 100, 60, 101, "--max-attempts 101 is outside 1..100")]
    [InlineData(32, 6, 100, 60, 0, "--max-attempts 0 is outside 1..100")]
    public void AnOptionJustOutsideItsBoundIsNamedWithItsValueAndRange(int batch, int maxWindows, int shardSize, int leaseSeconds, int maxAttempts, string expected)
    {
        var problem = Assert.Single(RunSettingsRules.CheckOptions(batch, maxWindows, shardSize, leaseSeconds, maxAttempts));
        Assert.StartsWith(expected, problem, StringComparison.Ordinal);
    }

    [Fact]
    public void EveryProblemIsReportedInOneLine()
    {
        var problems = RunSettingsRules.CheckOptions(int.MaxValue, int.MinValue, 0, -1, 0);
        Assert.Equal(5, problems.Count);
        var line = RunSettingsRules.Describe("run options", problems);
        Assert.StartsWith("run options refused: --batch 2147483647 is outside 1..1024", line, StringComparison.Ordinal);
        Assert.Contains("--max-windows -2147483648", line, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', line);
    }

    [Theory]
    [InlineData(int.MaxValue, 164, "model hidden size 2147483647 is outside 1..16384")]
    [InlineData(0, 164, "model hidden size 0 is outside 1..16384")]
    [InlineData(768, 100_001, "model label count 100001 is outside 0..100000")]
    [InlineData(768, -1, "model label count -1 is outside 0..100000")]
    public void AModelOutsideTheBoundsIsRefused(int hidden, int labels, string expected)
    {
        var problem = Assert.Single(RunSettingsRules.CheckModel(hidden, labels));
        Assert.StartsWith(expected, problem, StringComparison.Ordinal);
    }

    [Fact]
    public void WithinTheBoundsNoBufferAWorkerSizesOverflowsAndOutsideThemTheScoringCheckRefuses()
    {
        // The largest of everything: batch x 6000, max-windows x 6000, batch x hidden and batch x labels all fit one array.
        var largest = Settings(RunSettingsRules.MaxBatchSize, RunSettingsRules.MaxMaxWindows);
        Assert.Empty(RunSettingsRules.CheckScoring(largest, RunSettingsRules.MaxHiddenSize, RunSettingsRules.MaxLabelCount));
        Assert.True((long)RunSettingsRules.MaxBatchSize * 6000 <= Array.MaxLength);
        Assert.True((long)RunSettingsRules.MaxBatchSize * RunSettingsRules.MaxLabelCount <= Array.MaxLength);

        // The poison runs: a batch of 400,000 (400,000 x 6000 overflows an int) and a model claiming hidden_size 2^31-1.
        Assert.Contains(RunSettingsRules.CheckScoring(Settings(400_000, 6), 16, 164), p => p.StartsWith("--batch 400000", StringComparison.Ordinal));
        Assert.Contains(RunSettingsRules.CheckScoring(Settings(32, 6), int.MaxValue, 164), p => p.StartsWith("model hidden size 2147483647", StringComparison.Ordinal));
        Assert.Contains(RunSettingsRules.CheckScoring(Settings(32, 1_000_000), 16, 164), p => p.StartsWith("--max-windows 1000000", StringComparison.Ordinal));
    }

    private static RunScoringSettings Settings(int batch, int maxWindows) =>
        new("model", "model.onnx", "hubert-ecg-2024", Aggregation.Mean, maxWindows, batch);
}
