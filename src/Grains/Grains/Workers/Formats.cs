using System.Globalization;
using HubertEcg.Inference.Ecg;

namespace HubertEcg.Grains.Workers;

/// <summary>A WFDB record (<c>.hea</c> + signal files), including PhysioNet Challenge records (<c>.hea</c> + <c>.mat</c>).</summary>
public sealed class WfdbRecordFormat : IRecordFormat
{
    public bool CanRead(IReadOnlySet<string> extensions) => extensions.Contains(".hea");

    public EcgSignal Read(string recordId, IRecordFileSource files, string recordName) =>
        EcgRecordLoader.LoadWfdb(files, recordName, recordId).ToStandard12Lead();
}

/// <summary>
/// A record stored as one NumPy array (leads x samples, mV, standard leads in standard order) at a sampling rate
/// fixed by configuration (<c>Workers:NpySamplingRate</c>, 500 Hz by default), since .npy carries none.
/// </summary>
public sealed class NpyRecordFormat(double samplingRate = 500) : IRecordFormat
{
    public bool CanRead(IReadOnlySet<string> extensions) => extensions.Count == 1 && extensions.Contains(".npy");

    public EcgSignal Read(string recordId, IRecordFileSource files, string recordName)
    {
        using var stream = files.Open(recordName + ".npy");
        return EcgRecordLoader.LoadNpy(stream, recordId, samplingRate).ToStandard12Lead();
    }
}

/// <summary>
/// An HDF5 shard in the CODE-15% layout (<c>tracings</c>, optional <c>exam_id</c>); dataset names, rate and scale come
/// from <c>Workers:Hdf5</c>. Each exam is a record <c>blob#examId</c> (<c>blob#index</c> without exam ids). The open
/// file stays open until the shard is finished; exams are read one at a time.
/// </summary>
public sealed class Hdf5ContainerFormat(Hdf5ShardOptions? options = null) : IContainerFormat
{
    private readonly Hdf5ShardOptions _options = options ?? new Hdf5ShardOptions();

    public bool CanRead(string blobName) =>
        blobName.EndsWith(".h5", StringComparison.OrdinalIgnoreCase) || blobName.EndsWith(".hdf5", StringComparison.OrdinalIgnoreCase);

    public IEnumerable<(string RecordId, Func<EcgSignal> Load)> Open(string localPath, string blobName, ICollection<IDisposable> resources)
    {
        var reader = Hdf5ShardReader.Open(localPath, _options);
        resources.Add(reader);
        var ids = reader.ExamIds();
        var exams = new List<(string, Func<EcgSignal>)>(reader.ExamCount);
        for (var i = 0; i < reader.ExamCount; i++)
        {
            var index = i;
            var examId = ids is null ? "index" + index.ToString(CultureInfo.InvariantCulture) : ids[i].ToString(CultureInfo.InvariantCulture);
            exams.Add(($"{blobName}#{examId}", () =>
            {
                lock (reader)
                {
                    return EcgRecordLoader.LoadHdf5Exam(reader, index, blobName).ToStandard12Lead();
                }
            }));
        }

        return exams;
    }
}
