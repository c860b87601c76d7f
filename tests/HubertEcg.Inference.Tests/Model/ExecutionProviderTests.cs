using System.Reflection;
using System.Runtime.InteropServices;
using HubertEcg.Inference.Model;
using HubertEcg.Inference.Onnx;
using Xunit.Abstractions;

namespace HubertEcg.Inference.Tests.Model;

/// <summary>
/// The ONNX Runtime flavours and the CUDA provider's errors. The test command runs this project twice, built as the
/// CPU flavour and as the GPU flavour (<c>-p:OnnxRuntimeFlavor=Gpu</c>); the GPU flavour's runs on machines without
/// CUDA prove its CPU provider scores and that asking it for CUDA says in one line what is missing.
/// </summary>
public sealed class ExecutionProviderTests(ITestOutputHelper output) : IDisposable
{
    private readonly TempDir _temp = new();

    public void Dispose() => _temp.Dispose();

    [Fact]
    public void TheLoadedNativeLibraryIsTheBuiltFlavours()
    {
        // This assembly and the inference library were built as one flavour, and the native library that loaded is
        // that flavour's: a GPU build that also referenced the CPU package would load the CPU library and fail here.
        var testFlavour = typeof(ExecutionProviderTests).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().Single(a => a.Key == "OnnxRuntimeFlavor").Value;
        Assert.Equal(OnnxRuntimeFlavors.Built.ToString(), testFlavour);
        Assert.Equal(OnnxRuntimeFlavors.Built == OnnxRuntimeFlavor.Gpu, OnnxRuntimeFlavors.LoadedLibraryHasCuda);
        output.WriteLine($"flavour {OnnxRuntimeFlavors.Built}, providers: {string.Join(", ", Microsoft.ML.OnnxRuntime.OrtEnv.Instance().GetAvailableProviders())}");
    }

