using HubertEcg.Inference.Model;
using HubertEcg.Worker;
using Microsoft.Extensions.Configuration;

namespace HubertEcg.Unit.Tests.Worker;

/// <summary>The GPU workers' CUDA settings: <c>Workers:Cuda</c> for every GPU, <c>Workers:Cuda:PerDevice:N</c> for one.</summary>
public sealed class CudaWorkerOptionsTests
{
    private static WorkerOptions Bind(Dictionary<string, string?> settings) =>
        new ConfigurationBuilder().AddInMemoryCollection(settings).Build().GetSection(WorkerOptions.SectionName).Get<WorkerOptions>()
        ?? throw new InvalidOperationException("no Workers section");

    [Fact]
    public void UnconfiguredGpuWorkersGetTheBatchScoringDefaults()
    {
        var options = Bind(new() { ["Workers:Devices:0"] = "0" });
        Assert.Empty(options.Problems());
        Assert.Equal(new CudaProviderSettings { DeviceId = 0 }, options.Cuda.For(0));
        Assert.Equal(
            new CudaProviderSettings
            {
                DeviceId = 0,
                CudnnConvAlgoSearch = CudnnConvAlgoSearch.Exhaustive,
                UseTf32 = false,
                GpuMemLimit = 0,
                ArenaExtendStrategy = ArenaExtendStrategy.SameAsRequested,
                EnableCudaGraph = false,
            },
            options.Cuda.For(0));
    }

    [Fact]
    public void NodeWideSettingsApplyToEveryGpuAndPerDeviceOnesToTheirs()
    {
        var options = Bind(new()
        {
            ["Workers:Devices:0"] = "0",
            ["Workers:Devices:1"] = "1",
            ["Workers:Cuda:UseTf32"] = "true",
            ["Workers:Cuda:CudnnConvAlgoSearch"] = "Heuristic",
            ["Workers:Cuda:PerDevice:1:GpuMemLimit"] = "21474836480",
            ["Workers:Cuda:PerDevice:1:ArenaExtendStrategy"] = "NextPowerOfTwo",
            ["Workers:Cuda:PerDevice:1:UseTf32"] = "false",
        });
        Assert.Empty(options.Problems());
        Assert.Equal(
            new CudaProviderSettings { DeviceId = 0, UseTf32 = true, CudnnConvAlgoSearch = CudnnConvAlgoSearch.Heuristic },
            options.Cuda.For(0));
        Assert.Equal(
            new CudaProviderSettings
            {
                DeviceId = 1,
                UseTf32 = false,
                CudnnConvAlgoSearch = CudnnConvAlgoSearch.Heuristic,
                GpuMemLimit = 20L << 30,
                ArenaExtendStrategy = ArenaExtendStrategy.NextPowerOfTwo,
            },
            options.Cuda.For(1));
    }

    [Fact]
    public void SettingsThatCannotWorkAreNamedByKey()
    {
        var options = Bind(new()
        {
            ["Workers:Devices:0"] = "0",
            ["Workers:Devices:1"] = "cpu",
            ["Workers:Cuda:GpuMemLimit"] = "-1",
            ["Workers:Cuda:PerDevice:0:EnableCudaGraph"] = "true",
            ["Workers:Cuda:PerDevice:0:GpuMemLimit"] = "-2",
            ["Workers:Cuda:PerDevice:5:UseTf32"] = "true",
            ["Workers:Cuda:PerDevice:gpu0:UseTf32"] = "true",
            ["Workers:IoBindingMemory"] = "Host",
        });
        Assert.Equal(
            [
                "Workers:Cuda: GPU memory limit must not be negative (0: no limit), not -1",
                "Workers:Cuda:PerDevice:0: GPU memory limit must not be negative (0: no limit), not -2",
                "Workers:Cuda:PerDevice:5 names no GPU of Workers:Devices",
                "Workers:Cuda:PerDevice:gpu0 names no GPU of Workers:Devices",
                "Workers:Cuda:EnableCudaGraph (GPU 0): " + ScorerOptions.CudaGraphNeedsDeviceBinding,
            ],
            options.Problems());
    }

    [Theory]
    [InlineData(null, null, true)]
    [InlineData("true", "Device", true)]
    [InlineData("false", null, false)]
    [InlineData(null, "Host", false)]
    public void CudaGraphsAreTakenWhenGpuWorkersBindInDeviceMemory(string? ioBinding, string? memory, bool accepted)
    {
        var options = Bind(new()
        {
            ["Workers:Devices:0"] = "0",
            ["Workers:Devices:1"] = "1",
            ["Workers:Cuda:EnableCudaGraph"] = "true",
            ["Workers:IoBinding"] = ioBinding,
            ["Workers:IoBindingMemory"] = memory,
        });
        if (accepted)
        {
            Assert.Empty(options.Problems());
        }
        else
        {
            Assert.Equal(
                ["Workers:Cuda:EnableCudaGraph (GPU 0): " + ScorerOptions.CudaGraphNeedsDeviceBinding, "Workers:Cuda:EnableCudaGraph (GPU 1): " + ScorerOptions.CudaGraphNeedsDeviceBinding],
                options.Problems());
        }
    }

    [Fact]
    public void AGpuWorkerOnTheCpuFlavourFailsWithTheBuildHint()
    {
        // The unit tests are built as the CPU flavour (the default).
        Assert.Equal(OnnxRuntimeFlavor.Cpu, OnnxRuntimeFlavors.Built);
        var path = Path.Combine(Path.GetTempPath(), $"cuda-worker-{Guid.NewGuid():N}.onnx");
        File.WriteAllBytes(path, [1, 2, 3]);
        try
        {
            using var provider = new OnnxScorerProvider(cuda: new CudaWorkerOptions { UseTf32 = true });
            var e = Assert.Throws<ExecutionProviderUnavailableException>(() => provider.Get(path, new WorkerDevice(0)));
            Assert.Contains("-p:OnnxRuntimeFlavor=Gpu", e.Message, StringComparison.Ordinal);
            Assert.Equal($"ExecutionProviderUnavailableException: {e.Message}", SafeErrors.Describe(e));
        }
        finally
        {
            File.Delete(path);
        }
    }
}
