using HubertEcg.Worker;
using Microsoft.Extensions.Configuration;

namespace HubertEcg.Unit.Tests.Worker;

/// <summary>Model threads per worker (<c>Workers:ConcurrentBatches</c>, <c>Workers:ModelThreadsPerGpu</c>) and <c>Workers:IoBinding</c>.</summary>
public sealed class ModelThreadOptionsTests
{
    private static WorkerOptions Bind(Dictionary<string, string?> settings) =>
        new ConfigurationBuilder().AddInMemoryCollection(settings).Build().GetSection(WorkerOptions.SectionName).Get<WorkerOptions>()
        ?? throw new InvalidOperationException("no Workers section");

    [Fact]
    public void GpuWorkersRunTwoModelThreadsByDefault()
    {
        var options = Bind(new() { ["Workers:Devices:0"] = "0", ["Workers:Devices:1"] = "cpu" });
        Assert.Empty(options.Problems());
        Assert.Equal(2, options.EffectiveConcurrentBatches(new WorkerDevice(0)));
        Assert.Equal(1, options.EffectiveConcurrentBatches(WorkerDevice.Cpu));
        Assert.Null(options.IoBinding);
    }

    [Fact]
    public void ModelThreadsPerGpuAndConcurrentBatchesAreSettings()
    {
        var perGpu = Bind(new() { ["Workers:Devices:0"] = "0", ["Workers:ModelThreadsPerGpu"] = "3", ["Workers:IntraOpThreads"] = "1" });
        Assert.Equal(3, perGpu.EffectiveConcurrentBatches(new WorkerDevice(0)));
        Assert.Equal(Environment.ProcessorCount, perGpu.EffectiveConcurrentBatches(WorkerDevice.Cpu));

        var fixedCount = Bind(new() { ["Workers:Devices:0"] = "0", ["Workers:ConcurrentBatches"] = "4", ["Workers:IoBinding"] = "false" });
        Assert.Equal(4, fixedCount.EffectiveConcurrentBatches(new WorkerDevice(0)));
        Assert.Equal(4, fixedCount.EffectiveConcurrentBatches(WorkerDevice.Cpu));
        Assert.False(fixedCount.IoBinding);
    }

    [Fact]
    public void ZeroModelThreadsPerGpuIsAProblemNamingTheKey()
    {
        var options = Bind(new() { ["Workers:Devices:0"] = "0", ["Workers:ModelThreadsPerGpu"] = "0" });
        Assert.Contains("Workers:ModelThreadsPerGpu must be positive, not 0", options.Problems());
    }
}