    [Fact]
    public void CudaOnTheCpuFlavourSaysHowToBuildTheGpuFlavour()
    {
        var e = Assert.Throws<ExecutionProviderUnavailableException>(() => OnnxEcgScorer.EnsureProviderAvailable(ExecutionProviderKind.Cuda, OnnxRuntimeFlavor.Cpu));
        Assert.Contains("this build is the CPU flavour (Microsoft.ML.OnnxRuntime)", e.Message, StringComparison.Ordinal);
        Assert.Contains("dotnet build -p:OnnxRuntimeFlavor=Gpu", e.Message, StringComparison.Ordinal);
        Assert.Contains("Microsoft.ML.OnnxRuntime.Gpu.Linux", e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', e.Message);
        OnnxEcgScorer.EnsureProviderAvailable(ExecutionProviderKind.Cpu, OnnxRuntimeFlavor.Cpu);
        OnnxEcgScorer.EnsureProviderAvailable(ExecutionProviderKind.Cpu, OnnxRuntimeFlavor.Gpu);
    }

    [Fact]
    public void AskingThisBuildForCudaWithoutCudaGivesOneClearLine()
    {
        var path = _temp.File("tiny.onnx");
        HubertOnnxExporter.Export(RandomModelFactory.Create(HubertArchitecture.Tiny(), labels: 3, seed: 5), path);
        var options = new ScorerOptions { Provider = ExecutionProviderKind.Cuda, Cuda = new CudaProviderSettings { DeviceId = 0 } };
        if (OnnxRuntimeFlavors.Built == OnnxRuntimeFlavor.Cpu)
        {
            var cpu = Assert.Throws<ExecutionProviderUnavailableException>(() => new OnnxEcgScorer(path, options));
            Assert.Contains("CPU flavour", cpu.Message, StringComparison.Ordinal);
            Assert.Contains("-p:OnnxRuntimeFlavor=Gpu", cpu.Message, StringComparison.Ordinal);
            return;
        }

        if (NativeLibrary.TryLoad("libcudart.so.13", out var cudart))
        {
            // A machine with the CUDA 13 runtime (a GPU node, not CI): CUDA either scores like the CPU or says in one line why not.
            NativeLibrary.Free(cudart);
            CudaScoresLikeTheCpuOrSaysWhyNot(path, options);
            return;
        }

        // The GPU flavour on a machine without CUDA (CI): the CUDA provider's libraries are missing.
        var e = Assert.Throws<ExecutionProviderUnavailableException>(() => new OnnxEcgScorer(path, options));
        output.WriteLine(e.Message);
        Assert.DoesNotContain('\n', e.Message);
        Assert.StartsWith("The CUDA execution provider for device 0 cannot start: ", e.Message, StringComparison.Ordinal);
        Assert.NotNull(e.MissingLibrary);
        Assert.Matches(@"^lib(cudart|cublas|cublasLt|curand|cudnn)[A-Za-z0-9_]*\.so\.[0-9]+$", e.MissingLibrary);
        Assert.Contains($"{e.MissingLibrary} was not found", e.Message, StringComparison.Ordinal);
        Assert.Contains("CUDA 13 runtime", e.Message, StringComparison.Ordinal);
        Assert.Contains("cuDNN 9", e.Message, StringComparison.Ordinal);
        Assert.Contains("LD_LIBRARY_PATH", e.Message, StringComparison.Ordinal);
        Assert.IsType<Microsoft.ML.OnnxRuntime.OnnxRuntimeException>(e.InnerException);
    }

    private void CudaScoresLikeTheCpuOrSaysWhyNot(string path, ScorerOptions cudaOptions)
    {
        var windows = ModelTestSupport.Input("tiny-pretrained");
        OnnxEcgScorer cuda;
        try
        {
            cuda = new OnnxEcgScorer(path, cudaOptions);
        }
        catch (ExecutionProviderUnavailableException e)
        {
            output.WriteLine(e.Message);
            Assert.DoesNotContain('\n', e.Message);
            Assert.StartsWith("The CUDA execution provider for device 0 cannot start: ", e.Message, StringComparison.Ordinal);
            return;
        }

        using (cuda)
        using (var cpu = new OnnxEcgScorer(path, new ScorerOptions { IntraOpThreads = 1 }))
        {
            var (gpuEmbeddings, gpuProbabilities) = (new float[4 * cuda.Model.HiddenSize], new float[4 * 3]);
            var (cpuEmbeddings, cpuProbabilities) = (new float[4 * cpu.Model.HiddenSize], new float[4 * 3]);
            cuda.Score(windows, 4, gpuEmbeddings, gpuProbabilities);
            cpu.Score(windows, 4, cpuEmbeddings, cpuProbabilities);
            for (var i = 0; i < cpuProbabilities.Length; i++)
            {
                Assert.InRange(Math.Abs(gpuProbabilities[i] - cpuProbabilities[i]), 0, 1e-4);
            }
        }
    }

    [Theory]
    [InlineData(
        "[ErrorCode:Fail] Failed to load library libonnxruntime_providers_cuda.so with error: libcublasLt.so.13: cannot open shared object file: No such file or directory",
        "libcublasLt.so.13")]
    [InlineData("libcudnn_graph.so.9: cannot open shared object file: No such file or directory", "libcudnn_graph.so.9")]
    public void LoaderErrorsNameTheMissingLibraryAndWhatToInstall(string ortMessage, string library)
    {
        var e = ExecutionProviderUnavailableException.FromCudaError(1, new InvalidOperationException(ortMessage));
        Assert.Equal(library, e.MissingLibrary);
        Assert.Equal(
            $"The CUDA execution provider for device 1 cannot start: {library} was not found; {ExecutionProviderUnavailableException.CudaInstallHint}",
            e.Message);
    }

    [Fact]
    public void AMissingProviderLibraryPointsAtThePackageNotAtCuda()
    {
        var e = ExecutionProviderUnavailableException.FromCudaError(0, new InvalidOperationException(
            "Failed to load library libonnxruntime_providers_cuda.so: cannot open shared object file: No such file or directory"));
        Assert.Equal("libonnxruntime_providers_cuda.so", e.MissingLibrary);
        Assert.Contains("Microsoft.ML.OnnxRuntime.Gpu.Linux", e.Message, StringComparison.Ordinal);
        Assert.Contains("-p:OnnxRuntimeFlavor=Gpu", e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("CUDA 13", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void OtherCudaErrorsKeepOnlyTheirFirstLine()
    {
        var e = ExecutionProviderUnavailableException.FromCudaError(3, new InvalidOperationException(
            "CUDA failure 100: no CUDA-capable device is detected ; GPU=3 ; hostname=n1 ; file=cuda_call.cc ; line=123 ; expr=cudaSetDevice(info_.device_id);\n\nstack trace"));
        Assert.Null(e.MissingLibrary);
        Assert.DoesNotContain('\n', e.Message);
        Assert.StartsWith("The CUDA execution provider for device 3 cannot start: CUDA failure 100: no CUDA-capable device is detected", e.Message, StringComparison.Ordinal);
        Assert.EndsWith(ExecutionProviderUnavailableException.CudaInstallHint, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void CudaSettingsDefaultsSuitBatchScoring()
    {
        Assert.Equal(
            new Dictionary<string, string>
            {
                ["device_id"] = "0",
                ["cudnn_conv_algo_search"] = "EXHAUSTIVE",
                ["use_tf32"] = "0",
                ["arena_extend_strategy"] = "kSameAsRequested",
                ["enable_cuda_graph"] = "0",
            },
            new CudaProviderSettings().ToProviderOptions());
        Assert.Empty(new CudaProviderSettings().Problems());
    }

    [Fact]
    public void CudaSettingsBecomeOnnxRuntimeKeys()
    {
        var settings = new CudaProviderSettings
        {
            DeviceId = 2,
            CudnnConvAlgoSearch = CudnnConvAlgoSearch.Heuristic,
            UseTf32 = true,
            GpuMemLimit = 40L << 30,
            ArenaExtendStrategy = ArenaExtendStrategy.NextPowerOfTwo,
        };
        Assert.Equal(
            new Dictionary<string, string>
            {
                ["device_id"] = "2",
                ["cudnn_conv_algo_search"] = "HEURISTIC",
                ["use_tf32"] = "1",
                ["gpu_mem_limit"] = "42949672960",
                ["arena_extend_strategy"] = "kNextPowerOfTwo",
                ["enable_cuda_graph"] = "0",
            },
            settings.ToProviderOptions());
        Assert.Equal("DEFAULT", (settings with { CudnnConvAlgoSearch = CudnnConvAlgoSearch.Default }).ToProviderOptions()["cudnn_conv_algo_search"]);
    }

    [Fact]
    public void CudaSettingsThatCannotWorkAreRefusedBeforeOnnxRuntimeSeesThem()
    {
        var bad = new CudaProviderSettings { DeviceId = -1, GpuMemLimit = -5, EnableCudaGraph = true };
        Assert.Equal(
            [
                "CUDA device id must not be negative, not -1",
                "GPU memory limit must not be negative (0: no limit), not -5",
            ],
            bad.Problems());
        using var sessionOptions = new Microsoft.ML.OnnxRuntime.SessionOptions();
        var e = Assert.Throws<ArgumentException>(() => OnnxEcgScorer.AppendCuda(sessionOptions, bad));
        Assert.Contains("GPU memory limit must not be negative", e.Message, StringComparison.Ordinal);

        // CUDA graphs themselves are settings the provider takes; what they need of the scorer is its options' check.
        Assert.Empty(new CudaProviderSettings { EnableCudaGraph = true }.Problems());
    }

    [Fact]
    public void AModelOnnxRuntimeCannotCaptureIsNamedOnOneLineWithItsReason()
    {
        // ONNX Runtime's refusal is multi-line at most in its trailer; the first line is the reason.
        var refusal = new InvalidOperationException(
            "This session cannot use the graph capture feature as requested by the user as all compute graph nodes have not been partitioned to the CUDAExecutionProvider.\nstack frame");
        var e = new CudaGraphUnavailableException("/models/small.onnx", 1, refusal);
        Assert.Equal(
            "The model /models/small.onnx cannot be captured in a CUDA graph on device 1: ONNX Runtime says \"This session cannot use the graph " +
            "capture feature as requested by the user as all compute graph nodes have not been partitioned to the CUDAExecutionProvider\"; CUDA " +
            "graphs need every node on the CUDA provider (no CPU fallback, no control flow), fixed input shapes and inputs and outputs bound at " +
            "fixed device addresses: turn Workers:Cuda:EnableCudaGraph off for this model",
            e.Message);
        Assert.Same(refusal, e.InnerException);
    }
}
