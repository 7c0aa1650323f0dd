using System.Text;
using System.Text.Json;
using System.Text.Unicode;
using CptLab.Data.Tokenization;

namespace CptLab.Serving.Tests;

/// <summary>
/// logprobs' <c>bytes</c> are each token's own bytes, which for byte-level BPE may be part of a UTF-8 character;
/// the reference is the tokenizer.json vocabulary mapped through GPT-2's byte table, written here from its
/// definition (openai/gpt-2 encoder.py, bytes_to_unicode) rather than taken from CptLab's ByteLevel.
/// </summary>
[Collection("server")]
public class TokenBytesTests(SharedServer shared)
{
    RunningServer S => shared.Server;

    /// <summary>GPT-2's bytes_to_unicode, inverted: printable character of the vocabulary → byte.</summary>
    static Dictionary<char, byte> Gpt2UnicodeToByte()
    {
        var bs = new List<int>();
        for (int b = '!'; b <= '~'; b++) bs.Add(b);
        for (int b = '¡'; b <= '¬'; b++) bs.Add(b);
        for (int b = '®'; b <= 'ÿ'; b++) bs.Add(b);
        var cs = new List<int>(bs);
        int n = 0;
        for (int b = 0; b < 256; b++)
            if (!bs.Contains(b)) { bs.Add(b); cs.Add(256 + n++); }
        return bs.Zip(cs).ToDictionary(p => (char)p.Second, p => (byte)p.First);
    }

    /// <summary>id → bytes from a tokenizer.json: vocabulary strings through the table, added tokens as their UTF-8.</summary>
    public static Dictionary<int, byte[]> VocabularyBytes(string tokenizerJson)
    {
        var table = Gpt2UnicodeToByte();
        using var doc = JsonDocument.Parse(File.ReadAllBytes(tokenizerJson));
        var result = new Dictionary<int, byte[]>();
        foreach (var p in doc.RootElement.GetProperty("model").GetProperty("vocab").EnumerateObject())
            result[p.Value.GetInt32()] = [.. p.Name.Select(c => table[c])];
        foreach (var a in doc.RootElement.GetProperty("added_tokens").EnumerateArray())
            result[a.GetProperty("id").GetInt32()] = Encoding.UTF8.GetBytes(a.GetProperty("content").GetString()!);
        return result;
    }

    static Dictionary<int, byte[]>? _testVocabulary;
    static Dictionary<int, byte[]> TestVocabulary => _testVocabulary ??= VocabularyBytes(Path.Combine(TestModelDir.Path, "tokenizer.json"));

    [Fact]
    public void Token_bytes_are_the_vocabulary_bytes_including_partial_characters()
    {
        int partial = 0;
        foreach (var (id, expected) in TestVocabulary)
        {
            Assert.Equal(expected, S.Model.Tokenizer.TokenBytes(id));
            if (!Utf8.IsValid(expected)) partial++;
        }
        Assert.True(partial >= 128, $"only {partial} tokens are part of a character; every byte ≥ 0x80 alone is one");
    }

    [Fact]
    public void Llama3_token_bytes_are_the_vocabulary_bytes()
    {
        var dir = TestKit.RepoPaths.Llama3TokenizerDir;
        var tokenizer = TextTokenizer.Load(dir);
        var vocabulary = VocabularyBytes(Path.Combine(dir, "tokenizer.json"));
        Assert.Equal(128_256, vocabulary.Count);
        int partial = 0;
        foreach (var (id, expected) in vocabulary)
        {
            var got = tokenizer.TokenBytes(id);
            if (!got.AsSpan().SequenceEqual(expected)) Assert.Fail($"token {id}: bytes [{string.Join(' ', got.Select(b => b.ToString("X2")))}], vocabulary [{string.Join(' ', expected.Select(b => b.ToString("X2")))}]");
            if (!Utf8.IsValid(expected)) partial++;
        }
        Assert.True(partial > 1000, $"Llama-3 has thousands of tokens holding part of a character; found {partial}");
        // "你" is E4 BD A0; Llama-3 encodes it whole, but holds its lead pair as a token of its own.
        var lead = vocabulary.Single(kv => kv.Value.AsSpan().SequenceEqual(new byte[] { 0xE4, 0xBD })).Key;
        Assert.Equal([0xE4, 0xBD], tokenizer.TokenBytes(lead));
        Assert.Contains('\uFFFD', tokenizer.Decode([lead]));
    }

