namespace CptLab.Core;

/// <summary>
/// IProgress that calls back on the reporting thread. Progress&lt;T&gt; posts to the thread pool instead, which
/// reorders reports and, for a training loop, would read thread-local state (dispose scopes) from the wrong thread.
/// </summary>
public sealed class SyncProgress<T>(Action<T> report) : IProgress<T>
{
    public void Report(T value) => report(value);
}
