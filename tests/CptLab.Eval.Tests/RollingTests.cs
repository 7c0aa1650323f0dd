using System.Text;
using System.Text.Json;
using CptLab.Eval.Backends;
using CptLab.Eval.Scoring;
using CptLab.Eval.Tasks;
using CptLab.Model;
using CptLab.TestKit;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace CptLab.Eval.Tests;

/// <summary>
/// loglikelihood_rolling against an independent computation: lm-eval's windows written out by hand, the summed
/// log-likelihood of a document shorter and one longer than the maximum length against full-logit forwards over
/// the hand-made windows, and bits per byte from the bytes of the source text (3 per CJK character).
/// </summary>
public sealed class RollingTests : IDisposable
{
    const int Context = 16;
    readonly LlamaForCausalLM _model = TinyModels.Random(TinyModels.Llama3Tokenizer.VocabSize, seed: 11, context: Context);

    public void Dispose() => _model.Dispose();

    [Fact]
    public void Windows_are_lm_evals_disjoint_rolling_windows()
    {
        int[] tokens = [10, 11, 12, 13, 14, 15, 16, 17, 18, 19];
        var w = RollingWindows.Windows(tokens, prefixToken: 1, maxLength: 4);
        // get_rolling_token_windows(tokens, 1, 4, 1) → ([1,10,11,12],[10..13]), ([13..16],[14..17]), ([15..18],[18,19]);
        // make_disjoint_window keeps the first len(a) − (len(b) − 1) input tokens as the context.
        Assert.Equal(3, w.Count);
        Assert.Equal([1], w[0].Context); Assert.Equal([10, 11, 12, 13], w[0].Continuation);
        Assert.Equal([13], w[1].Context); Assert.Equal([14, 15, 16, 17], w[1].Continuation);
        Assert.Equal([15, 16, 17], w[2].Context); Assert.Equal([18, 19], w[2].Continuation);

        var shortDoc = RollingWindows.Windows([10, 11], 1, 4);
        Assert.Single(shortDoc);
        Assert.Equal([1], shortDoc[0].Context); Assert.Equal([10, 11], shortDoc[0].Continuation);
        Assert.Empty(RollingWindows.Windows([], 1, 4));
        // Exactly L tokens: one window; L + 1: a second window predicting the last token from the L before it.
        Assert.Single(RollingWindows.Windows([10, 11, 12, 13], 1, 4));
        var plusOne = RollingWindows.Windows([10, 11, 12, 13, 14], 1, 4);
        Assert.Equal([10, 11, 12, 13], plusOne[1].Context); Assert.Equal([14], plusOne[1].Continuation);
    }

    /// <summary>Σ log_softmax over one forward of <paramref name="input"/>, at its last |targets| positions.</summary>
    double Forward(IReadOnlyList<int> input, IReadOnlyList<int> targets)
    {
        Assert.True(input.Count <= Context, $"a window input of {input.Count} tokens is longer than the model's {Context}");
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var logits = _model.forward(tensor(input.Select(i => (long)i).ToArray(), [1, input.Count], ScalarType.Int64)); // (1, T, V)
        var logp = F.log_softmax(logits.to(ScalarType.Float64), -1)[0];                                                // (T, V)
        double sum = 0;
        for (int k = 0; k < targets.Count; k++) sum += logp[input.Count - targets.Count + k, targets[k]].item<double>();
        return sum;
    }

    static void Close(double expected, double actual, double tolerance) =>
        Assert.True(Math.Abs(expected - actual) <= tolerance, $"expected {expected:R}, got {actual:R} (tolerance {tolerance})");

    [Fact]
    public void Whole_document_log_likelihood_equals_full_logits_over_hand_made_windows()
    {
        var tok = TinyModels.Llama3Tokenizer;
        int bos = tok.BosId!.Value;
        var backend = new LocalModel(_model, tok, "tiny", batchSize: 3);
        const string shortText = "The cat sat on the mat.";
        const string longText = "It was the best of times, it was the worst of times, it was the age of wisdom, it was the age of foolishness, 春风又绿江南岸。";
        List<int> s = [], l = [];
        tok.Encode(shortText, s);
        tok.Encode(longText, l);
        Assert.InRange(s.Count, 2, Context - 1);
        Assert.InRange(l.Count, 2 * Context + 1, 3 * Context - 1); // three windows

        // Shorter than the context: one forward of BOS + tokens[:-1] predicts every token, the first from BOS.
        double expectShort = Forward([bos, .. s.Take(s.Count - 1)], s);
        // Longer: tokens 0–15 from [BOS, t0..t14]; 16–31 from t15..t30; 32..n−1 from the 16 tokens before the last one.
        int n = l.Count;
        double expectLong = Forward([bos, .. l.Take(Context - 1)], l.Take(Context).ToArray())
            + Forward(l.Skip(Context - 1).Take(Context).ToArray(), l.Skip(Context).Take(Context).ToArray())
            + Forward(l.Skip(n - Context - 1).Take(Context).ToArray(), l.Skip(2 * Context).ToArray());

        var got = backend.LoglikelihoodRolling([shortText, longText, ""]);
        Close(expectShort, got[0].LogLikelihood, 1e-4);
        Assert.Equal(s.Count, got[0].Tokens);
        Close(expectLong, got[1].LogLikelihood, 1e-4);
        Assert.Equal(n, got[1].Tokens);
        Assert.Equal((0.0, 0), (got[2].LogLikelihood, got[2].Tokens));

        // One at a time gives the same sums as batched across documents; a shorter --max-length cuts more windows.
        Close(got[1].LogLikelihood, new LocalModel(_model, tok, "tiny", batchSize: 1).LoglikelihoodRolling([longText])[0].LogLikelihood, 1e-4);
        var eight = new LocalModel(_model, tok, "tiny") { MaxLength = 8 }.LoglikelihoodRolling([shortText])[0];
        Assert.Equal(s.Count, eight.Tokens);
        Assert.Throws<Core.CptLabException>(() => new LocalModel(_model, tok, "tiny") { MaxLength = Context + 1 });
    }