    /// <summary>
    /// A chat reply whose one character is split across two tokens: the bytes of its content logprobs
    /// concatenate to the reply's UTF-8, although neither token's text alone is a character. The logit bias
    /// leaves the model only the two halves, and of short prompts the test takes the first whose greedy reply
    /// puts them in order.
    /// </summary>
    [Fact]
    public async Task Chat_logprob_bytes_of_a_split_character_concatenate_to_the_reply()
    {
        var (character, first, second) = SplitCharacter();
        var target = Encoding.UTF8.GetBytes(character);
        string bias = $"{{\"{first}\": 100, \"{second}\": 100}}";
        JsonElement? hit = null;
        for (int batch = 0; batch < 4 && hit is null; batch++)
        {
            var replies = await Task.WhenAll(Enumerable.Range(batch * 16, 16).Select(i => S.PostAsync("v1/chat/completions",
                $"{{\"messages\": [{{\"role\": \"user\", \"content\": \"{i}\"}}], \"temperature\": 0, \"max_tokens\": 2, \"logprobs\": true, \"top_logprobs\": 2, \"logit_bias\": {bias}}}")));
            foreach (var (status, body) in replies)
            {
                Assert.Equal(200, status);
                if (body.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString() == character) { hit = body; break; }
            }
        }
        Assert.True(hit is not null, $"no greedy reply of 64 prompts was '{character}' from tokens {first} then {second}");
        var content = hit!.Value.GetProperty("choices")[0].GetProperty("logprobs").GetProperty("content");
        Assert.Equal(2, content.GetArrayLength());
        var bytes = content.EnumerateArray().SelectMany(t => t.GetProperty("bytes").EnumerateArray().Select(b => (byte)b.GetInt32())).ToArray();
        Assert.Equal(target, bytes);
        Assert.Equal(TestVocabulary[first], content[0].GetProperty("bytes").EnumerateArray().Select(b => (byte)b.GetInt32()).ToArray());
        Assert.Contains('\uFFFD', content[0].GetProperty("token").GetString()!); // the text of half a character, as OpenAI's
        // The alternatives (the raw model's, before the bias) carry their own bytes too: some token's of the vocabulary.
        var known = TestVocabulary.Values.Select(Convert.ToHexString).ToHashSet();
        foreach (var alt in content.EnumerateArray().SelectMany(t => t.GetProperty("top_logprobs").EnumerateArray()))
        {
            var altBytes = alt.GetProperty("bytes").EnumerateArray().Select(b => (byte)b.GetInt32()).ToArray();
            Assert.Contains(Convert.ToHexString(altBytes), known);
            if (Utf8.IsValid(altBytes)) Assert.Equal(Encoding.UTF8.GetString(altBytes), alt.GetProperty("token").GetString());
        }
    }

    /// <summary>A Chinese character of the test text that the test vocabulary holds as exactly two tokens, both partial.</summary>
    static (string Character, int First, int Second) SplitCharacter()
    {
        var byBytes = TestVocabulary.ToDictionary(kv => Convert.ToHexString(kv.Value), kv => kv.Key);
        foreach (var c in "你好世界今天气很")
        {
            var bytes = Encoding.UTF8.GetBytes(c.ToString());
            for (int k = 1; k < bytes.Length; k++)
                if (byBytes.TryGetValue(Convert.ToHexString(bytes[..k]), out var a) && byBytes.TryGetValue(Convert.ToHexString(bytes[k..]), out var b))
                    return (c.ToString(), a, b);
        }
        throw new InvalidOperationException("no character of the test text splits into two tokens of the test vocabulary");
    }
}
