namespace CptLab.Eval.Backends;

/// <summary>
/// lm-eval's rolling windows over a whole document (lm_eval/utils.py <c>get_rolling_token_windows</c> with
/// context_len 1, then <c>make_disjoint_window</c>), so every token is predicted exactly once and the log-likelihoods of
/// the windows add up to the document's. With L the maximum length:
/// the first window predicts tokens[0:L] from the prefix token (BOS) — input [prefix] + tokens[0:L-1];
/// every later window predicts the next min(L, left) tokens, its input the L tokens before its last target
/// (tokens[end-L-1 : end-1]), so each prediction after the first window sees a full L − (targets − 1) tokens of history.
/// </summary>
public static class RollingWindows
{
    /// <summary>The windows as (context, continuation) requests: context + continuation minus its last token is the model input.</summary>
    public static IReadOnlyList<TokenRequest> Windows(IReadOnlyList<int> tokens, int prefixToken, int maxLength)
    {
        if (maxLength < 1) throw new ArgumentOutOfRangeException(nameof(maxLength), maxLength, "the maximum length must be at least 1");
        var windows = new List<TokenRequest>();
        if (tokens.Count == 0) return windows;
        int first = Math.Min(maxLength, tokens.Count);
        windows.Add(new TokenRequest([prefixToken], Slice(tokens, 0, first)));
        int predicted = first;
        while (predicted < tokens.Count)
        {
            int n = Math.Min(tokens.Count - predicted, maxLength);
            int end = predicted + n;
            // get_rolling_token_windows' input tokens[end-L-1 : end-1], made disjoint: its first L − (n − 1) tokens are the context.
            int start = end - maxLength - 1;
            windows.Add(new TokenRequest(Slice(tokens, start, maxLength - (n - 1)), Slice(tokens, end - n, n)));
            predicted = end;
        }
        return windows;
    }

    static int[] Slice(IReadOnlyList<int> xs, int start, int count)
    {
        var a = new int[count];
        for (int i = 0; i < count; i++) a[i] = xs[start + i];
        return a;
    }
}
