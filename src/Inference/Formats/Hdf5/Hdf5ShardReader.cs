using System.Globalization;
using PureHDF;
using PureHDF.Selections;
using HubertEcg.Inference.Ecg;

namespace HubertEcg.Inference.Formats.Hdf5;

/// <summary>Where an HDF5 shard keeps its ECGs (defaults: the CODE-15% layout).</summary>
public sealed record Hdf5ShardOptions
{
    /// <summary>Dataset holding the tracings: (exams, samples, leads), or (exams, leads, samples) with <see cref="LeadsFirst"/>.</summary>
    public string TracingsDataset { get; init; } = "tracings";

    /// <summary>Dataset holding one id per exam, or null when the shard has none (SaMi-Trop).</summary>
    public string? ExamIdDataset { get; init; } = "exam_id";

    public double SamplingRate { get; init; } = 400;

    /// <summary>Lead names in the order of the tracings' lead axis.</summary>
    public IReadOnlyList<string> LeadNames { get; init; } = StandardLeads.Names;

    /// <summary>Factor from stored values to mV (1 when the values are mV).</summary>
    public double ScaleToMillivolts { get; init; } = 1.0;

    /// <summary>True when the tracings are (exams, leads, samples).</summary>
    public bool LeadsFirst { get; init; }

    /// <summary>
    /// Drop leading and trailing samples where every lead is exactly zero (CODE-15% centres 7 s and 10 s exams in
    /// 4096 samples with zero padding). Off by default: the stored array is returned as is.
    /// </summary>
    public bool TrimZeroPadding { get; init; }

    /// <summary>Most exams one shard may hold (CODE-15% parts hold about 20,000); a shard claiming more is refused before anything is read.</summary>
    public long MaxExams { get; init; } = 1L << 20;

    /// <summary>Most samples per lead one exam may have (2^20: 43 minutes at 400 Hz); a shard claiming longer exams is refused before any is read.</summary>
    public long MaxSamplesPerExam { get; init; } = 1L << 20;

    /// <summary>
    /// Most bytes of samples the tracings may claim per byte of the file (compression rarely passes 10:1 on ECGs). A
    /// small file claiming a huge dataset (chunks never written read as the fill value) is refused before it can
    /// make the worker allocate or read for hours.
    /// </summary>
    public long MaxExpansion { get; init; } = 1024;
}

/// <summary>
/// Reads ECG exams one at a time (a hyperslab per exam) from an HDF5 shard such as CODE-15%'s
/// <c>exams_part*.hdf5</c>, from a file or a seekable stream (a downloaded blob), without loading the whole file.
/// </summary>
public sealed class Hdf5ShardReader : IDisposable
{
    private readonly IDisposable _file;
    private readonly IH5Dataset _tracings;
    private readonly IH5Dataset? _examIds;
    private readonly string _shardId;
    private readonly int _leadAxis;
    private readonly int _sampleAxis;

    private Hdf5ShardReader(IDisposable file, IH5Group root, string shardId, Hdf5ShardOptions options, long fileBytes)
    {
        _file = file;
        _shardId = shardId;
        Options = options;
        if (!double.IsFinite(options.SamplingRate) || options.SamplingRate <= 0)
        {
            throw new EcgFormatException(shardId, $"sampling rate {options.SamplingRate} Hz is not a positive number");
        }

        if (!root.LinkExists(options.TracingsDataset))
        {
            throw new EcgFormatException(shardId, $"HDF5 file has no dataset '{options.TracingsDataset}'");
        }

        _tracings = root.Dataset(options.TracingsDataset);
        var dims = _tracings.Space.Dimensions;
        if (dims.Length != 3)
        {
            throw new EcgFormatException(shardId, $"dataset '{options.TracingsDataset}' has {dims.Length} dimensions, not 3 (exams, samples, leads)");
        }

        if (_tracings.Type.Class != H5DataTypeClass.FloatingPoint || _tracings.Type.Size is not (4 or 8))
        {
            throw new EcgFormatException(shardId, $"dataset '{options.TracingsDataset}' does not hold float32 or float64 values");
        }

        _leadAxis = options.LeadsFirst ? 1 : 2;
        _sampleAxis = options.LeadsFirst ? 2 : 1;
        CheckBounds(shardId, options, dims[0], dims[_sampleAxis], dims[_leadAxis], (ulong)_tracings.Type.Size, fileBytes);

        ExamCount = (int)dims[0];
        SamplesPerExam = (int)dims[_sampleAxis];
        LeadCount = (int)dims[_leadAxis];
        if (LeadCount != options.LeadNames.Count)
        {
            throw new EcgFormatException(shardId, $"dataset '{options.TracingsDataset}' has {LeadCount} leads but {options.LeadNames.Count} lead names are configured");
        }

        if (options.ExamIdDataset is { } idName)
        {
            if (!root.LinkExists(idName))
            {
                throw new EcgFormatException(shardId, $"HDF5 file has no dataset '{idName}' (configure ExamIdDataset = null for shards without ids)");
            }

            _examIds = root.Dataset(idName);
            var idDims = _examIds.Space.Dimensions;
            if (idDims.Length != 1 || idDims[0] != dims[0])
            {
                throw new EcgFormatException(shardId, $"dataset '{idName}' has shape ({string.Join(", ", idDims)}), not ({dims[0]})");
            }

            if (_examIds.Type.Class != H5DataTypeClass.FixedPoint || _examIds.Type.Size is not (1 or 2 or 4 or 8))
            {
                throw new EcgFormatException(shardId, $"dataset '{idName}' does not hold integers");
            }
        }
    }

