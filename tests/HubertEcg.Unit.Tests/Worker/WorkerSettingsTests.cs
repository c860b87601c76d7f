using HubertEcg.Grains;
using HubertEcg.Inference.Ecg;
using HubertEcg.Inference.Ecg.Synthetic;
using HubertEcg.Inference.Formats;
using HubertEcg.Inference.Formats.Hdf5;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace HubertEcg.Unit.Tests.Worker;

/// <summary>How the silo's <c>Workers:Hdf5</c> settings reach the HDF5 reader.</summary>
public sealed class WorkerSettingsTests
{
    [Fact]
    public void Hdf5LeadNamesReplaceTheDefaultsAndAnEmptyExamIdDatasetMeansNone()
    {
        var path = Path.Combine(Path.GetTempPath(), $"settings-{Guid.NewGuid():N}.hdf5");
        var examIds = new long[] { 7001, 7002 };
        File.WriteAllBytes(path, Code15ShardWriter.Write([SyntheticEcg.Generate("e0", 1, 400, 10), SyntheticEcg.Generate("e1", 2, 400, 10)], examIds));
        try
        {
            var (defaultId, standard) = FirstExam(path, []);
            Assert.Equal($"c/x.hdf5#{examIds[0]}", defaultId);

            // The shard's lead axis named back to front, and no exam ids: lead I is the last column.
            var reversed = new Dictionary<string, string?> { ["Workers:Hdf5:ExamIdDataset"] = "" };
            for (var i = 0; i < 12; i++)
            {
                reversed[$"Workers:Hdf5:LeadNames:{i}"] = StandardLeads.Names[11 - i];
            }

            var (id, signal) = FirstExam(path, reversed);
            Assert.Equal("c/x.hdf5#index0", id);
            Assert.Equal(standard.Leads[11], signal.Leads[0]);
            Assert.Equal(standard.Leads[0], signal.Leads[11]);
        }
        finally
        {
            File.Delete(path);
        }
    }

    private static (string RecordId, EcgSignal Signal) FirstExam(string path, Dictionary<string, string?> settings)
    {
        settings["Postgres:ConnectionString"] = "Host=unused";
        settings["BlobStorage:ConnectionString"] = "UseDevelopmentStorage=true";
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(settings).Build();
        using var services = new ServiceCollection().AddHubertEcgScoring(configuration, startWorkers: false).BuildServiceProvider();
        var registry = services.GetRequiredService<FormatRegistry>();
        var resources = new List<IDisposable>();
        try
        {
            var (recordId, load) = registry.OpenContainer(path, "c/x.hdf5", resources).First();
            return (recordId, load().ToStandard12Lead());
        }
        finally
        {
            resources.ForEach(r => r.Dispose());
        }
    }
}
