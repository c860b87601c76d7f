using System.Collections.Concurrent;
using HubertEcg.Inference.Ecg;
using HubertEcg.Inference.Model;
using HubertEcg.Inference.Preprocessing;

namespace HubertEcg.Worker;

/// <summary>Model windows by the inference library's preprocessing (<see cref="EcgPreprocessor"/>), one preprocessor per profile and window cap.</summary>
public sealed class PreprocessingWindowPreparer : IWindowPreparer
{
    private readonly ConcurrentDictionary<(PreprocessingProfile, int), EcgPreprocessor> _preprocessors = new();

    public float[] Prepare(EcgSignal signal, string profile, int maxWindows)
    {
        if (!PreprocessingProfiles.TryParse(profile, out var parsed))
        {
            throw new EcgFormatException(signal.RecordId, $"unknown preprocessing profile '{profile}' (known: {string.Join(", ", PreprocessingProfiles.Names)})");
        }

        var preprocessor = _preprocessors.GetOrAdd(
            (parsed, maxWindows),
            key => new EcgPreprocessor(new EcgPreprocessorOptions { Profile = key.Item1, MaxWindows = key.Item2 }));
        var windows = new float[checked(preprocessor.WindowCount(signal) * IEcgScorer.WindowLength)];
        preprocessor.Preprocess(signal, windows);
        return windows;
    }
}

/// <summary>
/// ONNX Runtime scorers (<see cref="OnnxEcgScorer"/>), opened once per model path and device and shared by the
/// workers of this silo. A CPU device uses the CPU execution provider; a GPU device is a CUDA device index, run with
/// that device's settings from <paramref name="cuda"/> (<c>Workers:Cuda</c>). <paramref name="allowSpinning"/> false
/// stops ONNX Runtime's idle threads from spinning, which leaves CPU to record reading, preprocessing and writes when
/// they share the cores with a CPU worker. <paramref name="ioBinding"/> (<c>Workers:IoBinding</c>) turns ONNX Runtime
/// I/O binding on or off; null leaves it to <see cref="ScorerOptions.UsesIoBinding"/> (on for CUDA only).
/// <paramref name="bindingMemory"/> (<c>Workers:IoBindingMemory</c>) says where bound tensors live; null leaves it to
/// <see cref="ScorerOptions.EffectiveBindingMemory"/> (device memory on CUDA, host memory on the CPU).
/// </summary>
public sealed class OnnxScorerProvider(int intraOpThreads = 0, bool allowSpinning = true, CudaWorkerOptions? cuda = null, bool? ioBinding = null, BoundMemory? bindingMemory = null) : IScorerProvider, IDisposable
{
    private readonly CudaWorkerOptions _cuda = cuda ?? new CudaWorkerOptions();

    private readonly ConcurrentDictionary<(string Path, WorkerDevice Device), Lazy<IEcgScorer>> _scorers = new();

    public IEcgScorer Get(string modelPath, WorkerDevice device) =>
        _scorers.GetOrAdd((Path.GetFullPath(modelPath), device), key => new Lazy<IEcgScorer>(() => Open(key.Path, key.Device))).Value;

    public void Dispose()
    {
        foreach (var scorer in _scorers.Values.Where(l => l.IsValueCreated))
        {
            scorer.Value.Dispose();
        }

        _scorers.Clear();
    }

    private OnnxEcgScorer Open(string path, WorkerDevice device)
    {
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"model file {path} does not exist on this silo", path);
        }

        var options = device.GpuIndex is { } index
            ? new ScorerOptions { Provider = ExecutionProviderKind.Cuda, Cuda = _cuda.For(index), IntraOpThreads = intraOpThreads, AllowSpinning = allowSpinning, IoBinding = ioBinding, BindingMemory = bindingMemory }
            : new ScorerOptions { Provider = ExecutionProviderKind.Cpu, IntraOpThreads = intraOpThreads, AllowSpinning = allowSpinning, IoBinding = ioBinding, BindingMemory = bindingMemory };
        return new OnnxEcgScorer(path, options);
    }
}