    [Fact]
    public void Bits_per_byte_divides_by_the_utf8_bytes_of_the_source_text()
    {
        var dir = Temp.Dir();
        var data = Path.Combine(dir, "text");
        Directory.CreateDirectory(data);
        string[] texts =
        [
            "The quick brown fox jumps over the lazy dog.  Twice.",
            "春风又绿江南岸\n明月何时照我还",          // 14 CJK characters (3 bytes each) and a newline
            "A longer English document: " + string.Join(" ", Enumerable.Range(0, 12).Select(i => $"word{i}")),
        ];
        File.WriteAllLines(Path.Combine(data, "docs.jsonl"), texts.Select(t => JsonSerializer.Serialize(new { text = t })), new UTF8Encoding(false));
        var yaml = Path.Combine(dir, "bpb_test.yaml");
        File.WriteAllText(yaml, File.ReadAllText(Path.Combine(TaskRegistry.DefaultFolder, "bpb_en.yaml"))
            .Replace("dataset_path: brown", "dataset_path: text").Replace("\"brown.jsonl\"", "\"docs.jsonl\"").Replace("held_out_fraction: 0.02\n", "").Replace("task: bpb_en", "task: bpb_test"));
        var spec = TaskSpec.Load(yaml);
        var backend = new LocalModel(_model, TinyModels.Llama3Tokenizer, "tiny");
        var run = Evaluator.Run(backend, [spec], new EvalOptions { DataDir = dir });

        long[] bytes = [52, 14 * 3 + 1, 27 + 10 * 5 + 2 * 6 + 11];                   // counted by hand from the strings above
        long[] words = [10, 2, 4 + 12];                                      // pieces of re.split(r"\s+", text)
        Assert.Equal(bytes, texts.Select(t => (long)Encoding.UTF8.GetByteCount(t)));
        var lls = backend.LoglikelihoodRolling(texts).Select(r => r.LogLikelihood).ToArray();
        Assert.Equal(3, run.Samples.Count);
        for (int i = 0; i < 3; i++)
        {
            Close(lls[i], run.Samples[i].LogLikelihoods![0], 1e-9);
            Assert.Equal(bytes[i], run.Samples[i].Counts!["bytes"]);
            Assert.Equal(words[i], run.Samples[i].Counts!["words"]);
        }
        var m = run.Tasks[0].Units[0].Metrics.ToDictionary(x => x.Metric, x => x.Value);
        Close(-lls.Sum() / Math.Log(2) / bytes.Sum(), m["bits_per_byte"], 1e-12);
        Close(Math.Exp(-lls.Sum() / bytes.Sum()), m["byte_perplexity"], 1e-9);
        Close(Math.Exp(-lls.Sum() / words.Sum()), m["word_perplexity"], 1e-6 * m["word_perplexity"]);
        Close(-lls[1] / Math.Log(2) / 43, run.Samples[1].Scores["bits_per_byte"], 1e-12);
        Assert.True(m["bits_per_byte"] > 1, "a random model spends more than a bit per byte");
    }

    [Fact]
    public void Held_out_fraction_keeps_the_documents_prepare_holds_out_as_it_cleans_them()
    {
        var dir = Temp.Dir();
        var data = Path.Combine(dir, "text");
        Directory.CreateDirectory(data);
        var texts = Enumerable.Range(0, 60).Select(i => $"  Document number {i} with some text in it, made long enough.\r\n").ToArray();
        File.WriteAllLines(Path.Combine(data, "docs.jsonl"), texts.Select(t => JsonSerializer.Serialize(new { text = t })));
        var yaml = Path.Combine(dir, "bpb_test.yaml");
        File.WriteAllText(yaml, File.ReadAllText(Path.Combine(TaskRegistry.DefaultFolder, "bpb_en.yaml"))
            .Replace("dataset_path: brown", "dataset_path: text").Replace("\"brown.jsonl\"", "\"docs.jsonl\"").Replace("held_out_fraction: 0.02", "held_out_fraction: 0.3"));
        var unit = TaskData.Load(TaskSpec.Load(yaml), dir).Single();
        // What `data prepare` decides: TextCleaner.Clean's split value of each document, below the fraction.
        var cleaner = new Data.Cleaning.TextCleaner(new Data.Cleaning.CleaningOptions());
        var expected = texts.Select(t => cleaner.Clean(t, "en")).Where(c => c.Drop is null && c.SplitValue < 0.3).Select(c => c.Text).ToArray();
        Assert.InRange(expected.Length, 5, 30);
        Assert.Equal(expected, unit.Docs.Select(d => d.Target));
        Assert.All(unit.Docs, d => Assert.DoesNotContain('\r', d.Target));
        Assert.Empty(unit.Skipped);
    }
}
