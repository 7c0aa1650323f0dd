using System.Globalization;
using CptLab.Core;
using CptLab.Data.Prepare;
using CptLab.Data.Tokenization;
using CptLab.Model;

namespace CptLab.Sweep.ScaleOut;

/// <summary>
/// The full-size run reads the sweep's shards, so they must be in the target model's own token ids: the ALMR is a
/// share of the model's tokens, and ids from another vocabulary are another text to the model. With a checkpoint folder
/// (its tokenizer.json or tokenizer.model) the two tokenizers are compared on what they do: the same vocabulary size,
/// special tokens and ids for a probe text in the scripts CPT mixes; with only an architecture (a flavor or a
/// config.json) the vocabulary sizes must agree.
/// </summary>
public static class TokenizerMatch
{
    /// <summary>English, Chinese, code, digits and whitespace runs: where two byte-level BPEs differ first.</summary>
    public const string Probe =
        "The quick brown fox jumps over the lazy dog, 1234567 times.\n\n    def f(x): return x ** 2  # 平方\n" +
        "继续预训练使模型学会中文，同时不忘记英语、数学和代码。¡Olá! Привет 🙂 …\t\t end";

    public static void Ensure(PrepareManifest shards, string dataDir, string target, LlamaConfig targetConfig, string? targetTokenizerFolder)
    {
        var ci = CultureInfo.InvariantCulture;
        string Fix(string tokenizer) =>
            $"the ALMR the sweep chose is a share of the target's own tokens, so the proxies must be trained on shards in its ids: re-tokenize with " +
            $"`cptlab data prepare --tokenizer {tokenizer} …` (same sources and options), run the proxy sweep on those shards and plan again";

        if (targetTokenizerFolder is { } folder && HasTokenizer(folder))
        {
            var theirs = TextTokenizer.Load(folder);
            if (!File.Exists(shards.Tokenizer))
                throw new CptLabException(
                    $"{Path.Combine(dataDir, PrepareManifest.FileName)} names tokenizer {shards.Tokenizer}, which is not on this machine, so the shards cannot be checked " +
                    $"against {target}'s tokenizer; copy it back or re-tokenize with `cptlab data prepare --tokenizer {folder}`");
            var ours = TextTokenizer.Load(shards.Tokenizer);
            var why = Difference(ours, theirs);
            if (why is not null)
                throw new CptLabException($"the sweep's shards ({dataDir}) were tokenized with {shards.Tokenizer}, which is not {target}'s tokenizer: {why}; {Fix(folder)}");
            return;
        }
        if (shards.VocabSize != targetConfig.VocabSize)
            throw new CptLabException(string.Create(ci,
                $"the sweep's shards ({dataDir}) were tokenized with a {shards.VocabSize:N0}-id tokenizer ({shards.Tokenizer}), but {target} has {targetConfig.VocabSize:N0} ids; ") +
                Fix($"{target}'s tokenizer.json") +
                " (with a checkpoint folder as --target the tokenizers themselves are compared)");
    }

    static bool HasTokenizer(string folder) =>
        File.Exists(Path.Combine(folder, "tokenizer.json")) || File.Exists(Path.Combine(folder, "tokenizer.model"));

    /// <summary>Null when the two tokenize alike; else the first difference found, said plainly.</summary>
    static string? Difference(TextTokenizer a, TextTokenizer b)
    {
        var ci = CultureInfo.InvariantCulture;
        if (a.VocabSize != b.VocabSize) return string.Create(ci, $"{a.VocabSize:N0} ids against {b.VocabSize:N0}");
        if (a.BosId != b.BosId || a.EosId != b.EosId) return $"BOS/EOS ids {a.BosId}/{a.EosId} against {b.BosId}/{b.EosId}";
        List<int> x = [], y = [];
        a.Encode(Probe, x);
        b.Encode(Probe, y);
        if (!x.SequenceEqual(y))
        {
            var at = x.Zip(y).TakeWhile(p => p.First == p.Second).Count();
            return string.Create(ci, $"the probe text tokenizes differently from token {at} on ({x.Count} against {y.Count} tokens)");
        }
        return null;
    }
}
