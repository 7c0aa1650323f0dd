using System.Text.Json;
using CptLab.Data.Chat;
using CptLab.Data.Tokenization;

namespace CptLab.Data.Tests.Chat;

/// <summary>The DPO reader on TRL's explicit and implicit prompts, LLaMA-Factory's ShareGPT and Alpaca pairs, and bad pairs.</summary>
public class PreferenceReaderTests
{
    static ChatMessage U(string c) => new("user", c);
    static ChatMessage A(string c) => new("assistant", c);
    static ChatMessage S(string c) => new("system", c);

    static void Check(PreferenceExample e, ChatMessage[] prompt, string chosen, string rejected)
    {
        Assert.Equal(prompt, e.Prompt);
        Assert.Equal((A(chosen), A(rejected)), (e.Chosen, e.Rejected));
    }

    static (List<PreferenceExample>, ChatReadSummary, List<JsonElement>) Read(TempDir dir, string name, string[] lines)
    {
        var file = dir.File(name);
        File.WriteAllLines(file, lines);
        List<PreferenceExample> kept;
        ChatReadSummary s;
        using (var rejects = new ChatRejects(file + ".rejects"))
        {
            kept = PreferenceReader.Read(file, ChatFormat.Auto, rejects).ToList();
            s = rejects.Summary();
        }
        Assert.Equal(s.Read, s.Kept + s.Rejected.Values.Sum());
        return (kept, s, File.ReadAllLines(file + ".rejects").Select(l => JsonDocument.Parse(l).RootElement.Clone()).ToList());
    }

    [Fact]
    public void TRL_explicit_prompts_as_string_and_list_and_implicit_prompts()
    {
        using var dir = new TempDir();
        var (kept, s, _) = Read(dir, "trl.jsonl",
        [
            """{"prompt":"2+2?","chosen":"4","rejected":"5"}""",
            """{"prompt":[{"role":"system","content":"Sys"},{"role":"user","content":"Hi"}],"chosen":[{"role":"assistant","content":"Hello"}],"rejected":[{"role":"assistant","content":"Go away"}]}""",
            """{"chosen":[{"role":"user","content":"Q"},{"role":"assistant","content":"A"},{"role":"user","content":"Q2"},{"role":"assistant","content":"good"}],"rejected":[{"role":"user","content":"Q"},{"role":"assistant","content":"A"},{"role":"user","content":"Q2"},{"role":"assistant","content":"bad"}]}""",
        ]);
        Assert.Equal("messages", s.Format);
        Check(kept[0], [U("2+2?")], "4", "5");
        Check(kept[1], [S("Sys"), U("Hi")], "Hello", "Go away");
        Check(kept[2], [U("Q"), A("A"), U("Q2")], "good", "bad");
    }

    [Fact]
    public void ShareGPT_and_Alpaca_pairs()
    {
        using var dir = new TempDir();
        var (share, ss, _) = Read(dir, "s.jsonl",
            ["""{"conversations":[{"from":"human","value":"Q"}],"chosen":{"from":"gpt","value":"yes"},"rejected":{"from":"gpt","value":"no"},"system":"Sys"}"""]);
        Assert.Equal("sharegpt", ss.Format);
        Check(share[0], [S("Sys"), U("Q")], "yes", "no");
        var (alpaca, sa, _) = Read(dir, "a.jsonl", ["""{"instruction":"Name a colour","input":"warm","chosen":"red","rejected":"blue"}"""]);
        Assert.Equal("alpaca", sa.Format);
        Check(alpaca[0], [U("Name a colour\nwarm")], "red", "blue");
    }

    [Fact]
    public void Bad_pairs_are_rejected_with_their_reason_and_line()
    {
        using var dir = new TempDir();
        var (kept, s, rejects) = Read(dir, "bad.jsonl",
        [
            """{"prompt":"q","chosen":"a","rejected":"b"}""",                                                  // 1 kept
            """{"prompt":"q","chosen":"same","rejected":"same"}""",                                            // 2 chosen_equals_rejected
            """{"prompt":"q","chosen":"a"}""",                                                                 // 3 missing_field
            """{"chosen":[{"role":"user","content":"q"},{"role":"assistant","content":"a"}],"rejected":[{"role":"user","content":"other"},{"role":"assistant","content":"b"}]}""", // 4 not_one_reply
            """{"prompt":[{"role":"user","content":"q"},{"role":"assistant","content":"a"}],"chosen":"x","rejected":"y"}""", // 5 role_order
            """{"chosen":"a","rejected":"b"}""",                                                               // 6 missing_field (no prompt)
            """{"prompt":"q","chosen":[{"role":"assistant","content":"a"},{"role":"assistant","content":"b"}],"rejected":"c"}""", // 7 not_one_reply
            """{"prompt":"q","chosen":"","rejected":"c"}""",                                                   // 8 empty_content
            """{"chosen":[{"role":"user","content":"q"},{"role":"assistant","content":"a"}],"rejected":[{"role":"user","content":"q"},{"role":"assistant","content":"a"}]}""", // 9 chosen_equals_rejected
            """{"prompt":"q","chosen":[{"role":"user","content":"a"}],"rejected":"c"}""",                      // 10 role_order
        ]);
        Assert.Single(kept);
        Assert.Equal(
            [(2L, "chosen_equals_rejected"), (3, "missing_field"), (4, "not_one_reply"), (5, "role_order"), (6, "missing_field"), (7, "not_one_reply"), (8, "empty_content"), (9, "chosen_equals_rejected"), (10, "role_order")],
            rejects.Select(r => (r.GetProperty("line").GetInt64(), r.GetProperty("reason").GetString()!)).ToArray());
        Assert.Equal((10L, 1L), (s.Read, s.Kept));
    }
}
