using System.Collections.Concurrent;
using HubertEcg.Inference.Onnx;
using Microsoft.ML.OnnxRuntime;

namespace HubertEcg.Inference.Model;

/// <summary>Where ONNX Runtime runs the model.</summary>
public enum ExecutionProviderKind
{
    Cpu,
    Cuda,
}

/// <summary>Options of an <see cref="OnnxEcgScorer"/>.</summary>
public sealed record ScorerOptions
{
    public const int DefaultMaxBatch = 32;

    public ExecutionProviderKind Provider { get; init; } = ExecutionProviderKind.Cpu;

    /// <summary>CUDA device ordinal (CUDA only).</summary>
    public int DeviceId { get; init; }

    /// <summary>Threads ONNX Runtime uses inside one operator; 0 lets ONNX Runtime choose (one per physical core).</summary>
    public int IntraOpThreads { get; init; }

    /// <summary>Threads ONNX Runtime uses across operators; 0 lets ONNX Runtime choose.</summary>
    public int InterOpThreads { get; init; }

    /// <summary>Largest batch sent to ONNX Runtime in one run; bigger requests are split.</summary>
    public int MaxBatch { get; init; } = DefaultMaxBatch;

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
/// pooled buffers per batch size, so steady-state scoring allocates nothing. Thread-safe: concurrent calls each take
/// their own buffer set.
/// </summary>
public sealed class OnnxEcgScorer : IEcgScorer
{

    private readonly InferenceSession _session;
    private readonly ScorerOptions _options;
    private readonly ConcurrentDictionary<int, ConcurrentBag<BufferSet>> _pool = new();
    private readonly string[] _inputNames = [HubertOnnxExporter.InputName];
    private readonly string[] _scoreOutputs;
    private bool _disposed;

    public OnnxEcgScorer(string modelPath, ScorerOptions? options = null)
    {
        _options = options ?? new ScorerOptions();
        ArgumentOutOfRangeException.ThrowIfLessThan(_options.MaxBatch, 1, nameof(options));
        EnsureProviderAvailable(_options.Provider, IsGpuBuild);
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

#if ORT_GPU
        if (_options.Provider == ExecutionProviderKind.Cuda)
        {
            sessionOptions.AppendExecutionProvider_CUDA(_options.DeviceId);
        }
#endif
        try
        {
            _session = new InferenceSession(modelPath, sessionOptions);
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
    }

    /// <summary>Whether this build links the GPU (CUDA) ONNX Runtime package (<c>-p:OnnxRuntimeFlavor=Gpu</c>).</summary>
    public static bool IsGpuBuild =>
#if ORT_GPU
        true;
#else
        false;
#endif

    public ModelDescriptor Model { get; }

    /// <summary>Frames of the last hidden state per 6000-sample window.</summary>
    public int FramesPerWindow { get; }

    public ScorerOptions Options => _options;

    /// <summary>
    /// Throws when <paramref name="provider"/> is not in this build: CUDA needs the GPU package
    /// (<c>dotnet build -p:OnnxRuntimeFlavor=Gpu</c>).
    /// </summary>
    public static void EnsureProviderAvailable(ExecutionProviderKind provider, bool gpuBuild)
    {
        if (provider == ExecutionProviderKind.Cuda && !gpuBuild)
        {
            throw new NotSupportedException(
                "The CUDA execution provider was requested, but this build links the CPU-only ONNX Runtime package. " +
                "Build for GPU with `dotnet build -p:OnnxRuntimeFlavor=Gpu` (uses Microsoft.ML.OnnxRuntime.Gpu), or use the CPU provider.");
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

        _session.Dispose();
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
}
