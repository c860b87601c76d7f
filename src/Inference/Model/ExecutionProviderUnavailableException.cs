using System.Text.RegularExpressions;

namespace HubertEcg.Inference.Model;

/// <summary>
/// The execution provider a scorer was asked for cannot run here: the build is the CPU flavour, or the CUDA and
/// cuDNN libraries the GPU flavour needs are missing, or no usable device was found. The message is one line that
/// says what is missing and what to do.
/// </summary>
public sealed partial class ExecutionProviderUnavailableException : Exception
{
    /// <summary>What a GPU node needs besides the GPU flavour, for messages.</summary>
    public const string CudaInstallHint =
        "install the CUDA 13 runtime (cudart, cuBLAS, cuRAND) and cuDNN 9 and put their library folders on LD_LIBRARY_PATH " +
        "(for example /usr/local/cuda-13/lib64), or score on the CPU (Workers:Devices = cpu)";

    public ExecutionProviderUnavailableException()
    {
    }

    public ExecutionProviderUnavailableException(string message)
        : base(message)
    {
    }

    public ExecutionProviderUnavailableException(string message, Exception? inner)
        : base(message, inner)
    {
    }

    /// <summary>The shared library the loader could not find, when the error names one (e.g. <c>libcublasLt.so.13</c>).</summary>
    public string? MissingLibrary { get; private init; }

    /// <summary>CUDA was asked of a CPU-flavour build.</summary>
    public static ExecutionProviderUnavailableException CpuFlavor() => new(
        $"The CUDA execution provider was requested, but this build is the CPU flavour ({OnnxRuntimeFlavors.PackageOf(OnnxRuntimeFlavor.Cpu)}): " +
        $"{OnnxRuntimeFlavors.GpuBuildHint}, or use the CPU provider");

    /// <summary>
    /// A GPU-flavour build whose loaded native library has no CUDA provider: both native packages were referenced
    /// and the CPU library won the load.
    /// </summary>
    public static ExecutionProviderUnavailableException CpuLibraryLoaded() => new(
        $"The CUDA execution provider was requested, but the ONNX Runtime library that was loaded has none: the build must reference " +
        $"{OnnxRuntimeFlavors.PackageOf(OnnxRuntimeFlavor.Gpu)} only, not {OnnxRuntimeFlavors.PackageOf(OnnxRuntimeFlavor.Cpu)} beside it");

    /// <summary>
    /// One line for an ONNX Runtime error raised while the CUDA provider for <paramref name="deviceId"/> was set up or
    /// started: the missing library when the loader names one, else ONNX Runtime's own first line; then what to install.
    /// </summary>
    public static ExecutionProviderUnavailableException FromCudaError(int deviceId, Exception error)
    {
        var text = error.Message ?? "";
        var missing = MissingLibraryPattern().Match(text) is { Success: true } match ? match.Groups["lib"].Value : null;
        var what = missing is not null
            ? $"{missing} was not found"
            : FirstLine(text);
        // The provider library itself belongs to the GPU flavour's package, not to the CUDA installation.
        var hint = missing?.StartsWith("libonnxruntime", StringComparison.Ordinal) == true
            ? $"it ships with {OnnxRuntimeFlavors.PackageOf(OnnxRuntimeFlavor.Gpu)}: publish with -p:OnnxRuntimeFlavor=Gpu so that it lies beside the program"
            : CudaInstallHint;
        return new ExecutionProviderUnavailableException(
            $"The CUDA execution provider for device {deviceId} cannot start: {what}; {hint}", error)
        {
            MissingLibrary = missing,
        };
    }

    private static string FirstLine(string text)
    {
        var line = text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).FirstOrDefault() ?? "";
        return line.Length == 0 ? "ONNX Runtime gave no reason" : line.TrimEnd('.');
    }

    // glibc's loader: "libcublasLt.so.13: cannot open shared object file: No such file or directory".
    [GeneratedRegex(@"(?<lib>lib[A-Za-z0-9_+\-]+\.so(\.[0-9]+)*): cannot open shared object file")]
    private static partial Regex MissingLibraryPattern();
}
