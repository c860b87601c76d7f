using System.Collections.Concurrent;
using System.Numerics;
using HubertEcg.Inference.Onnx;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace HubertEcg.Inference.Model;

/// <summary>Where ONNX Runtime runs the model.</summary>
public enum ExecutionProviderKind
{
    Cpu,
    Cuda,
}

/// <summary>Where the tensors an <see cref="OnnxEcgScorer"/> binds with I/O binding live.</summary>
public enum BoundMemory
{
    /// <summary>
    /// Host memory: page-locked buffers from the CUDA provider's pinned allocator on CUDA (ONNX Runtime copies them to
    /// and from the device inside each run), GC-pinned managed arrays on the CPU.
    /// </summary>
    Host,

    /// <summary>
    /// The provider's device memory, allocated once with the session's allocator (CUDA device memory; host memory on
    /// the CPU provider): each batch is copied in from a host buffer before the run and the outputs back after it, by
    /// ONNX Runtime. The bound addresses never change, which CUDA graphs need.
    /// </summary>
    Device,
}

/// <summary>Options of an <see cref="OnnxEcgScorer"/>.</summary>
public sealed record ScorerOptions
{
    public const int DefaultMaxBatch = 32;

    public ExecutionProviderKind Provider { get; init; } = ExecutionProviderKind.Cpu;

    /// <summary>CUDA execution provider settings, the device among them (CUDA only).</summary>
    public CudaProviderSettings Cuda { get; init; } = new();

    /// <summary>Threads ONNX Runtime uses inside one operator; 0 lets ONNX Runtime choose (one per physical core).</summary>
    public int IntraOpThreads { get; init; }

    /// <summary>Threads ONNX Runtime uses across operators; 0 lets ONNX Runtime choose.</summary>
    public int InterOpThreads { get; init; }

    /// <summary>Largest batch sent to ONNX Runtime in one run; bigger requests are split.</summary>
    public int MaxBatch { get; init; } = DefaultMaxBatch;

    /// <summary>
    /// Whether runs go through ONNX Runtime I/O binding (<c>RunWithBinding</c>) over fixed-shape batches: null (the
    /// default) turns it on for CUDA and off for the CPU. See <see cref="OnnxEcgScorer"/>.
    /// </summary>
    public bool? IoBinding { get; init; }

    /// <summary>Whether this scorer binds I/O: <see cref="IoBinding"/>, or by default only for CUDA.</summary>
    public bool UsesIoBinding => IoBinding ?? Provider == ExecutionProviderKind.Cuda;

    /// <summary>
    /// Where bound tensors live when <see cref="UsesIoBinding"/>: null (the default) is <see cref="BoundMemory.Device"/>
    /// on CUDA and <see cref="BoundMemory.Host"/> on the CPU (where device memory is host memory and the extra copies
    /// buy nothing; the tests ask for <see cref="BoundMemory.Device"/> on the CPU to run the GPU path's copies).
    /// </summary>
    public BoundMemory? BindingMemory { get; init; }

    /// <summary><see cref="BindingMemory"/>, or its default for <see cref="Provider"/>.</summary>
    public BoundMemory EffectiveBindingMemory => BindingMemory ?? (Provider == ExecutionProviderKind.Cuda ? BoundMemory.Device : BoundMemory.Host);

    /// <summary>Whether runs replay CUDA graphs: the CUDA provider with <see cref="CudaProviderSettings.EnableCudaGraph"/>.</summary>
    public bool UsesCudaGraph => Provider == ExecutionProviderKind.Cuda && Cuda.EnableCudaGraph;

    /// <summary>What is wrong with these options, one line each; empty when a scorer can use them.</summary>
    public IReadOnlyList<string> Problems()
    {
        var problems = new List<string>();
        if (MaxBatch < 1)
        {
            problems.Add($"the largest batch must be at least 1, not {MaxBatch}");
        }

        if (BindingMemory is { } memory && !Enum.IsDefined(memory))
        {
            problems.Add($"unknown I/O binding memory {memory}");
        }

        if (UsesCudaGraph && !(UsesIoBinding && EffectiveBindingMemory == BoundMemory.Device))
        {
            problems.Add(CudaGraphNeedsDeviceBinding);
        }

        return problems;
    }

