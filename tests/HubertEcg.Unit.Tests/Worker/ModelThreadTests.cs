using HubertEcg.Worker.Pipeline;

namespace HubertEcg.Unit.Tests.Worker;

/// <summary>The model callers' own threads: calls run there, and their results and errors come back as tasks.</summary>
public sealed class ModelThreadTests
{
    [Fact]
    public async Task EachCallRunsOnTheSameDedicatedThreadAndItsErrorComesBack()
    {
        var threads = new List<(int Id, bool Pooled)>();
        using var thread = new ModelThread<bool>("test model caller", fail =>
        {
            threads.Add((Environment.CurrentManagedThreadId, Thread.CurrentThread.IsThreadPoolThread));
            if (fail)
            {
                throw new InvalidOperationException("the model failed");
            }
        });

        await thread.RunAsync(false).WaitAsync(TimeSpan.FromSeconds(60));
        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => thread.RunAsync(true).WaitAsync(TimeSpan.FromSeconds(60)));
        await thread.RunAsync(false).WaitAsync(TimeSpan.FromSeconds(60));

        Assert.Equal("the model failed", error.Message);
        Assert.Equal(3, threads.Count);
        Assert.Single(threads.Distinct());
        Assert.False(threads[0].Pooled);
        Assert.NotEqual(Environment.CurrentManagedThreadId, threads[0].Id);
    }
}
