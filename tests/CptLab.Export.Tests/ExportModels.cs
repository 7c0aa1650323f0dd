using System.Text.Json;
using CptLab.Data.Tokenization;
using CptLab.Model;
using CptLab.TestKit;
using static TorchSharp.torch;

namespace CptLab.Export.Tests;

/// <summary>
/// Model folders for the tests, built once per test run: random weights saved with <see cref="HfCheckpoint.Save"/>
/// and Meta's real Llama-3 tokenizer.json + tokenizer_config.json put beside them (a complete folder, as a trained
/// model's will be).
/// <list type="bullet">
/// <item>small: the cpu-2m shape (4 layers, 4 heads over 2 kv heads, tied embeddings, rope θ 10⁴) with Llama-3's
/// 128,256-token vocabulary;</item>
/// <item>llama31: Llama-3.1's structure at toy width — 8 query heads over 2 kv heads (GQA), θ 5·10⁵, untied head and
/// rope_type llama3 with original_max_position_embeddings 64, so that with head_dim 16 the frequencies fall in all
/// three bands (kept: wavelength 6.3; blended: 32.7; divided: the rest) and the scaling bites from the first
/// dozens of positions.</item>
/// </list>
/// Each is saved in float32, float16 and bfloat16, so a GGUF of one type can be compared with CptLab on the very
/// same weights.
/// </summary>
public sealed class ExportModels : IDisposable
{
    public string Root { get; } = Path.Combine(Path.GetTempPath(), "cptlab-export-tests", Guid.NewGuid().ToString("N"));

    public static LlamaConfig Small => Flavors.Get("cpu-2m") with
    {
        VocabSize = 128256, BosTokenId = 128000, EosTokenIds = [128001],
    };

    public static LlamaConfig Llama31 => new()
    {
        VocabSize = 128256, HiddenSize = 128, IntermediateSize = 256, NumHiddenLayers = 2,
        NumAttentionHeads = 8, NumKeyValueHeads = 2, HeadDim = 16, MaxPositionEmbeddings = 1024,
        RopeTheta = 500000.0, RmsNormEps = 1e-5, TieWordEmbeddings = false,
        RopeScaling = new RopeScaling("llama3", Factor: 8.0, LowFreqFactor: 1.0, HighFreqFactor: 4.0, OriginalMaxPositionEmbeddings: 64),
        BosTokenId = 128000, EosTokenIds = [128001], TorchDtype = "float32",
    };

    readonly Lazy<TextTokenizer> _tokenizer = new(() => TextTokenizer.Load(RepoPaths.Llama3TokenizerDir));
    readonly Dictionary<string, string> _dirs = [];
    readonly object _gate = new();

    public ExportModels()
    {
        TorchRuntime.Initialise(2);
        Directory.CreateDirectory(Root);
    }

    /// <summary>CptLab's tokenizer for Meta's Llama-3 tokenizer.json (the one in every folder here).</summary>
    public TextTokenizer Tokenizer => _tokenizer.Value;

    /// <summary>The folder of model <paramref name="name"/> ("small", "llama31") stored in <paramref name="dtype"/>.</summary>
    public string Folder(string name, ScalarType dtype = ScalarType.Float32)
    {
        var key = $"{name}-{DtypeNames.HfName(dtype)}";
        lock (_gate)
        {
            if (_dirs.TryGetValue(key, out var dir)) return dir;
            dir = Path.Combine(Root, key);
            // One model per name: other dtypes are the float32 folder's weights, rounded by HfCheckpoint.Save.
            using (var model = dtype == ScalarType.Float32 ? Build(name) : HfCheckpoint.Load(Folder(name), ScalarType.Float32))
                HfCheckpoint.Save(model, dir, dtype);
            CopyTokenizer(dir);
            _dirs[key] = dir;
            return dir;
        }
    }