    /// <summary>Why CUDA graphs are refused without I/O binding in device memory.</summary>
    public const string CudaGraphNeedsDeviceBinding =
        "CUDA graphs replay at the device addresses they were captured with, so they need I/O binding in device memory: " +
        "leave Workers:IoBinding and Workers:IoBindingMemory unset (or true and Device), or turn EnableCudaGraph off";

    public GraphOptimizationLevel OptimizationLevel { get; init; } = GraphOptimizationLevel.ORT_ENABLE_ALL;

    /// <summary>
    /// Whether idle intra-op threads spin waiting for work (ONNX Runtime's default). Turn off on machines shared
    /// with other busy processes, where spinning burns cores others need.
    /// </summary>
    public bool AllowSpinning { get; init; } = true;

    /// <summary>When set, ONNX Runtime's profiler writes a JSON trace starting with this prefix (see <see cref="OnnxEcgScorer.EndProfiling"/>).</summary>
    public string? ProfilePrefix { get; init; }
}

/// <summary>All outputs of one run, for inspection (<c>model run</c>, tests); scoring uses <see cref="OnnxEcgScorer.Score"/>.</summary>
public sealed record ModelOutputs(int Batch, int Frames, int HiddenSize, int LabelCount, float[] Embedding, float[]? Logits, float[]? Probabilities, float[]? LastHiddenState);

/// <summary>
/// Scores windows with an exported HuBERT-ECG ONNX model: one long-lived ONNX Runtime session, OrtValues bound to
/// pooled buffers, so steady-state scoring allocates nothing. Thread-safe: concurrent calls each take their own buffer
/// set.
/// <para>
/// Without I/O binding a buffer set exists per batch size seen and runs take exactly the windows given. With I/O
/// binding (<see cref="ScorerOptions.UsesIoBinding"/>) every run has a fixed shape: the batch size rounded up to a
/// power of two, at most <see cref="ScorerOptions.MaxBatch"/> (so a steady stream of full batches is one shape, and a
/// short last batch one of a few more). The windows are copied into a preallocated input buffer, the rows past them
/// are zeroed, and the padded rows' outputs are dropped (each window is scored on its own, so padding changes nothing
/// else). Each set's input and output OrtValues are bound once into an <see cref="OrtIoBinding"/> and reused for every
/// run: a set is taken by one caller at a time, so a worker's model threads each end up with sets of their own.
/// </para>
/// <para>
/// Where the bound tensors live is <see cref="ScorerOptions.EffectiveBindingMemory"/>. In host memory (page-locked
/// buffers from the CUDA provider's pinned allocator on CUDA, GC-pinned managed arrays on the CPU) ONNX Runtime copies
/// them to and from the device inside each run. In device memory (the default on CUDA) the set also holds device
/// tensors from the session's allocator, bound instead: the windows go into the set's host input buffer, ONNX Runtime
/// copies it to the device tensor, the model runs on the bound device tensors, and ONNX Runtime copies the outputs back
/// to the set's host output buffers. The copies run a one-node copy model (<see cref="OnnxCopyModel"/>) in a second
/// session of the same provider, with its own bindings per set, so they are ONNX Runtime's data transfers on every
/// provider: on the CPU provider the "device" is host memory and the same code runs with CPU copies. Bound device
/// addresses never change, which is what CUDA graphs (<see cref="CudaProviderSettings.EnableCudaGraph"/>) need: each
/// set then carries its own graph id (<c>gpu_graph_id</c>), so every fixed shape and address is captured once and
/// replayed after, and a set's copy-in, run and copy-out hold the scorer's graph lock so a capture never overlaps
/// other CUDA work of this scorer.
/// </para>
/// </summary>
public sealed class OnnxEcgScorer : IEcgScorer
{

