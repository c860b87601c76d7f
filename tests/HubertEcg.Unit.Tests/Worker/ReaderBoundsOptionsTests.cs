using HubertEcg.Inference.Formats.Archive;
using HubertEcg.Inference.Formats.Hdf5;
using HubertEcg.Worker;

namespace HubertEcg.Unit.Tests.Worker;

/// <summary>The readers' bounds (HDF5 shape, archive extraction) are settings a silo refuses to start with when they cannot work.</summary>
public sealed class ReaderBoundsOptionsTests
{
    [Fact]
    public void TheDefaultsAreValid() => Assert.Empty(new WorkerOptions().Problems());

    [Fact]
    public void BoundsThatCannotWorkAreNamed()
    {
        var options = new WorkerOptions
        {
            Hdf5 = new Hdf5ShardOptions { MaxExams = 0, MaxSamplesPerExam = -1, MaxExpansion = 0 },
            Archives = new ArchiveOptions { MaxExpansion = 0, FreeSpaceFraction = 1.5 },
        };

        Assert.Equal(
            [
                "Workers:Archives:MaxExpansion must be positive, not 0",
                "Workers:Hdf5:MaxExams must be positive, not 0",
                "Workers:Hdf5:MaxSamplesPerExam must be positive, not -1",
                "Workers:Hdf5:MaxExpansion must be positive, not 0",
                "Workers:Archives:FreeSpaceFraction must be more than 0 and at most 1, not 1.5",
            ],
            options.Problems());
    }
}
