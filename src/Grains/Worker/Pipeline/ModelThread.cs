namespace HubertEcg.Worker.Pipeline;

/// <summary>
/// A thread of its own for blocking model calls, so that a call that takes as long as a batch takes never holds a
/// thread-pool thread (which stays free for reading, preprocessing, writes and Orleans). The async side hands it one
/// item at a time and awaits the result; the thread itself waits on a semaphore between items, never on a task.
/// </summary>
internal sealed class ModelThread<T> : IDisposable
{
    private readonly Action<T> _call;
    private readonly SemaphoreSlim _ready = new(0);
    private T? _item;
    private TaskCompletionSource? _done;
    private volatile bool _stopping;

    public ModelThread(string name, Action<T> call)
    {
        _call = call;
        new Thread(Loop) { IsBackground = true, Name = name }.Start();
    }

    /// <summary>
    /// Runs the call on <paramref name="item"/> on this thread; completes (without blocking anyone) when it returns or throws. One
    /// call at a time: await it before the next.
    /// </summary>
    public Task RunAsync(T item)
    {
        ObjectDisposedException.ThrowIf(_stopping, this);
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _item = item;
        _done = done;
        _ready.Release();
        return done.Task;
    }

    /// <summary>Lets the thread end once its current call (if any) returns.</summary>
    public void Dispose()
    {
        if (_stopping)
        {
            return;
        }

        _stopping = true;
        _ready.Release();
    }

    private void Loop()
    {
        try
        {
            while (true)
            {
                _ready.Wait();
                var done = _done;
                if (done is null)
                {
                    // Woken by Dispose.
                    return;
                }

                var item = _item!;
                _item = default;
                _done = null;
                try
                {
                    _call(item);
                    done.SetResult();
                }
                catch (Exception e)
                {
                    done.SetException(e);
                }
            }
        }
        finally
        {
            _ready.Dispose();
        }
    }
}
