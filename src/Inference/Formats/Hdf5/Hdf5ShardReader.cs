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

    private Hdf5ShardReader(IDisposable file, IH5Group root, string shardId, Hdf5ShardOptions options)
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
        if (dims[0] > int.MaxValue || dims[_sampleAxis] > int.MaxValue || dims[_leadAxis] > 4096)
        {
            throw new EcgFormatException(shardId, $"dataset '{options.TracingsDataset}' has implausible dimensions ({string.Join(", ", dims)})");
        }

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
            var reader = new Hdf5ShardReader(native, native, shardId, options);
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