    /// <summary>
    /// "small" and "llama31" are trained for a few dozen AdamW steps on real text from the standard initialisation:
    /// a trained model puts a clear margin between its first and second choice, as real models do, where a random
    /// one over 128k tokens has near-ties that any rounding flips (llama.cpp rounds activations to f16 for f16
    /// weights). "llama31-random" keeps random weights (std 0.3), for the strictest per-position comparisons.
    /// </summary>
    LlamaForCausalLM Build(string name)
    {
        var config = name switch { "small" => Small, "llama31" or "llama31-random" => Llama31, _ => throw new ArgumentException(name) };
        var model = new LlamaForCausalLM(config, ScalarType.Float32);
        if (name == "llama31-random") return RandomWeights.Fill(model, seed: 31);
        model.InitWeights(name == "small" ? 11 : 31);
        var ids = Tokenizer.Encode(TrainingText, addBos: true);
        TrainingLoss[name] = Train(model, ids[..(TrainTokens + 1)], steps: TrainSteps);
        return model;
    }

    public const int TrainTokens = 192;
    public const int TrainSteps = 60;

    /// <summary>Mean cross-entropy (nats) before and after training, per model name.</summary>
    public Dictionary<string, (double First, double Last)> TrainingLoss { get; } = [];

    /// <summary>The text the trained models learn: the opening of the sample text (the greedy prompts come from it).</summary>
    public static string TrainingText => SampleText(englishChars: 1400, chineseChars: 400);

    static (double, double) Train(LlamaForCausalLM model, int[] ids, int steps)
    {
        double first = 0, last = 0;
        var input = ids[..^1].Select(i => (long)i).ToArray();
        var target = ids[1..].Select(i => (long)i).ToArray();
        using var optimizer = TorchSharp.torch.optim.AdamW(model.parameters(), lr: 1e-2, weight_decay: 0.0);
        for (int step = 0; step < steps; step++)
        {
            using var scope = NewDisposeScope();
            var logits = model.forward(tensor(input).unsqueeze(0));                                      // (1, T, V)
            var loss = TorchSharp.torch.nn.functional.cross_entropy(logits.view(-1, model.Config.VocabSize), tensor(target));
            optimizer.zero_grad();
            loss.backward();
            optimizer.step();
            last = loss.item<float>();
            if (step == 0) first = last;
        }
        return (first, last);
    }

    /// <summary>
    /// A folder with a tokenizer that BpeTrainer trained on real text (Brown corpus and Tang poems, 2,048 tokens with
    /// Llama-3's pattern and special tokens) and a random debug-sized model over that vocabulary; small, so
    /// the refusal tests export it in a blink.
    /// </summary>
    public string BpeFolder
    {
        get
        {
            lock (_gate)
            {
                if (_dirs.TryGetValue("bpe", out var dir)) return dir;
                dir = Path.Combine(Root, "bpe-float32");
                Directory.CreateDirectory(dir);
                var bpe = BpeTrainer.Train(BpeTrainingText(), new BpeTrainerOptions { VocabSize = 2048 });
                bpe.Save(Path.Combine(dir, "tokenizer.json"));
                File.Copy(Path.Combine(RepoPaths.Llama3TokenizerDir, "tokenizer_config.json"), Path.Combine(dir, "tokenizer_config.json"));
                var config = Flavors.Get("debug") with { VocabSize = bpe.VocabSize, BosTokenId = bpe.FirstSpecialId, EosTokenIds = [bpe.FirstSpecialId + 1] };
                using (var model = RandomWeights.Fill(new LlamaForCausalLM(config, ScalarType.Float32), seed: 5))
                    HfCheckpoint.Save(model, dir);
                _dirs["bpe"] = dir;
                return dir;
            }
        }
    }

    /// <summary>~300 KB of real text, as documents: the tokenizer is trained on it, the tokenization tests read past it.</summary>
    public static IEnumerable<string> BpeTrainingText() =>
        BrownDocuments().Take(60).Concat(TangPoems().Take(1500));

