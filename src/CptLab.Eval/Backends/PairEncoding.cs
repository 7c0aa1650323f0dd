using CptLab.Data.Tokenization;

namespace CptLab.Eval.Backends;

/// <summary>
/// lm-eval's <c>_encode_pair</c>, shared by every backend that tokenizes on the client (in-process, and the OpenAI-API
/// backend that sends token ids), so that all of them score exactly the same tokens: trailing whitespace of the context
/// moves into the continuation; the continuation's tokens are tok(context + continuation) minus tok(context), both with
/// BOS as a Hugging Face Llama-3 tokenizer adds it; an empty context is the BOS alone.
/// </summary>
public static class PairEncoding
{
    /// <summary>The token ids of a text with BOS first, as the model's Hugging Face tokenizer encodes by default.</summary>
    public static List<int> Encode(ITextTokenizer tokenizer, string text)
    {
        var ids = new List<int>();
        if (tokenizer.BosId is { } bos) ids.Add(bos);
        tokenizer.Encode(text, ids);
        return ids;
    }

    public static TokenRequest EncodePair(ITextTokenizer tokenizer, string context, string continuation)
    {
        if (context.Length == 0)
        {
            var cont = new List<int>();
            tokenizer.Encode(continuation, cont);
            return new TokenRequest(Encode(tokenizer, ""), cont);
        }
        int keep = context.TrimEnd().Length;
        if (keep < context.Length)
        {
            continuation = context[keep..] + continuation;
            context = context[..keep];
        }
        var whole = Encode(tokenizer, context + continuation);
        var ctx = Encode(tokenizer, context);
        return new TokenRequest(ctx, whole.GetRange(ctx.Count, whole.Count - ctx.Count));
    }
}