    private readonly InferenceSession _session;
    private readonly ScorerOptions _options;
    private readonly ConcurrentDictionary<int, ConcurrentBag<BufferSet>> _pool = new();
    private readonly ConcurrentDictionary<int, ConcurrentBag<BoundSet>> _bound = new();
    private readonly OrtAllocator? _pinned;
    private readonly OrtAllocator? _device;
    private readonly InferenceSession? _copySession;
    private readonly Lock _graphLock = new();
    private int _graphIds;
    private readonly string[] _inputNames = [HubertOnnxExporter.InputName];
    private readonly string[] _scoreOutputs;
    private bool _disposed;

    public OnnxEcgScorer(string modelPath, ScorerOptions? options = null)
    {
        _options = options ?? new ScorerOptions();
        if (_options.Problems() is { Count: > 0 } optionProblems)
        {
            throw new ArgumentException($"scorer options: {string.Join("; ", optionProblems)}", nameof(options));
        }

        EnsureProviderAvailable(_options.Provider, OnnxRuntimeFlavors.Built);
        Model = OnnxModelMetadata.ReadDescriptor(modelPath);
        FramesPerWindow = HubertArchitecture.FromConfigJson(Model.ArchitectureJson, modelPath).FramesFor(IEcgScorer.WindowLength);
        using var sessionOptions = new SessionOptions
        {
            GraphOptimizationLevel = _options.OptimizationLevel,
            ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
            IntraOpNumThreads = _options.IntraOpThreads,
            InterOpNumThreads = _options.InterOpThreads,
        };
        if (!_options.AllowSpinning)
        {
            sessionOptions.AddSessionConfigEntry("session.intra_op.allow_spinning", "0");
        }

        if (_options.ProfilePrefix is { } prefix)
        {
            // The prefix must be set before profiling is switched on: ONNX Runtime takes it when enabling.
            sessionOptions.ProfileOutputPathPrefix = prefix;
            sessionOptions.EnableProfiling = true;
        }

        if (_options.Provider == ExecutionProviderKind.Cuda)
        {
            AppendCuda(sessionOptions, _options.Cuda);
        }

        try
        {
            _session = new InferenceSession(modelPath, sessionOptions);
        }
        catch (OnnxRuntimeException e) when (_options.Provider == ExecutionProviderKind.Cuda && IsCudaStartError(e))
        {
            // cuDNN loads lazily and the device is opened here: a missing cuDNN or an absent GPU surfaces now.
            throw ExecutionProviderUnavailableException.FromCudaError(_options.Cuda.DeviceId, e);
        }
        catch (OnnxRuntimeException e) when (_options.UsesCudaGraph && IsGraphCaptureRefusal(e))
        {
            throw new CudaGraphUnavailableException(modelPath, _options.Cuda.DeviceId, e);
        }
        catch (OnnxRuntimeException e)
        {
            throw new CheckpointFormatException(modelPath, null, $"ONNX Runtime cannot load the model: {e.Message}", e);
        }

        var outputs = _session.OutputMetadata.Keys.ToHashSet(StringComparer.Ordinal);
        if (!outputs.Contains(HubertOnnxExporter.EmbeddingName) || (Model.LabelCount > 0 && !outputs.Contains(HubertOnnxExporter.ProbabilitiesName)))
        {
            _session.Dispose();
            throw new CheckpointFormatException(modelPath, null, $"model lacks the '{HubertOnnxExporter.EmbeddingName}' or '{HubertOnnxExporter.ProbabilitiesName}' output its metadata promises");
        }

        _scoreOutputs = Model.LabelCount > 0 ? [HubertOnnxExporter.EmbeddingName, HubertOnnxExporter.ProbabilitiesName] : [HubertOnnxExporter.EmbeddingName];
        if (_options.UsesIoBinding && _options.Provider == ExecutionProviderKind.Cuda)
        {
            _pinned = TryPinnedAllocator(_session, _options.Cuda.DeviceId);
        }

        if (_options.UsesIoBinding && _options.EffectiveBindingMemory == BoundMemory.Device)
        {
            try
            {
                _device = DeviceAllocator(_session, _options);
                _copySession = OpenCopySession(_options);
            }
            catch
            {
                _device?.Dispose();
                _pinned?.Dispose();
                _session.Dispose();
                throw;
            }
        }

        var host = _pinned is not null ? "CUDA pinned host memory" : "GC-pinned managed memory";
        BindingDescription = !_options.UsesIoBinding ? "none (no I/O binding)"
            : _device is null ? host
            : _options.Provider == ExecutionProviderKind.Cuda
                ? $"CUDA device memory, copied from and to {host} by ONNX Runtime{(_options.UsesCudaGraph ? ", CUDA graphs" : "")}"
                : $"CPU provider device memory (host memory), copied from and to {host} by ONNX Runtime";
    }

