using HubertEcg.Inference.Model;
using HubertEcg.Worker;
using Microsoft.Extensions.Configuration;

namespace HubertEcg.Client.Commands;

/// <summary>
/// The CUDA provider settings of the commands that run a model on a GPU (<c>bench model</c>, <c>model run</c>): the
/// same <c>Workers:Cuda</c> section a silo's GPU workers read (<see cref="CudaWorkerOptions"/>, its <c>PerDevice</c>
/// overrides included), so a benchmark measures exactly what a worker would run, e.g.
/// <c>--set Workers:Cuda:UseTf32=true --set Workers:Cuda:EnableCudaGraph=true</c>.
/// </summary>
public static class CudaConfiguration
{
    /// <summary>The settings a worker on GPU <paramref name="deviceId"/> would use under <paramref name="configuration"/>.</summary>
    public static CudaProviderSettings For(IConfiguration configuration, int deviceId)
    {
        var section = configuration.GetSection(WorkerOptions.SectionName).GetSection(nameof(WorkerOptions.Cuda));
        var options = section.Get<CudaWorkerOptions>() ?? new CudaWorkerOptions();
        return options.For(deviceId);
    }
}
