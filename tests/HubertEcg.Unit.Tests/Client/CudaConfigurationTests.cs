using HubertEcg.Client.Commands;
using HubertEcg.Inference.Model;

namespace HubertEcg.Unit.Tests.Client;

/// <summary>
/// <c>bench model</c> and <c>model run</c> take their CUDA settings from <c>Workers:Cuda</c>, as a worker does; the GPU
/// device check (infra/gpu/device-check.sh) switches TF32 and CUDA graphs with these very <c>--set</c> arguments.
/// </summary>
public sealed class CudaConfigurationTests
{
    private static CudaProviderSettings SettingsOf(params string[] args)
    {
        var parseResult = Cli.BuildRoot().Parse(args);
        Assert.Empty(parseResult.Errors);
        return CudaConfiguration.For(Cli.Configuration(parseResult), 0);
    }

    [Fact]
    public void WithoutSettingsTheWorkersBatchScoringDefaultsApply()
    {
        Assert.Equal(new CudaProviderSettings(), SettingsOf("bench", "model", "--size", "small", "--provider", "cuda"));
    }

    [Fact]
    public void SetArgumentsSwitchTf32AndCudaGraphsForBenchAndRun()
    {
        var expected = new CudaProviderSettings { UseTf32 = true, EnableCudaGraph = true, CudnnConvAlgoSearch = CudnnConvAlgoSearch.Heuristic };
        string[] settings =
        [
            "--set", "Workers:Cuda:UseTf32=true", "--set", "Workers:Cuda:EnableCudaGraph=true", "--set", "Workers:Cuda:CudnnConvAlgoSearch=Heuristic",
        ];
        Assert.Equal(expected, SettingsOf(["bench", "model", "--model", "m.onnx", "--provider", "cuda", .. settings]));
        Assert.Equal(expected, SettingsOf(["model", "run", "--model", "m.onnx", "--input", "x.npy", "--out", "o", "--provider", "cuda", .. settings]));
    }

    [Fact]
    public void APerDeviceOverrideAppliesToItsDeviceOnly()
    {
        var parseResult = Cli.BuildRoot().Parse(["bench", "model", "--size", "small", "--set", "Workers:Cuda:PerDevice:1:UseTf32=true"]);
        var configuration = Cli.Configuration(parseResult);
        Assert.False(CudaConfiguration.For(configuration, 0).UseTf32);
        Assert.Equal(new CudaProviderSettings { DeviceId = 1, UseTf32 = true }, CudaConfiguration.For(configuration, 1));
    }
}
