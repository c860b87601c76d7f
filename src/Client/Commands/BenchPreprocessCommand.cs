using System.Buffers.Binary;
using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Runtime;
using System.Text;
using HubertEcg.Inference.Ecg;
using HubertEcg.Inference.Ecg.Synthetic;
using HubertEcg.Inference.Formats;
using HubertEcg.Inference.Formats.Npy;
using HubertEcg.Inference.Formats.Wfdb;
using HubertEcg.Inference.IO;
using HubertEcg.Inference.Preprocessing;

namespace HubertEcg.Client.Commands;

/// <summary>
/// <c>hubert-ecg bench preprocess [--seconds S] [--warmup S] [--profile P] [--format wfdb16|npy] [--rate HZ] [--read-only]</c>: 10 s 12-lead records
/// (500 Hz by default) read from in-memory bytes and preprocessed on one thread; the last line is <c>records_per_second=N</c>.
/// With <c>--read-only</c> the loop only decodes each record to its <see cref="EcgRecord"/> (no lead mapping, no
/// preprocessing), so that the read cost of a format shows on its own.
/// </summary>
public static class BenchPreprocessCommand
{
    private const int Leads = 12;
    private const int Seconds = 10;
    private const int Variants = 8;
    private const int BatchRecords = 16;

    public static Command Build()
    {
        var seconds = new Option<double>("--seconds") { Description = "How long to measure", DefaultValueFactory = _ => 5.0 };
        var profile = new Option<string>("--profile") { Description = "Preprocessing profile", DefaultValueFactory = _ => PreprocessingProfiles.HubertEcg2024Name };
        profile.AcceptOnlyFromAmong([.. PreprocessingProfiles.Names]);
        var format = new Option<string>("--format")
        {
            Description = $"Record encoding read in the loop ({string.Join(", ", Codecs.Keys.Order(StringComparer.Ordinal))}); several, comma-separated, are read in turn, a few records each, and each is reported with its share of the first",
            DefaultValueFactory = _ => "wfdb16",
        };
        var rate = new Option<int>("--rate") { Description = "Sampling rate of the records in Hz (500: no resampling)", DefaultValueFactory = _ => 500 };
        var readOnly = new Option<bool>("--read-only") { Description = "Only decode each record to its EcgRecord: no lead mapping, no preprocessing" };
        var warmup = new Option<double>("--warmup") { Description = "Seconds of unmeasured work first, so that the measured loop runs the runtime's fully optimised code", DefaultValueFactory = _ => 1.0 };
        var settle = new Option<double>("--jit-settle")
        {
            Description = $"After --warmup, go on warming up until the runtime has compiled no method for this many seconds (at most {MaxSettleSeconds} s more); 0: --warmup alone",
            DefaultValueFactory = _ => 0.5,
        };

        var command = new Command("preprocess", "Records per second through read + preprocess on one core");
        command.Options.Add(seconds);
        command.Options.Add(profile);
        command.Options.Add(format);
        command.Options.Add(rate);
        command.Options.Add(readOnly);
        command.Options.Add(warmup);
        command.Options.Add(settle);
        command.SetAction(parseResult =>
        {
            var names = parseResult.GetValue(format)!.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
            if (names.Length == 0 || names.FirstOrDefault(n => !Codecs.ContainsKey(n)) is { } unknown || names.Distinct(StringComparer.OrdinalIgnoreCase).Count() != names.Length)
            {
                Console.Error.WriteLine($"error: --format takes one or more distinct formats of {string.Join(", ", Codecs.Keys.Order(StringComparer.Ordinal))}");
                return 1;
            }

            var profileValue = PreprocessingProfiles.Parse(parseResult.GetValue(profile)!);
            var warming = new WarmUp(parseResult.GetValue(warmup), parseResult.GetValue(settle));
            return names.Length == 1
                ? Run(parseResult.GetValue(seconds), profileValue, Codecs[names[0]], parseResult.GetValue(rate), parseResult.GetValue(readOnly), warming)
                : RunSideBySide(parseResult.GetValue(seconds), profileValue, names, parseResult.GetValue(rate), parseResult.GetValue(readOnly), warming);
        });
        return command;
    }

