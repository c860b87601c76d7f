using System.Globalization;
using HubertEcg.Inference.Model;

namespace HubertEcg.Worker;

/// <summary>
/// CUDA execution provider settings of a silo's GPU workers. Section <c>Workers:Cuda</c> holds the settings of every GPU
/// worker; <c>Workers:Cuda:PerDevice:&lt;index&gt;</c> overrides any of them for the worker of one GPU (its device id is
/// the worker's entry in <c>Workers:Devices</c>). Defaults are <see cref="CudaProviderSettings"/>'s, chosen for batch
/// scoring.
/// </summary>
public sealed class CudaWorkerOptions
{
    private static readonly CudaProviderSettings Defaults = new();

    /// <summary>cuDNN convolution algorithm search (<c>cudnn_conv_algo_search</c>): Exhaustive (default), Heuristic or Default.</summary>
    public CudnnConvAlgoSearch CudnnConvAlgoSearch { get; set; } = Defaults.CudnnConvAlgoSearch;

    /// <summary>TF32 tensor cores for fp32 models (<c>use_tf32</c>); default false.</summary>
    public bool UseTf32 { get; set; } = Defaults.UseTf32;

    /// <summary>Largest CUDA memory arena in bytes (<c>gpu_mem_limit</c>); 0 (default) sets no limit.</summary>
    public long GpuMemLimit { get; set; } = Defaults.GpuMemLimit;

    /// <summary>Arena growth (<c>arena_extend_strategy</c>): SameAsRequested (default) or NextPowerOfTwo.</summary>
    public ArenaExtendStrategy ArenaExtendStrategy { get; set; } = Defaults.ArenaExtendStrategy;

    /// <summary>
    /// CUDA graph capture and replay (<c>enable_cuda_graph</c>); default false. Needs I/O binding in device memory
    /// (<c>Workers:IoBinding</c> and <c>Workers:IoBindingMemory</c> unset, or true and Device).
    /// </summary>
    public bool EnableCudaGraph { get; set; } = Defaults.EnableCudaGraph;

    /// <summary>Settings for the worker of one GPU, keyed by its index as written in <c>Workers:Devices</c>; unset keys keep the values above.</summary>
    public Dictionary<string, CudaDeviceOverrides> PerDevice { get; set; } = new(StringComparer.Ordinal);

    /// <summary>The provider settings of the worker on GPU <paramref name="deviceIndex"/>.</summary>
    public CudaProviderSettings For(int deviceIndex)
    {
        var over = PerDevice.TryGetValue(deviceIndex.ToString(CultureInfo.InvariantCulture), out var found) ? found : new CudaDeviceOverrides();
        return new CudaProviderSettings
        {
            DeviceId = deviceIndex,
            CudnnConvAlgoSearch = over.CudnnConvAlgoSearch ?? CudnnConvAlgoSearch,
            UseTf32 = over.UseTf32 ?? UseTf32,
            GpuMemLimit = over.GpuMemLimit ?? GpuMemLimit,
            ArenaExtendStrategy = over.ArenaExtendStrategy ?? ArenaExtendStrategy,
            EnableCudaGraph = over.EnableCudaGraph ?? EnableCudaGraph,
        };
    }

    /// <summary>What is wrong with these settings for the GPUs in <paramref name="devices"/>, one line each naming the key.</summary>
    public IReadOnlyList<string> Problems(IEnumerable<WorkerDevice> devices)
    {
        var problems = new List<string>();
        var gpus = devices.Where(d => d.GpuIndex is not null).Select(d => d.GpuIndex!.Value).ToHashSet();
        var nodeWide = new CudaWorkerOptions
        {
            CudnnConvAlgoSearch = CudnnConvAlgoSearch,
            UseTf32 = UseTf32,
            GpuMemLimit = GpuMemLimit,
            ArenaExtendStrategy = ArenaExtendStrategy,
            EnableCudaGraph = EnableCudaGraph,
        }.For(0).Problems();
        problems.AddRange(nodeWide.Select(p => $"Workers:Cuda: {p}"));
        foreach (var key in PerDevice.Keys.Order(StringComparer.Ordinal))
        {
            if (!int.TryParse(key, NumberStyles.None, CultureInfo.InvariantCulture, out var index) || !gpus.Contains(index))
            {
                problems.Add($"Workers:Cuda:PerDevice:{key} names no GPU of Workers:Devices");
                continue;
            }

            // What the override itself gets wrong; a node-wide problem it leaves alone is reported once, above.
            problems.AddRange(For(index).Problems().Except(nodeWide, StringComparer.Ordinal).Select(p => $"Workers:Cuda:PerDevice:{key}: {p}"));
        }

        return problems;
    }
}

/// <summary>Settings of one GPU's worker that differ from <c>Workers:Cuda</c>'s; an unset key keeps the node-wide value.</summary>
public sealed class CudaDeviceOverrides
{
    public CudnnConvAlgoSearch? CudnnConvAlgoSearch { get; set; }

    public bool? UseTf32 { get; set; }

    public long? GpuMemLimit { get; set; }

    public ArenaExtendStrategy? ArenaExtendStrategy { get; set; }

    public bool? EnableCudaGraph { get; set; }
}