    public Hdf5ShardOptions Options { get; }

    /// <summary>
    /// Refuses a tracings dataset whose claimed shape cannot be a real shard, before anything is allocated or read:
    /// more exams than <see cref="Hdf5ShardOptions.MaxExams"/>, exams longer than
    /// <see cref="Hdf5ShardOptions.MaxSamplesPerExam"/>, more than 64 leads, or more bytes of samples than
    /// <see cref="Hdf5ShardOptions.MaxExpansion"/> times the file's real size. The reason names the shard and the exam
    /// shape it claims (never a local path: <paramref name="shardId"/> is the blob name).
    /// </summary>
    private static void CheckBounds(string shardId, Hdf5ShardOptions options, ulong exams, ulong samples, ulong leads, ulong valueBytes, long fileBytes)
    {
        var shape = string.Create(CultureInfo.InvariantCulture, $"{exams:N0} exams of {samples:N0} samples x {leads:N0} leads");
        if (exams > (ulong)Math.Max(0, options.MaxExams))
        {
            throw new EcgFormatException(shardId, string.Create(
                CultureInfo.InvariantCulture,
                $"dataset '{options.TracingsDataset}' claims {shape}: more than the {options.MaxExams:N0} exams a shard may hold (Workers:Hdf5:MaxExams)"));
        }

        if (samples > (ulong)Math.Max(0, options.MaxSamplesPerExam))
        {
            throw new EcgFormatException(shardId, string.Create(
                CultureInfo.InvariantCulture,
                $"dataset '{options.TracingsDataset}' claims {shape}: each exam is longer than the {options.MaxSamplesPerExam:N0} samples an exam may have (Workers:Hdf5:MaxSamplesPerExam)"));
        }

        if (leads > 64)
        {
            throw new EcgFormatException(shardId, $"dataset '{options.TracingsDataset}' claims {shape}: more than 64 leads");
        }

        var claimed = (UInt128)exams * samples * leads * valueBytes;
        if (claimed > (UInt128)Math.Max(0, fileBytes) * (ulong)Math.Max(1, options.MaxExpansion))
        {
            throw new EcgFormatException(shardId, string.Create(
                CultureInfo.InvariantCulture,
                $"dataset '{options.TracingsDataset}' claims {shape} ({claimed:N0} bytes of samples) in a file of {fileBytes:N0} bytes: more than {options.MaxExpansion:N0} times its size (Workers:Hdf5:MaxExpansion)"));
        }
    }

    public int ExamCount { get; }

    public int SamplesPerExam { get; }

    public int LeadCount { get; }

    public bool HasExamIds => _examIds is not null;