    /// <summary>
    /// Several formats in one loop, a few records of each in turn (a batch of <see cref="BatchRecords"/>, a few
    /// milliseconds, so that each format runs with its own code and data in the caches): a machine whose speed drifts
    /// (other work, a shared host) slows every format alike, so their shares of the first format hold where separate
    /// runs would not. Each format's rate is its records over the wall time spent on them.
    /// </summary>
    private static int RunSideBySide(double seconds, PreprocessingProfile profile, string[] names, int rate, bool readOnly, WarmUp warmup)
    {
        if (!OptionsHold(seconds, warmup, rate))
        {
            return 1;
        }

        var codecs = names.Select(n => Codecs[n]).ToArray();
        var records = codecs.Select(c => Enumerable.Range(0, Variants).Select(i => c.Encode(Synthetic(i, rate))).ToArray()).ToArray();
        var preprocessor = new EcgPreprocessor(new EcgPreprocessorOptions { Profile = profile });
        var windows = new float[2 * EcgWindows.ModelInputLength];
        var checksum = 0.0;

        double Step(int f, string id, int i) => ReadAndPreprocess(codecs[f], records[f], preprocessor, windows, rate, readOnly, id, i);

        var warmedFor = warmup.Run(i =>
        {
            for (var f = 0; f < codecs.Length; f++)
            {
                checksum += Step(f, "warmup", i);
            }
        });

        checksum = 0;
        var compiledBefore = JitInfo.GetCompiledMethodCount();
        var ticks = new long[codecs.Length];
        var count = 0;
        var stopwatch = Stopwatch.StartNew();
        var limit = TimeSpan.FromSeconds(seconds);
        while (stopwatch.Elapsed < limit)
        {
            for (var f = 0; f < codecs.Length; f++)
            {
                var start = Stopwatch.GetTimestamp();
                for (var i = 0; i < BatchRecords; i++)
                {
                    checksum += Step(f, "bench", count + i);
                }

                ticks[f] += Stopwatch.GetTimestamp() - start;
            }

            count += BatchRecords;
        }

        Console.WriteLine($"records: {Seconds} s, 12 leads, {rate} Hz; {(readOnly ? "read only (no lead mapping, no preprocessing)" : $"lead mapping, profile: {profile.Name()}")}; one thread; formats in turn, {BatchRecords} records each: {string.Join(", ", names)}");
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"processed {count} records of each format in {stopwatch.Elapsed.TotalSeconds:F2} s wall (checksum {checksum:F3})"));
        WarmUp.Report(warmedFor, JitInfo.GetCompiledMethodCount() - compiledBefore);
        var first = count / ((double)ticks[0] / Stopwatch.Frequency);
        for (var f = 0; f < codecs.Length; f++)
        {
            var perSecond = count / ((double)ticks[f] / Stopwatch.Frequency);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"records_per_second[{names[f]}]={perSecond:F1} ({1e6 / perSecond:F0} µs a record, {100 * perSecond / first:F0}% of {names[0]})"));
        }

        return 0;
    }

    private const double MaxSettleSeconds = 60;

    /// <summary>
    /// The unmeasured work before the loop: JIT, filter designs, pooled buffers. By time, not by count: the runtime
    /// compiles hot methods again, optimised, only after they have run a while (tiered compilation, about 100 ms after
    /// the calls stop adding new methods, and the compiling itself on a background thread), and a worker that reads
    /// millions of records runs that code, not the first quick one. A read path with many methods (an XML reader and a
    /// document model) needs longer than one with few, and longer again when other work holds the cores: so after
    /// <see cref="Seconds"/> the warm-up goes on until no method has been compiled for <see cref="SettleSeconds"/>.
    /// </summary>
    private sealed record WarmUp(double Seconds, double SettleSeconds)
    {
        /// <summary>Calls <paramref name="step"/> with 0, 1, ... until warm; the seconds it took.</summary>
        public double Run(Action<int> step)
        {
            var clock = Stopwatch.StartNew();
            var i = 0;
            for (; i < 50 || clock.Elapsed.TotalSeconds < Seconds; i++)
            {
                step(i);
            }

            if (SettleSeconds > 0)
            {
                var compiled = JitInfo.GetCompiledMethodCount();
                var quietSince = clock.Elapsed.TotalSeconds;
                while (clock.Elapsed.TotalSeconds - quietSince < SettleSeconds && clock.Elapsed.TotalSeconds < Seconds + MaxSettleSeconds)
                {
                    step(i++);
                    var now = JitInfo.GetCompiledMethodCount();
                    if (now != compiled)
                    {
                        compiled = now;
                        quietSince = clock.Elapsed.TotalSeconds;
                    }
                }
            }

            return clock.Elapsed.TotalSeconds;
        }

        /// <summary>The warm-up's length and what the runtime still compiled while the loop was measured.</summary>
        public static void Report(double warmedFor, long compiledWhileMeasured) =>
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"warm-up {warmedFor:F1} s; methods compiled while measuring: {compiledWhileMeasured}"));
    }

    /// <summary>The read step of the loop: how a record's bytes become an <see cref="EcgRecord"/>.</summary>
    private interface IRecordCodec
    {
        string Description { get; }

        InMemoryRecordFileSource Encode(EcgSignal signal);

        EcgRecord Read(string id, double rate, InMemoryRecordFileSource files);
    }

    private static Dictionary<string, IRecordCodec> Codecs { get; } = BuildCodecs();

    private static Dictionary<string, IRecordCodec> BuildCodecs()
    {
        var codecs = new Dictionary<string, IRecordCodec>(StringComparer.OrdinalIgnoreCase)
        {
            ["wfdb16"] = new Format16Codec(),
            ["npy"] = new NpyCodec(),
        };

        // Every other format the project writes, read back through the format registry as a worker reads it.
        foreach (var writer in FormatRegistry.Writers.Where(w => !codecs.ContainsKey(w.Name) && w.Name != "wfdb"))
        {
            codecs[writer.Name] = new WriterCodec(writer);
        }

        return codecs;
    }

    private static int Run(double seconds, PreprocessingProfile profile, IRecordCodec codec, int rate, bool readOnly, WarmUp warmup)
    {
        if (!OptionsHold(seconds, warmup, rate))
        {
            return 1;
        }

        var records = Enumerable.Range(0, Variants).Select(i => codec.Encode(Synthetic(i, rate))).ToArray();
        var preprocessor = new EcgPreprocessor(new EcgPreprocessorOptions { Profile = profile });
        var windows = new float[2 * EcgWindows.ModelInputLength];
        var checksum = 0.0;

        double Step(string id, int i) => ReadAndPreprocess(codec, records, preprocessor, windows, rate, readOnly, id, i);

        var warmedFor = warmup.Run(i => checksum += Step("warmup", i));

        checksum = 0;
        var compiledBefore = JitInfo.GetCompiledMethodCount();
        var gcBefore = GC.CollectionCount(0);
        var count = 0;
        using var process = Process.GetCurrentProcess();
        var cpuBefore = process.TotalProcessorTime;
        var stopwatch = Stopwatch.StartNew();
        var limit = TimeSpan.FromSeconds(seconds);
        // The fastest stretch of BatchRecords records: on a machine shared with other work, the rate the loop reaches
        // when it has a core to itself (garbage collections included, as they fall within such a stretch).
        var batchStart = TimeSpan.Zero;
        var bestBatch = TimeSpan.MaxValue;
        while (stopwatch.Elapsed < limit)
        {
            checksum += Step("bench", count);
            count++;
            if (count % BatchRecords == 0)
            {
                var now = stopwatch.Elapsed;
                bestBatch = now - batchStart < bestBatch ? now - batchStart : bestBatch;
                batchStart = now;
            }
        }

        stopwatch.Stop();
        process.Refresh();
        var cpu = (process.TotalProcessorTime - cpuBefore).TotalSeconds;
        var perSecond = count / stopwatch.Elapsed.TotalSeconds;
        Console.WriteLine($"records: {Seconds} s, 12 leads, {rate} Hz; read: {codec.Description}; {(readOnly ? "read only (no lead mapping, no preprocessing)" : $"lead mapping, profile: {profile.Name()}")}; one thread");
        WarmUp.Report(warmedFor, JitInfo.GetCompiledMethodCount() - compiledBefore);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"processed {count} records in {stopwatch.Elapsed.TotalSeconds:F2} s wall, {cpu:F2} s CPU ({1000 / perSecond:F3} ms wall and {1000 * cpu / count:F3} ms CPU per record, {GC.CollectionCount(0) - gcBefore} gen0 GCs, checksum {checksum:F3})"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"cpu_records_per_second={count / cpu:F1} (records per second of process CPU time; equals the wall rate on an idle core)"));
        if (bestBatch != TimeSpan.MaxValue)
        {
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"best_batch_records_per_second={BatchRecords / bestBatch.TotalSeconds:F1} (fastest run of {BatchRecords} consecutive records)"));
        }

        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"records_per_second={perSecond:F1}"));
        return 0;
    }

    /// <summary>
    /// One step of the loop: record i (of the <see cref="Variants"/>) read, and unless read only mapped and
    /// preprocessed; a number from its output goes into the checksum, so that nothing is optimised away.
    /// </summary>
    private static double ReadAndPreprocess(
        IRecordCodec codec, InMemoryRecordFileSource[] records, EcgPreprocessor preprocessor, float[] windows, int rate, bool readOnly, string id, int i)
    {
        var record = codec.Read(id, rate, records[i % Variants]);
        if (readOnly)
        {
            var lead = record.Signal.Leads[i % record.Signal.Leads.Length];
            return lead[(i * 997) % lead.Length];
        }

        var written = preprocessor.Preprocess(record.ToStandard12Lead(), windows);
        return windows[(i * 997) % (written * EcgWindows.ModelInputLength)];
    }

    /// <summary>The options' bounds, checked before anything is built; false (with the message written) when one is out.</summary>
    private static bool OptionsHold(double seconds, WarmUp warmup, int rate)
    {
        if (!(warmup.SettleSeconds >= 0) || warmup.SettleSeconds > 60)
        {
            Console.Error.WriteLine("error: --jit-settle must be between 0 and 60 seconds");
            return false;
        }

        if (!(seconds > 0) || seconds > 3600)
        {
            Console.Error.WriteLine("error: --seconds must be between 0 and 3600");
            return false;
        }

        if (!(warmup.Seconds >= 0) || warmup.Seconds > 600)
        {
            Console.Error.WriteLine("error: --warmup must be between 0 and 600 seconds");
            return false;
        }

        if (rate is < 100 or > 10_000)
        {
            Console.Error.WriteLine("error: --rate must be between 100 and 10000 Hz");
            return false;
        }

        return true;
    }

    // A deterministic ECG-like 10 s record.
    private static EcgSignal Synthetic(int seed, int rate) =>
        SyntheticEcg.Generate($"synthetic-{seed}", seed, rate, Seconds);

    /// <summary>
    /// A WFDB record (header + format 16 signal file, 1000 adu/mV) held in memory and read by the project's
    /// WFDB reader and lead mapping, exactly as a worker reads a downloaded record.
    /// </summary>
    private sealed class Format16Codec : IRecordCodec
    {
        private const double Gain = 1000;

        public string Description => "WFDB header + format 16 signal file via WfdbRecord and lead mapping";

        public InMemoryRecordFileSource Encode(EcgSignal signal)
        {
            var samples = signal.SampleCount;
            var bytes = new byte[samples * Leads * 2];
            var checksums = new int[Leads];
            for (var i = 0; i < samples; i++)
            {
                for (var lead = 0; lead < Leads; lead++)
                {
                    var adu = (short)Math.Clamp(Math.Round(signal.Leads[lead][i] * Gain), short.MinValue + 1, short.MaxValue);
                    checksums[lead] += adu;
                    BinaryPrimitives.WriteInt16LittleEndian(bytes.AsSpan(((i * Leads) + lead) * 2), adu);
                }
            }

            var header = new StringBuilder();
            header.Append(CultureInfo.InvariantCulture, $"bench {Leads} {signal.SamplingRate} {samples}\n");
            for (var lead = 0; lead < Leads; lead++)
            {
                var first = BinaryPrimitives.ReadInt16LittleEndian(bytes.AsSpan(lead * 2));
                header.Append(CultureInfo.InvariantCulture, $"bench.dat 16 {Gain}/mV 16 0 {first} {(short)checksums[lead]} 0 {signal.LeadNames[lead]}\n");
            }

            var files = new InMemoryRecordFileSource();
            files.Set("bench.hea", Encoding.ASCII.GetBytes(header.ToString()));
            files.Set("bench.dat", bytes);
            return files;
        }

        public EcgRecord Read(string id, double rate, InMemoryRecordFileSource files) =>
            WfdbFormat.Load(files, "bench", id);
    }

    /// <summary>A NumPy .npy float64 array (12 x samples) read by the project's .npy reader and lead mapping.</summary>
    private sealed class NpyCodec : IRecordCodec
    {
        public string Description => ".npy float64 bytes via NpyEcgReader and lead mapping";

        public InMemoryRecordFileSource Encode(EcgSignal signal)
        {
            var samples = signal.SampleCount;
            var flat = new double[Leads * samples];
            for (var lead = 0; lead < Leads; lead++)
            {
                signal.Leads[lead].CopyTo(flat, lead * samples);
            }

            var path = Path.Combine(Path.GetTempPath(), $"hubert-ecg-bench-{Guid.NewGuid():N}.npy");
            try
            {
                Npy.WriteFloat64(path, flat, Leads, samples);
                var files = new InMemoryRecordFileSource();
                files.Set("bench.npy", File.ReadAllBytes(path));
                return files;
            }
            finally
            {
                File.Delete(path);
            }
        }

        public EcgRecord Read(string id, double rate, InMemoryRecordFileSource files)
        {
            using var stream = files.Open("bench.npy");
            return NpyFormat.Load(stream, id, rate);
        }
    }

    /// <summary>A record of a format the project writes, read by the format registry's reader and lead mapping.</summary>
    private sealed class WriterCodec(IRecordWriter writer) : IRecordCodec
    {
        public string Description => $"{writer.Name} record files via the format registry and lead mapping";

        public InMemoryRecordFileSource Encode(EcgSignal signal)
        {
            var files = new InMemoryRecordFileSource();
            foreach (var (name, bytes) in writer.Write(signal, "bench"))
            {
                files.Set(name, bytes);
            }

            return files;
        }

        public EcgRecord Read(string id, double rate, InMemoryRecordFileSource files) =>
            FormatRegistry.Default.Record(id, "bench", files.FileNames, files).Load();
    }
}
