using System.Reflection;
using Microsoft.ML.OnnxRuntime;

namespace HubertEcg.Inference.Model;

/// <summary>Which native ONNX Runtime package a build links (MSBuild property <c>OnnxRuntimeFlavor</c>).</summary>
public enum OnnxRuntimeFlavor
{
    /// <summary><c>Microsoft.ML.OnnxRuntime</c>: the CPU execution provider only (the default build).</summary>
    Cpu,

    /// <summary><c>Microsoft.ML.OnnxRuntime.Gpu.Linux</c>: the CUDA execution provider beside the CPU one.</summary>
    Gpu,
}

/// <summary>The ONNX Runtime flavour of this build and of the native library it actually loaded.</summary>
public static class OnnxRuntimeFlavors
{
    /// <summary>The name ONNX Runtime gives its CUDA execution provider.</summary>
    public const string CudaProviderName = "CUDAExecutionProvider";

    /// <summary>How to build the GPU flavour, for messages.</summary>
    public const string GpuBuildHint = "build the GPU flavour with `dotnet build -p:OnnxRuntimeFlavor=Gpu` (or `dotnet publish -p:OnnxRuntimeFlavor=Gpu`), which links Microsoft.ML.OnnxRuntime.Gpu.Linux";

    /// <summary>The flavour this assembly was built as (from its <c>OnnxRuntimeFlavor</c> assembly metadata).</summary>
    public static OnnxRuntimeFlavor Built { get; } = ReadBuilt(typeof(OnnxRuntimeFlavors).Assembly);

    /// <summary>
    /// Whether the native library that was loaded has the CUDA execution provider compiled in (its list of
    /// available providers names it; whether CUDA itself is installed is only known when the provider starts).
    /// </summary>
    public static bool LoadedLibraryHasCuda => OrtEnv.Instance().GetAvailableProviders().Contains(CudaProviderName, StringComparer.Ordinal);

    /// <summary>The native package of <paramref name="flavor"/>.</summary>
    public static string PackageOf(OnnxRuntimeFlavor flavor) =>
        flavor == OnnxRuntimeFlavor.Gpu ? "Microsoft.ML.OnnxRuntime.Gpu.Linux" : "Microsoft.ML.OnnxRuntime";

    internal static OnnxRuntimeFlavor ReadBuilt(Assembly assembly)
    {
        var value = assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
            .FirstOrDefault(a => a.Key == "OnnxRuntimeFlavor")?.Value;
        return Enum.TryParse<OnnxRuntimeFlavor>(value, ignoreCase: true, out var flavor)
            ? flavor
            : throw new InvalidOperationException($"assembly {assembly.GetName().Name} carries no OnnxRuntimeFlavor metadata (Directory.Build.props sets it)");
    }
}