    public static Hdf5ShardReader Open(string path, Hdf5ShardOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (!File.Exists(path))
        {
            throw new EcgFormatException(path, "file is missing");
        }

        var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.RandomAccess);
        try
        {
            return Open(stream, path, options, leaveOpen: false);
        }
        catch
        {
            stream.Dispose();
            throw;
        }
    }

    /// <summary>Opens a shard from a readable, seekable stream (for example a blob downloaded to memory or a temporary file).</summary>
    public static Hdf5ShardReader Open(Stream stream, string shardId, Hdf5ShardOptions? options = null, bool leaveOpen = false)
    {
        ArgumentNullException.ThrowIfNull(stream);
        options ??= new Hdf5ShardOptions();
        if (!stream.CanSeek || !stream.CanRead)
        {
            throw new ArgumentException("HDF5 needs a readable, seekable stream", nameof(stream));
        }

        if (stream.Length < 8)
        {
            throw new EcgFormatException(shardId, $"file of {stream.Length} bytes is not an HDF5 file");
        }

        PureHDF.VOL.Native.NativeFile? file = null;
        try
        {
            var native = H5File.Open(stream, leaveOpen);
            file = native;
            var reader = new Hdf5ShardReader(native, native, shardId, options, stream.Length);
            file = null;
            return reader;
        }
        catch (EcgFormatException)
        {
            throw;
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            throw new EcgFormatException(shardId, $"not a readable HDF5 file: {e.Message}", e);
        }
        finally
        {
            file?.Dispose();
        }
    }

    /// <summary>The id of exam <paramref name="index"/>, or null when the shard has no ids.</summary>
    public long? ExamId(int index)
    {
        CheckIndex(index);
        if (_examIds is null)
        {
            return null;
        }

        return Guard(() =>
        {
            var selection = new HyperslabSelection(1, [(ulong)index], [1UL]);
            return _examIds.Type.Size switch
            {
                8 => _examIds.Read<long[]>(selection, null, [1UL])[0],
                4 => _examIds.Read<int[]>(selection, null, [1UL])[0],
                2 => _examIds.Read<short[]>(selection, null, [1UL])[0],
                _ => (long)_examIds.Read<sbyte[]>(selection, null, [1UL])[0],
            };
        }, $"exam id {index}");
    }

    /// <summary>All exam ids (one small dataset), or null when the shard has none.</summary>
    public long[]? ExamIds()
    {
        if (_examIds is null)
        {
            return null;
        }

        return Guard(() => _examIds.Type.Size switch
        {
            8 => _examIds.Read<long[]>(),
            4 => _examIds.Read<int[]>().Select(v => (long)v).ToArray(),
            2 => _examIds.Read<short[]>().Select(v => (long)v).ToArray(),
            _ => _examIds.Read<sbyte[]>().Select(v => (long)v).ToArray(),
        }, "exam ids");
    }

    /// <summary>Reads exam <paramref name="index"/> as an <see cref="EcgSignal"/> (record id "shard#index", or the exam id when known).</summary>
    public EcgSignal ReadExam(int index)
    {
        CheckIndex(index);
        var examId = ExamId(index);
        var recordId = examId is { } id ? $"{_shardId}#{index} (exam {id})" : $"{_shardId}#{index}";
        var samples = SamplesPerExam;
        var leads = LeadCount;
        var starts = new ulong[] { (ulong)index, 0, 0 };
        var blocks = new ulong[3];
        blocks[0] = 1;
        blocks[_sampleAxis] = (ulong)samples;
        blocks[_leadAxis] = (ulong)leads;
        var selection = new HyperslabSelection(3, starts, blocks);
        var memory = new ulong[] { (ulong)samples * (ulong)leads };
        var result = new double[leads][];
        for (var l = 0; l < leads; l++)
        {
            result[l] = new double[samples];
        }

        if (_tracings.Type.Size == 4)
        {
            var values = Guard(() => _tracings.Read<float[]>(selection, null, memory), $"exam {index}");
            Scatter<float>(values, result, samples, leads, v => v);
        }
        else
        {
            var values = Guard(() => _tracings.Read<double[]>(selection, null, memory), $"exam {index}");
            Scatter<double>(values, result, samples, leads, v => v);
        }

        var scale = Options.ScaleToMillivolts;
        for (var l = 0; l < leads; l++)
        {
            if (scale != 1.0)
            {
                var row = result[l];
                for (var t = 0; t < row.Length; t++)
                {
                    row[t] *= scale;
                }
            }

            EcgValues.CheckFinite(recordId, Options.LeadNames[l], result[l]);
        }

        if (Options.TrimZeroPadding)
        {
            result = TrimPadding(result, recordId);
        }

        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        if (examId is { } e)
        {
            metadata["exam_id"] = e.ToString(System.Globalization.CultureInfo.InvariantCulture);
        }

        return new EcgSignal(recordId, Options.SamplingRate, Options.LeadNames, result) { Metadata = metadata };
    }

    public void Dispose() => _file.Dispose();

    private static double[][] TrimPadding(double[][] leads, string recordId)
    {
        var n = leads[0].Length;
        bool Silent(int t) => leads.All(lead => lead[t] == 0);
        var first = 0;
        while (first < n && Silent(first))
        {
            first++;
        }

        if (first == n)
        {
            throw new EcgFormatException(recordId, "every sample of every lead is zero");
        }

        var last = n - 1;
        while (last > first && Silent(last))
        {
            last--;
        }

        return first == 0 && last == n - 1 ? leads : leads.Select(lead => lead[first..(last + 1)]).ToArray();
    }

    private void Scatter<T>(T[] values, double[][] result, int samples, int leads, Func<T, double> widen)
    {
        if (values.Length != samples * leads)
        {
            throw new EcgFormatException(_shardId, $"HDF5 returned {values.Length} values for an exam of {samples} x {leads}");
        }

        if (Options.LeadsFirst)
        {
            for (var l = 0; l < leads; l++)
            {
                var row = result[l];
                for (var t = 0; t < samples; t++)
                {
                    row[t] = widen(values[(l * samples) + t]);
                }
            }
        }
        else
        {
            for (var t = 0; t < samples; t++)
            {
                var o = t * leads;
                for (var l = 0; l < leads; l++)
                {
                    result[l][t] = widen(values[o + l]);
                }
            }
        }
    }

    private void CheckIndex(int index)
    {
        if (index < 0 || index >= ExamCount)
        {
            throw new EcgFormatException($"{_shardId}#{index}", $"exam index {index} is outside the shard's {ExamCount} exams");
        }
    }

    private T Guard<T>(Func<T> read, string what)
    {
        try
        {
            return read();
        }
        catch (Exception e) when (e is not (OutOfMemoryException or EcgFormatException))
        {
            throw new EcgFormatException(_shardId, $"cannot read {what}: {e.Message}", e);
        }
    }
}
