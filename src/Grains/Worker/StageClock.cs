using System.Diagnostics;
using System.Runtime.InteropServices;

namespace HubertEcg.Worker;

/// <summary>The steps a record goes through in a worker, as <see cref="StageClock"/> counts them.</summary>
public enum PipelineStage
{
    /// <summary>Shard blobs downloaded to local files.</summary>
    Download,

    /// <summary>Records read from their files through the format registry (headers, signal decoding, lead mapping).</summary>
    Decode,

    /// <summary>Signals turned into model windows (resampling, band-pass, scaling, windowing).</summary>
    Preprocess,

    /// <summary>Windows copied into the model's batches.</summary>
    Batch,

    /// <summary>The model call on a batch.</summary>
    Score,

    /// <summary>Window outputs summed per record into its score row.</summary>
    Aggregate,

    /// <summary>Score rows written to the result sink.</summary>
    Write,
}

/// <summary>One stage's totals: how often it ran, on how many items, its CPU time and its wall-clock time summed over calls.</summary>
public readonly record struct StageTime(long Calls, long Items, TimeSpan Cpu, TimeSpan Busy);

/// <summary>
/// Optional accounting of where a worker's time goes, per <see cref="PipelineStage"/>: for work that runs on one
/// thread from start to end, the CPU time that thread used (<see cref="ThreadCpuTime"/>); for every call, the
/// wall-clock time it took (summed over concurrent calls, so it can exceed the elapsed time). The worker's own stages
/// (batch, aggregate) report here when <see cref="WorkerPorts.Stages"/> is set; whoever wires the ports may wrap them to
/// report the others. Thread-safe. Off in a silo: <c>hubert-ecg bench pipeline</c> uses it.
/// </summary>
public sealed class StageClock
{
    private static readonly int StageCount = Enum.GetValues<PipelineStage>().Length;
    private readonly long[] _calls = new long[StageCount];
    private readonly long[] _items = new long[StageCount];
    private readonly long[] _cpuNanoseconds = new long[StageCount];
    private readonly long[] _busyTicks = new long[StageCount];

    /// <summary>A measurement begun on the calling thread; pass it to <see cref="Stop"/> on the same thread.</summary>
    public readonly record struct Started(long CpuNanoseconds, long Timestamp);

    public static Started Start() => new(ThreadCpuTime.Nanoseconds(), Stopwatch.GetTimestamp());

    /// <summary>Adds the CPU time and wall-clock time since <paramref name="started"/>, which must be from this thread.</summary>
    public void Stop(PipelineStage stage, Started started, long items)
    {
        var cpu = ThreadCpuTime.Nanoseconds() - started.CpuNanoseconds;
        Add(stage, items, cpu, Stopwatch.GetTimestamp() - started.Timestamp);
    }

    /// <summary>Adds a call whose CPU time cannot be told apart (it awaited I/O and may have moved between threads): wall-clock time only.</summary>
    public void AddWall(PipelineStage stage, long startTimestamp, long items) =>
        Add(stage, items, 0, Stopwatch.GetTimestamp() - startTimestamp);

    public StageTime Read(PipelineStage stage)
    {
        var i = (int)stage;
        return new StageTime(
            Interlocked.Read(ref _calls[i]),
            Interlocked.Read(ref _items[i]),
            TimeSpan.FromTicks(Interlocked.Read(ref _cpuNanoseconds[i]) / 100),
            Stopwatch.GetElapsedTime(0, Interlocked.Read(ref _busyTicks[i])));
    }

    private void Add(PipelineStage stage, long items, long cpuNanoseconds, long busyTicks)
    {
        var i = (int)stage;
        Interlocked.Increment(ref _calls[i]);
        Interlocked.Add(ref _items[i], items);
        Interlocked.Add(ref _cpuNanoseconds[i], cpuNanoseconds);
        Interlocked.Add(ref _busyTicks[i], busyTicks);
    }
}

/// <summary>
/// The CPU time the calling thread has used, from the kernel's per-thread clock (<c>CLOCK_THREAD_CPUTIME_ID</c>) on
/// Linux. Elsewhere (<see cref="IsSupported"/> false) it is the wall clock, so a stage's CPU time reads as its busy time.
/// </summary>
public static class ThreadCpuTime
{
    private const int ClockThreadCpuTimeId = 3;
    private static readonly bool Supported = Probe();

    public static bool IsSupported => Supported;

    public static long Nanoseconds()
    {
        if (Supported && ClockGetTime(ClockThreadCpuTimeId, out var time) == 0)
        {
            return (time.Seconds * 1_000_000_000L) + time.Nanoseconds;
        }

        return (long)(Stopwatch.GetTimestamp() * (1e9 / Stopwatch.Frequency));
    }

    private static bool Probe()
    {
        if (!OperatingSystem.IsLinux())
        {
            return false;
        }

        try
        {
            return ClockGetTime(ClockThreadCpuTimeId, out _) == 0;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return false;
        }
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct TimeSpec
    {
        public long Seconds;
        public long Nanoseconds;
    }

    [DllImport("libc", EntryPoint = "clock_gettime", ExactSpelling = true)]
    [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
    private static extern int ClockGetTime(int clock, out TimeSpec time);
}
