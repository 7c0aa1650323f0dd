using CptLab.Eval.Backends;
using CptLab.Model;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace CptLab.Eval.Tests;

/// <summary>
/// The in-process backend against an independent computation from the model's full logits, with Meta's Llama-3
/// tokenizer: lm-eval's continuation split, multi-token English and Chinese continuations, batched = one by one,
/// and the shared-row path for one-token choices = the general path.
/// </summary>
public sealed class LoglikelihoodTests : IDisposable
{
    readonly LlamaForCausalLM _model = TinyModels.Random(TinyModels.Llama3Tokenizer.VocabSize);

    public void Dispose() => _model.Dispose();

    LocalModel Backend(int batch = 8, bool share = true) => new(_model, TinyModels.Llama3Tokenizer, "tiny", batch) { ShareRows = share };

    /// <summary>Σ log_softmax(logits)[t, cont_t] over the continuation, from one full forward over context + continuation.</summary>
    double Reference(IReadOnlyList<int> ctx, IReadOnlyList<int> cont)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var all = ctx.Concat(cont).Select(i => (long)i).ToArray();
        var logits = _model.forward(tensor(all[..^1], [1, all.Length - 1], ScalarType.Int64));     // (1, T, V)
        var logp = F.log_softmax(logits.to(ScalarType.Float64), -1)[0];                            // (T, V)
        double sum = 0;
        for (int k = 0; k < cont.Count; k++) sum += logp[ctx.Count - 1 + k, cont[k]].item<double>();
        return sum;
    }

    static void Close(double expected, double actual, double tolerance) =>
        Assert.True(Math.Abs(expected - actual) <= tolerance, $"expected {expected:R}, got {actual:R} (tolerance {tolerance})");

    [Fact]
    public void Continuation_tokens_are_the_whole_minus_the_context_with_trailing_spaces_moved()
    {
        var tok = TinyModels.Llama3Tokenizer;
        var m = Backend();
        var r = m.EncodePair("The capital of France is ", "Paris");
        List<int> expectCtx = [tok.BosId!.Value], expectCont = [];
        tok.Encode("The capital of France is", expectCtx);
        tok.Encode(" Paris", expectCont);                   // the space moved into the continuation: one token " Paris"
        Assert.Equal(expectCtx, r.Context);
        Assert.Equal(expectCont, r.Continuation);
        Assert.Single(r.Continuation);

        // 答案： then " A": the continuation is what tokenizing the whole adds after the context's tokens.
        var zh = m.EncodePair("中国的首都是哪里？\n答案：", " A");
        var whole = m.Encode("中国的首都是哪里？\n答案： A");
        Assert.Equal(whole.Take(zh.Context.Count), zh.Context);
        Assert.Equal(whole.Skip(zh.Context.Count), zh.Continuation);
        Assert.Equal(m.Encode("中国的首都是哪里？\n答案："), zh.Context);
    }

    [Fact]
    public void Scores_equal_the_sum_of_log_softmax_over_full_logits_for_multi_token_English_and_Chinese()
    {
        var m = Backend();
        var pairs = new[]
        {
            ("Question: What is two plus two?\nAnswer:", " The answer is four, of course."),
            ("以下是关于农学的单项选择题，请直接给出正确答案的选项。\n\n牛的发情周期平均为\n答案：", " 二十一天左右，因品种而异"),
            ("Scenario: Dorea was trying to cook a Baklava.", " Her daughter enjoyed the Baklava despite it being ruined"),
        };
        var got = m.Loglikelihood(pairs.Select(p => new LoglikelihoodRequest(p.Item1, p.Item2)).ToArray());
        for (int i = 0; i < pairs.Length; i++)
        {
            var tr = m.EncodePair(pairs[i].Item1, pairs[i].Item2);
            Assert.True(tr.Continuation.Count >= 4, $"pair {i} continuation has {tr.Continuation.Count} tokens; the test wants several");
            Assert.Equal(tr.Continuation.Count, got[i].Tokens);
            Close(Reference(tr.Context, tr.Continuation), got[i].LogLikelihood, 1e-4);
            Assert.True(got[i].LogLikelihood < -1, "a random model should find these continuations unlikely");
        }
    }

    [Fact]
    public void Batched_equals_one_by_one()
    {
        var contexts = new[] { "Short one.", "A considerably longer context that makes this row the longest of the batch by far, so others are padded.", "中等长度的中文上下文。", "Mid length context here" };
        var conts = new[] { " yes", " and a multi token continuation", " 是的", " no no no" };
        var reqs = contexts.Zip(conts, (c, k) => new LoglikelihoodRequest(c, k)).ToArray();
        var batched = Backend(batch: 4).Loglikelihood(reqs);
        var single = Backend(batch: 1);
        for (int i = 0; i < reqs.Length; i++)
            Close(single.Loglikelihood([reqs[i]])[0].LogLikelihood, batched[i].LogLikelihood, 1e-4);
    }

    [Fact]
    public void One_pass_for_single_token_choices_equals_the_general_path()
    {
        const string ctx = "牛的发情周期平均为\nA. 16～17天\nB. 21天\nC. 28天\nD. 19～20天\n答案：";
        var reqs = new[] { "A", "B", "C", "D" }.Select(c => new LoglikelihoodRequest(ctx, " " + c)).ToArray();
        var shared = Backend(share: true);
        var general = Backend(share: false);
        var a = shared.Loglikelihood(reqs);
        var b = general.Loglikelihood(reqs);
        Assert.Equal(1, shared.RowsForwarded);   // one forward row scored all four
        Assert.Equal(4, general.RowsForwarded);
        for (int i = 0; i < 4; i++) Close(b[i].LogLikelihood, a[i].LogLikelihood, 1e-5);
        Assert.Equal(4, a.Select(r => r.LogLikelihood).Distinct().Count());
    }
}