    /// <summary>Where bound inputs and outputs live and how they get there (for benchmarks and logs).</summary>
    public string BindingDescription { get; }


    public ModelDescriptor Model { get; }

    /// <summary>Frames of the last hidden state per 6000-sample window.</summary>
    public int FramesPerWindow { get; }

    public ScorerOptions Options => _options;

    /// <summary>
    /// Throws <see cref="ExecutionProviderUnavailableException"/> when <paramref name="provider"/> is not in a build of
    /// <paramref name="flavor"/>: CUDA needs the GPU flavour (<c>dotnet build -p:OnnxRuntimeFlavor=Gpu</c>), and a
    /// GPU-flavour build must have loaded the GPU package's native library.
    /// </summary>
    public static void EnsureProviderAvailable(ExecutionProviderKind provider, OnnxRuntimeFlavor flavor)
    {
        if (provider != ExecutionProviderKind.Cuda)
        {
            return;
        }

        if (flavor != OnnxRuntimeFlavor.Gpu)
        {
            throw ExecutionProviderUnavailableException.CpuFlavor();
        }

        if (!OnnxRuntimeFlavors.LoadedLibraryHasCuda)
        {
            throw ExecutionProviderUnavailableException.CpuLibraryLoaded();
        }
    }

    /// <summary>
    /// Adds the CUDA execution provider with <paramref name="settings"/> to <paramref name="sessionOptions"/>. The
    /// provider options are created here because creating them already loads the CUDA provider library and, through
    /// it, the CUDA runtime: on a machine without them that throws, and the error becomes one line naming the missing
    /// library and what to install.
    /// </summary>
    internal static void AppendCuda(SessionOptions sessionOptions, CudaProviderSettings settings)
    {
        if (settings.Problems() is { Count: > 0 } problems)
        {
            throw new ArgumentException($"CUDA provider settings: {string.Join("; ", problems)}", nameof(settings));
        }

        try
        {
            using var cuda = new OrtCUDAProviderOptions();
            cuda.UpdateOptions(settings.ToProviderOptions());
            sessionOptions.AppendExecutionProvider_CUDA(cuda);
        }
        catch (OnnxRuntimeException e)
        {
            throw ExecutionProviderUnavailableException.FromCudaError(settings.DeviceId, e);
        }
    }

    // Errors of the CUDA provider's start (libraries, driver, device), as opposed to a model ONNX Runtime cannot read.
    private static bool IsCudaStartError(OnnxRuntimeException e) =>
        e.Message.Contains("cannot open shared object file", StringComparison.Ordinal)
        || e.Message.Contains("CUDA failure", StringComparison.Ordinal)
        || e.Message.Contains("CUDNN failure", StringComparison.Ordinal)
        || e.Message.Contains("CUDA driver", StringComparison.OrdinalIgnoreCase);

    // ONNX Runtime refuses enable_cuda_graph when it creates the session if the model cannot be captured: "This session
    // cannot use the graph capture feature as requested by the user ..." (nodes left on the CPU, control flow).
    private static bool IsGraphCaptureRefusal(OnnxRuntimeException e) =>
        e.Message.Contains("graph capture", StringComparison.OrdinalIgnoreCase)
        || e.Message.Contains("CUDA graph", StringComparison.OrdinalIgnoreCase)
        || e.Message.Contains("CUDA Graph", StringComparison.Ordinal);

    // The allocator of the provider's own memory: CUDA device memory on device DeviceId, or the CPU provider's.
    private static OrtAllocator DeviceAllocator(InferenceSession session, ScorerOptions options)
    {
        using var info = options.Provider == ExecutionProviderKind.Cuda
            ? new OrtMemoryInfo(OrtMemoryInfo.allocatorCUDA, OrtAllocatorType.DeviceAllocator, options.Cuda.DeviceId, OrtMemType.Default)
            : new OrtMemoryInfo(OrtMemoryInfo.allocatorCPU, OrtAllocatorType.DeviceAllocator, 0, OrtMemType.Default);
        return new OrtAllocator(session, info);
    }