    public static IEnumerable<string> BrownDocuments()
    {
        foreach (var line in File.ReadLines(Path.Combine(RepoPaths.Cache, "corpora", "brown", "brown.jsonl")))
        {
            using var doc = JsonDocument.Parse(line);
            yield return doc.RootElement.GetProperty("text").GetString()!;
        }
    }

    public static IEnumerable<string> TangPoems()
    {
        var dir = Path.Combine(RepoPaths.Cache, "corpora", "chinese-poetry", "dist", "quantangshi");
        foreach (var file in new[] { "poet.tang.12000.json", "poet.tang.25000.json" })
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, file)));
            foreach (var poem in doc.RootElement.EnumerateArray())
                yield return poem.GetProperty("title").GetString() + "\n" + string.Join("\n", poem.GetProperty("paragraphs").EnumerateArray().Select(p => p.GetString()));
        }
    }

    public static void CopyTokenizer(string dir)
    {
        foreach (var f in new[] { "tokenizer.json", "tokenizer_config.json" })
            File.Copy(Path.Combine(RepoPaths.Llama3TokenizerDir, f), Path.Combine(dir, f), overwrite: true);
    }

    /// <summary>A model folder exported to a GGUF of <paramref name="type"/> under the test root (cached per folder and type).</summary>
    public string Gguf(string folder, GgufWeightType type)
    {
        var path = Path.Combine(Root, $"{Path.GetFileName(folder)}-{type.ToString().ToLowerInvariant()}.gguf");
        lock (_gate)
            if (!File.Exists(path)) GgufExport.Export(folder, path, type);
        return path;
    }

    /// <summary>
    /// Real text for the sequences the models are run on: English (Brown corpus), classical Chinese (Tang poems),
    /// code and emoji, from the fetched corpora.
    /// </summary>
    public static string SampleText(int englishChars = 600, int chineseChars = 200)
    {
        var english = FirstBrownText(englishChars);
        var chinese = FirstTangPoems(chineseChars);
        return english + "\n\n" + chinese + "\n\n" + CodeSample + "\n" + EmojiSample;
    }

    public const string CodeSample = "def fib(n: int) -> int:\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)  # 0x1F, 3.14159\n\tfor (int i = 0; i < 10; ++i) { sum += a[i]; }";
    public const string EmojiSample = "Ready? 🚀🦙 ✅ 👩‍👩‍👧‍👦 — café naïve «quote» ‘single’ … 𠀋 𪚥 ０１２";

    static string FirstBrownText(int chars)
    {
        var path = Path.Combine(RepoPaths.Cache, "corpora", "brown", "brown.jsonl");
        var sb = new System.Text.StringBuilder();
        foreach (var line in File.ReadLines(path))
        {
            using var doc = JsonDocument.Parse(line);
            sb.Append(doc.RootElement.GetProperty("text").GetString()).Append('\n');
            if (sb.Length >= chars) break;
        }
        return sb.ToString(0, Math.Min(chars, sb.Length));
    }

    static string FirstTangPoems(int chars)
    {
        var path = Path.Combine(RepoPaths.Cache, "corpora", "chinese-poetry", "dist", "quantangshi", "poet.tang.12000.json");
        using var doc = JsonDocument.Parse(File.ReadAllText(path));
        var sb = new System.Text.StringBuilder();
        foreach (var poem in doc.RootElement.EnumerateArray())
        {
            sb.Append(poem.GetProperty("title").GetString()).Append('\n');
            foreach (var p in poem.GetProperty("paragraphs").EnumerateArray()) sb.Append(p.GetString()).Append('\n');
            if (sb.Length >= chars) break;
        }
        return sb.ToString(0, Math.Min(chars, sb.Length));
    }

    public void Dispose()
    {
        try { Directory.Delete(Root, recursive: true); } catch (IOException) { }
    }
}

[CollectionDefinition(nameof(ExportModels))]
public sealed class ExportModelsCollection : ICollectionFixture<ExportModels>;
