using System.Globalization;

namespace HubertEcg.Inference.Model;

/// <summary>How cuDNN picks a convolution algorithm (ONNX Runtime's <c>cudnn_conv_algo_search</c>).</summary>
public enum CudnnConvAlgoSearch
{
    /// <summary>Times every algorithm once per input shape and keeps the fastest (<c>EXHAUSTIVE</c>).</summary>
    Exhaustive,

    /// <summary>Takes cuDNN's guess without timing (<c>HEURISTIC</c>).</summary>
    Heuristic,

    /// <summary>Always the implicit-GEMM algorithm (<c>DEFAULT</c>).</summary>
    Default,
}

/// <summary>How ONNX Runtime's CUDA memory arena grows (<c>arena_extend_strategy</c>).</summary>
public enum ArenaExtendStrategy
{
    /// <summary>Each new chunk doubles the arena (<c>kNextPowerOfTwo</c>): few allocations, up to half of it unused.</summary>
    NextPowerOfTwo,

    /// <summary>Each new chunk is the size asked for (<c>kSameAsRequested</c>): no slack once batch shapes repeat.</summary>
    SameAsRequested,
}

/// <summary>
/// Settings of ONNX Runtime's CUDA execution provider for one scorer, with defaults chosen for batch scoring: batches
/// of a few fixed shapes through one long-lived session per GPU.
/// </summary>
public sealed record CudaProviderSettings
{
    /// <summary>CUDA device ordinal (<c>device_id</c>).</summary>
    public int DeviceId { get; init; }

    /// <summary>
    /// cuDNN algorithm choice (<c>cudnn_conv_algo_search</c>). Default <see cref="CudnnConvAlgoSearch.Exhaustive"/>:
    /// the search runs once per batch shape and a scoring session sees only a few shapes, so it pays for itself.
    /// </summary>
    public CudnnConvAlgoSearch CudnnConvAlgoSearch { get; init; } = CudnnConvAlgoSearch.Exhaustive;

    /// <summary>
    /// Whether fp32 matrix products and convolutions may use TF32 tensor cores (<c>use_tf32</c>). Default false (ONNX
    /// Runtime's default is true): TF32 keeps 10 mantissa bits, so scores move by about 1e-3 against the CPU; the
    /// fp32 model stays the exact reference. Turn it on for throughput when that difference is acceptable.
    /// </summary>
    public bool UseTf32 { get; init; }

    /// <summary>Most bytes the provider's arena may hold (<c>gpu_mem_limit</c>); 0 (the default) sets no limit.</summary>
    public long GpuMemLimit { get; init; }

    /// <summary>
    /// How the arena grows (<c>arena_extend_strategy</c>). Default <see cref="ArenaExtendStrategy.SameAsRequested"/>:
    /// scoring repeats the same allocations, so growing by exactly what is asked wastes nothing.
    /// </summary>
    public ArenaExtendStrategy ArenaExtendStrategy { get; init; } = ArenaExtendStrategy.SameAsRequested;

    /// <summary>
    /// Whether to capture the model in a CUDA graph and replay it (<c>enable_cuda_graph</c>). Default false. A replay
    /// reads and writes the device addresses of its capture, so the scorer needs I/O binding in device memory
    /// (<see cref="ScorerOptions.EffectiveBindingMemory"/> <see cref="BoundMemory.Device"/>, the default on CUDA); it
    /// gives each bound set its own graph id. ONNX Runtime refuses the session when the model cannot be captured (a
    /// node left on the CPU, control flow): <see cref="CudaGraphUnavailableException"/>.
    /// </summary>
    public bool EnableCudaGraph { get; init; }

    /// <summary>These settings as ONNX Runtime's CUDA provider option keys and values (for <c>OrtCUDAProviderOptions.UpdateOptions</c>).</summary>
    public Dictionary<string, string> ToProviderOptions()
    {
        var options = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["device_id"] = DeviceId.ToString(CultureInfo.InvariantCulture),
            ["cudnn_conv_algo_search"] = CudnnConvAlgoSearch switch
            {
                CudnnConvAlgoSearch.Exhaustive => "EXHAUSTIVE",
                CudnnConvAlgoSearch.Heuristic => "HEURISTIC",
                CudnnConvAlgoSearch.Default => "DEFAULT",
                _ => throw new ArgumentOutOfRangeException(nameof(CudnnConvAlgoSearch), CudnnConvAlgoSearch, "unknown cuDNN algorithm search"),
            },
            ["use_tf32"] = UseTf32 ? "1" : "0",
            ["arena_extend_strategy"] = ArenaExtendStrategy switch
            {
                ArenaExtendStrategy.NextPowerOfTwo => "kNextPowerOfTwo",
                ArenaExtendStrategy.SameAsRequested => "kSameAsRequested",
                _ => throw new ArgumentOutOfRangeException(nameof(ArenaExtendStrategy), ArenaExtendStrategy, "unknown arena extend strategy"),
            },
            ["enable_cuda_graph"] = EnableCudaGraph ? "1" : "0",
        };
        if (GpuMemLimit > 0)
        {
            options["gpu_mem_limit"] = GpuMemLimit.ToString(CultureInfo.InvariantCulture);
        }

        return options;
    }

    /// <summary>What is wrong with these settings, one line each; empty when ONNX Runtime can take them.</summary>
    public IReadOnlyList<string> Problems()
    {
        var problems = new List<string>();
        if (DeviceId < 0)
        {
            problems.Add($"CUDA device id must not be negative, not {DeviceId}");
        }

        if (GpuMemLimit < 0)
        {
            problems.Add($"GPU memory limit must not be negative (0: no limit), not {GpuMemLimit}");
        }

        if (!Enum.IsDefined(CudnnConvAlgoSearch) || !Enum.IsDefined(ArenaExtendStrategy))
        {
            problems.Add("unknown cuDNN algorithm search or arena extend strategy");
        }

        return problems;
    }
}