    // A session of the copy model on the scorer's provider (device, arena and memory limit alike, never a CUDA graph):
    // one thread, no spinning, no graph rewrites (the single Identity node must stay).
    private static InferenceSession OpenCopySession(ScorerOptions options)
    {
        using var copyOptions = new SessionOptions
        {
            GraphOptimizationLevel = GraphOptimizationLevel.ORT_DISABLE_ALL,
            ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
            IntraOpNumThreads = 1,
            InterOpNumThreads = 1,
        };
        copyOptions.AddSessionConfigEntry("session.intra_op.allow_spinning", "0");
        if (options.Provider == ExecutionProviderKind.Cuda)
        {
            AppendCuda(copyOptions, options.Cuda with { EnableCudaGraph = false });
        }

        try
        {
            return new InferenceSession(OnnxCopyModel.Bytes, copyOptions);
        }
        catch (OnnxRuntimeException e) when (options.Provider == ExecutionProviderKind.Cuda && IsCudaStartError(e))
        {
            throw ExecutionProviderUnavailableException.FromCudaError(options.Cuda.DeviceId, e);
        }
    }

    public void Score(ReadOnlySpan<float> windows, int batch, Span<float> embeddings, Span<float> probabilities)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ArgumentOutOfRangeException.ThrowIfNegative(batch);
        var hidden = Model.HiddenSize;
        var labels = Model.LabelCount;
        if (windows.Length != batch * IEcgScorer.WindowLength)
        {
            throw new ArgumentException($"expected {batch} x {IEcgScorer.WindowLength} = {batch * IEcgScorer.WindowLength} samples, got {windows.Length}", nameof(windows));
        }

        if (embeddings.Length < batch * hidden)
        {
            throw new ArgumentException($"embeddings need room for {batch} x {hidden} values, got {embeddings.Length}", nameof(embeddings));
        }

        if (labels > 0 && probabilities.Length < batch * labels)
        {
            throw new ArgumentException($"probabilities need room for {batch} x {labels} values, got {probabilities.Length}", nameof(probabilities));
        }

        if (_options.UsesIoBinding)
        {
            ScoreBound(windows, batch, embeddings, probabilities);
            return;
        }

