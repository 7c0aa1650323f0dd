using System.Text.Json;
using CptLab.Core;

namespace CptLab.Training.PostTraining;

/// <summary>
/// The rows of post-training data, epoch after epoch: the same rows (a row is one example, or several packed) in a new
/// seeded order each epoch. Its position — epoch and row — is the small state a checkpoint stores.
/// </summary>
internal sealed class RowStream(IReadOnlyList<int[]> rows, long seed)
{
    int _epoch, _next;
    List<int[]>? _order;

    public int RowsPerEpoch => rows.Count;

    public int[] Next()
    {
        if (_order is null || _next == _order.Count)
        {
            if (_order is not null) { _epoch++; _next = 0; }
            _order = [.. rows];
            SequencePacker.Shuffle(_order, new Random(unchecked((int)(seed * 1_000_003 + _epoch))));
        }
        return _order[_next++];
    }

    public string SaveState() => JsonSerializer.Serialize(new State(_epoch, _next));

    public void RestoreState(string json)
    {
        var s = JsonSerializer.Deserialize<State>(json) ?? throw new CptLabException($"post-training data state '{json}' is not readable");
        if (s.Next < 0 || s.Next > rows.Count) throw new CptLabException($"post-training data state '{json}' points past the {rows.Count} rows of an epoch; the data changed since the checkpoint");
        (_epoch, _next, _order) = (s.Epoch, 0, null);
        Next(); // builds the order of that epoch
        _next = s.Next;
    }

    sealed record State(int Epoch, int Next);
}