        for (var start = 0; start < batch; start += _options.MaxBatch)
        {
            var n = Math.Min(_options.MaxBatch, batch - start);
            var set = Rent(n);
            try
            {
                windows.Slice(start * IEcgScorer.WindowLength, n * IEcgScorer.WindowLength).CopyTo(set.Input);
                _session.Run(set.RunOptions, _inputNames, set.Inputs, _scoreOutputs, set.Outputs);
                set.Embedding.AsSpan(0, n * hidden).CopyTo(embeddings.Slice(start * hidden));
                if (labels > 0)
                {
                    set.Probabilities!.AsSpan(0, n * labels).CopyTo(probabilities.Slice(start * labels));
                }
            }
            finally
            {
                Return(set);
            }
        }
    }

    /// <summary>The fixed batch shape a run of <paramref name="windows"/> windows takes with I/O binding: the next power of two, at most <paramref name="maxBatch"/>.</summary>
    public static int BoundShape(int windows, int maxBatch) =>
        Math.Min(maxBatch, (int)BitOperations.RoundUpToPowerOf2((uint)Math.Max(1, windows)));

    private void ScoreBound(ReadOnlySpan<float> windows, int batch, Span<float> embeddings, Span<float> probabilities)
    {
        var hidden = Model.HiddenSize;
        var labels = Model.LabelCount;
        const int length = IEcgScorer.WindowLength;
        for (var start = 0; start < batch; start += _options.MaxBatch)
        {
            var n = Math.Min(_options.MaxBatch, batch - start);
            var set = RentBound(BoundShape(n, _options.MaxBatch));
            try
            {
                var input = set.HostInput.GetTensorMutableDataAsSpan<float>();
                windows.Slice(start * length, n * length).CopyTo(input);
                input[(n * length)..].Clear();
                if (_options.UsesCudaGraph)
                {
                    // A capture must not overlap other CUDA work of this scorer, and ONNX Runtime captures on a set's
                    // first run (on whichever thread runs it): runs and their copies take turns.
                    lock (_graphLock)
                    {
                        RunBound(set);
                    }
                }
                else
                {
                    RunBound(set);
                }

                set.HostEmbedding.GetTensorDataAsSpan<float>()[..(n * hidden)].CopyTo(embeddings.Slice(start * hidden));
                if (labels > 0)
                {
                    set.HostProbabilities!.GetTensorDataAsSpan<float>()[..(n * labels)].CopyTo(probabilities.Slice(start * labels));
                }
            }
            finally
            {
                ReturnBound(set);
            }
        }
    }

    // Host input to the bound tensors, the run, bound outputs to the host: with device binding, the copies are runs of
    // the copy session; with host binding, ONNX Runtime's own copies inside the run (synchronized before and after).
    private void RunBound(BoundSet set)
    {
        if (set.CopyIn is { } copyIn)
        {
            copyIn.SynchronizeBoundInputs();
            _copySession!.RunWithBinding(set.CopyRunOptions, copyIn);
        }
        else
        {
            set.Binding.SynchronizeBoundInputs();
        }

        _session.RunWithBinding(set.RunOptions, set.Binding);
        if (set.CopyOut.Length > 0)
        {
            foreach (var copyOut in set.CopyOut)
            {
                _copySession!.RunWithBinding(set.CopyRunOptions, copyOut);
                copyOut.SynchronizeBoundOutputs();
            }
        }
        else
        {
            set.Binding.SynchronizeBoundOutputs();
        }
    }

    // The CUDA provider's page-locked host allocator, or null when this session offers none.
    private static OrtAllocator? TryPinnedAllocator(InferenceSession session, int deviceId)
    {
        try
        {
            using var info = new OrtMemoryInfo(OrtMemoryInfo.allocatorCUDA_PINNED, OrtAllocatorType.DeviceAllocator, deviceId, OrtMemType.CpuOutput);
            return new OrtAllocator(session, info);
        }
        catch (OnnxRuntimeException)
        {
            return null;
        }
    }

    /// <summary>Runs the model on <paramref name="batch"/> windows of <paramref name="samples"/> samples and returns every output (allocates).</summary>
    public ModelOutputs Run(ReadOnlySpan<float> windows, int batch, bool hiddenStates = false, int samples = IEcgScorer.WindowLength)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (batch < 1 || windows.Length != batch * samples)
        {
            throw new ArgumentException($"expected {batch} x {samples} samples, got {windows.Length}", nameof(windows));
        }

        var names = new List<string> { HubertOnnxExporter.EmbeddingName };
        if (Model.LabelCount > 0)
        {
            names.Add(HubertOnnxExporter.LogitsName);
            names.Add(HubertOnnxExporter.ProbabilitiesName);
        }

        if (hiddenStates)
        {
            names.Add(HubertOnnxExporter.LastHiddenStateName);
        }

        using var input = OrtValue.CreateTensorValueFromMemory(windows.ToArray(), [batch, samples]);
        using var runOptions = new RunOptions();
        if (_options.UsesCudaGraph)
        {
            // A plain run feeds host tensors that ONNX Runtime copies to new device addresses each time: no capture.
            runOptions.AddRunConfigEntry("gpu_graph_id", "-1");
        }

        using var results = _session.Run(runOptions, _inputNames, [input], names);
        var byName = names.Zip(results).ToDictionary(p => p.First, p => p.Second, StringComparer.Ordinal);
        float[]? Get(string name) => byName.TryGetValue(name, out var v) ? v.GetTensorDataAsSpan<float>().ToArray() : null;
        var hidden = Get(HubertOnnxExporter.LastHiddenStateName);
        var frames = hiddenStates ? (int)byName[HubertOnnxExporter.LastHiddenStateName].GetTensorTypeAndShape().Shape[1] : FramesPerWindow;
        return new ModelOutputs(batch, frames, Model.HiddenSize, Model.LabelCount, Get(HubertOnnxExporter.EmbeddingName)!, Get(HubertOnnxExporter.LogitsName), Get(HubertOnnxExporter.ProbabilitiesName), hidden);
    }

    /// <summary>Stops ONNX Runtime's profiler (when <see cref="ScorerOptions.ProfilePrefix"/> was set) and returns the trace file.</summary>
    public string EndProfiling() => _session.EndProfiling();

    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        foreach (var bag in _pool.Values)
        {
            while (bag.TryTake(out var set))
            {
                set.Dispose();
            }
        }

        foreach (var bag in _bound.Values)
        {
            while (bag.TryTake(out var set))
            {
                set.Dispose();
            }
        }

        _copySession?.Dispose();
        _session.Dispose();
        _device?.Dispose();
        _pinned?.Dispose();
    }

    private BoundSet RentBound(int shape)
    {
        var bag = _bound.GetOrAdd(shape, static _ => new ConcurrentBag<BoundSet>());
        if (bag.TryTake(out var set))
        {
            return set;
        }

        // Graph ids start at 1: ONNX Runtime reserves 0 for its own single graph and -1 turns capture off.
        var graphId = _options.UsesCudaGraph ? Interlocked.Increment(ref _graphIds) : (int?)null;
        return new BoundSet(_session, _pinned, _copySession is null ? null : new DeviceTarget(_copySession, _device!), shape, Model.HiddenSize, Model.LabelCount, graphId);
    }

    private void ReturnBound(BoundSet set)
    {
        if (_disposed)
        {
            set.Dispose();
            return;
        }

        _bound[set.Shape].Add(set);
    }

    private BufferSet Rent(int batch)
    {
        var bag = _pool.GetOrAdd(batch, static _ => new ConcurrentBag<BufferSet>());
        return bag.TryTake(out var set) ? set : new BufferSet(batch, Model.HiddenSize, Model.LabelCount);
    }

    private void Return(BufferSet set)
    {
        if (_disposed)
        {
            set.Dispose();
            return;
        }

        _pool[set.Batch].Add(set);
    }

    /// <summary>Input and output buffers for one batch size, with OrtValues bound to them once.</summary>
    private sealed class BufferSet : IDisposable
    {
        public BufferSet(int batch, int hidden, int labels)
        {
            Batch = batch;
            Input = new float[batch * IEcgScorer.WindowLength];
            Embedding = new float[batch * hidden];
            var input = OrtValue.CreateTensorValueFromMemory(Input, [batch, IEcgScorer.WindowLength]);
            var embedding = OrtValue.CreateTensorValueFromMemory(Embedding, [batch, hidden]);
            Inputs = [input];
            if (labels > 0)
            {
                Probabilities = new float[batch * labels];
                Outputs = [embedding, OrtValue.CreateTensorValueFromMemory(Probabilities, [batch, labels])];
            }
            else
            {
                Outputs = [embedding];
            }
        }

        public int Batch { get; }

        public float[] Input { get; }

        public float[] Embedding { get; }

        public float[]? Probabilities { get; }

        public OrtValue[] Inputs { get; }

        public OrtValue[] Outputs { get; }

        public RunOptions RunOptions { get; } = new();

        public void Dispose()
        {
            foreach (var value in Inputs.Concat(Outputs))
            {
                value.Dispose();
            }

            RunOptions.Dispose();
        }
    }

    /// <summary>Where a set's bound tensors go with device binding: the copy session and the device allocator.</summary>
    private sealed record DeviceTarget(InferenceSession CopySession, OrtAllocator Allocator);

    /// <summary>
    /// One fixed-shape batch's input and outputs, bound once into an <see cref="OrtIoBinding"/>. Host buffers come from
    /// the pinned allocator when there is one, else they are GC-pinned managed arrays (allocated once, never moved).
    /// With a <see cref="DeviceTarget"/> the model's binding holds device tensors of the same shapes instead, and three
    /// bindings of the copy session move the input to the device and the outputs back.
    /// </summary>
    private sealed class BoundSet : IDisposable
    {
        private readonly List<IDisposable> _owned = [];

        public BoundSet(InferenceSession session, OrtAllocator? pinned, DeviceTarget? device, int shape, int hidden, int labels, int? graphId)
        {
            Shape = shape;
            try
            {
                _owned.Add(RunOptions);
                _owned.Add(CopyRunOptions);
                if (graphId is { } id)
                {
                    RunOptions.AddRunConfigEntry("gpu_graph_id", id.ToString(System.Globalization.CultureInfo.InvariantCulture));
                }

                long[] inputShape = [shape, IEcgScorer.WindowLength];
                long[] embeddingShape = [shape, hidden];
                long[] probabilityShape = [shape, labels];
                HostInput = Host(pinned, inputShape);
                HostEmbedding = Host(pinned, embeddingShape);
                HostProbabilities = labels > 0 ? Host(pinned, probabilityShape) : null;
                var input = HostInput;
                var embedding = HostEmbedding;
                var probabilities = HostProbabilities;
                if (device is not null)
                {
                    input = Device(device.Allocator, inputShape);
                    embedding = Device(device.Allocator, embeddingShape);
                    probabilities = labels > 0 ? Device(device.Allocator, probabilityShape) : null;
                    CopyIn = Copy(device.CopySession, HostInput, input);
                    var copyOut = new List<OrtIoBinding> { Copy(device.CopySession, embedding, HostEmbedding) };
                    if (probabilities is not null)
                    {
                        copyOut.Add(Copy(device.CopySession, probabilities, HostProbabilities!));
                    }

                    CopyOut = [.. copyOut];
                }

                Binding = session.CreateIoBinding();
                _owned.Add(Binding);
                Binding.BindInput(HubertOnnxExporter.InputName, input);
                Binding.BindOutput(HubertOnnxExporter.EmbeddingName, embedding);
                if (probabilities is not null)
                {
                    Binding.BindOutput(HubertOnnxExporter.ProbabilitiesName, probabilities);
                }
            }
            catch
            {
                Dispose();
                throw;
            }
        }

        public int Shape { get; }

        /// <summary>Where callers put the windows (host memory).</summary>
        public OrtValue HostInput { get; }

        /// <summary>Where callers read the embeddings (host memory).</summary>
        public OrtValue HostEmbedding { get; }

        public OrtValue? HostProbabilities { get; }

        /// <summary>The model's binding: the host tensors, or with device binding the device tensors.</summary>
        public OrtIoBinding Binding { get; }

        /// <summary>The copy session's binding from the host input to the device input; null with host binding.</summary>
        public OrtIoBinding? CopyIn { get; }

        /// <summary>The copy session's bindings from the device outputs to the host outputs; empty with host binding.</summary>
        public OrtIoBinding[] CopyOut { get; } = [];

        /// <summary>The model's run options (with the set's CUDA graph id when graphs are on).</summary>
        public RunOptions RunOptions { get; } = new();

        public RunOptions CopyRunOptions { get; } = new();

        public void Dispose()
        {
            foreach (var owned in Enumerable.Reverse(_owned))
            {
                owned.Dispose();
            }

            _owned.Clear();
        }

        private OrtValue Host(OrtAllocator? pinned, long[] shape)
        {
            var value = pinned is not null
                ? OrtValue.CreateAllocatedTensorValue(pinned, TensorElementType.Float, shape)
                : OrtValue.CreateTensorValueFromMemory(GC.AllocateArray<float>(checked((int)shape.Aggregate(1L, (a, b) => a * b)), pinned: true), shape);
            _owned.Add(value);
            return value;
        }

        private OrtValue Device(OrtAllocator allocator, long[] shape)
        {
            var value = OrtValue.CreateAllocatedTensorValue(allocator, TensorElementType.Float, shape);
            _owned.Add(value);
            return value;
        }

        private OrtIoBinding Copy(InferenceSession copySession, OrtValue from, OrtValue to)
        {
            var binding = copySession.CreateIoBinding();
            _owned.Add(binding);
            binding.BindInput(OnnxCopyModel.InputName, from);
            binding.BindOutput(OnnxCopyModel.OutputName, to);
            return binding;
        }
    }
}
