using System.IO.Compression;
using System.Text;
using System.Text.Json;
using CptLab.Data.Chat;
using CptLab.Data.Tokenization;

namespace CptLab.Data.Tests.Chat;

/// <summary>The SFT reader on hand-written files of every layout, every kind of bad record, and every container.</summary>
public class ChatReaderTests
{
    static ChatMessage U(string c) => new("user", c);
    static ChatMessage A(string c) => new("assistant", c);
    static ChatMessage S(string c) => new("system", c);

    static (List<ChatExample> Kept, ChatReadSummary Summary, List<JsonElement> Rejects) Read(string file, ChatFormat format = ChatFormat.Auto)
    {
        var rejectsPath = file + ".rejects.jsonl";
        List<ChatExample> kept;
        ChatReadSummary summary;
        using (var rejects = new ChatRejects(rejectsPath))
        {
            kept = ChatReader.Read(file, format, rejects).ToList();
            summary = rejects.Summary();
        }
        var lines = File.ReadAllLines(rejectsPath).Select(l => JsonDocument.Parse(l).RootElement.Clone()).ToList();
        Assert.Equal(summary.Read, summary.Kept + summary.Rejected.Values.Sum());
        Assert.Equal(summary.Rejected.Values.Sum(), lines.Count);
        return (kept, summary, lines);
    }

    [Fact]
    public void Messages_with_string_and_text_part_content_read_as_conversations()
    {
        using var dir = new TempDir();
        var file = dir.File("m.jsonl");
        File.WriteAllLines(file,
        [
            """{"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"2+2?"},{"role":"assistant","content":"4"}]}""",
            """{"messages":[{"role":"user","content":[{"type":"text","text":"Hello, "},{"type":"text","text":"world"}]},{"role":"assistant","content":[{"type":"text","text":"Hi"}]},{"role":"user","content":"again"},{"role":"assistant","content":"Hi again"}],"id":7}""",
        ]);
        var (kept, summary, _) = Read(file);
        Assert.Equal("messages", summary.Format);
        Assert.Equal([S("Be brief."), U("2+2?"), A("4")], kept[0].Messages);
        Assert.Equal([U("Hello, world"), A("Hi"), U("again"), A("Hi again")], kept[1].Messages);
        Assert.Equal((file, 2L), (kept[1].File, kept[1].Line));
    }

    [Fact]
    public void ShareGPT_with_both_tag_sets_and_a_top_level_system_and_Alpaca_with_input_and_history()
    {
        using var dir = new TempDir();
        var share = dir.File("s.jsonl");
        File.WriteAllLines(share,
        [
            """{"conversations":[{"from":"human","value":"Q1"},{"from":"gpt","value":"A1"}],"system":"Sys"}""",
            """{"conversations":[{"from":"system","value":"S"},{"from":"user","value":"Q"},{"from":"assistant","value":"A"}]}""",
        ]);
        var (s, ss, _) = Read(share);
        Assert.Equal("sharegpt", ss.Format);
        Assert.Equal([S("Sys"), U("Q1"), A("A1")], s[0].Messages);
        Assert.Equal([S("S"), U("Q"), A("A")], s[1].Messages);

        var alpaca = dir.File("a.jsonl");
        File.WriteAllLines(alpaca,
        [
            """{"instruction":"Translate","input":"cat","output":"猫","system":"You translate.","history":[["hi","hello"],["how?","fine"]]}""",
            """{"instruction":"Say hi","input":"","output":"hi"}""",
        ]);
        var (a, sa, _) = Read(alpaca);
        Assert.Equal("alpaca", sa.Format);
        Assert.Equal([S("You translate."), U("hi"), A("hello"), U("how?"), A("fine"), U("Translate\ncat"), A("猫")], a[0].Messages);
        Assert.Equal([U("Say hi"), A("hi")], a[1].Messages);
    }

    [Fact]
    public void Every_kind_of_bad_record_is_rejected_with_its_reason_and_line()
    {
        using var dir = new TempDir();
        var file = dir.File("bad.jsonl");
        var lines = new[]
        {
            """{"messages":[{"role":"user","content":"ok"},{"role":"assistant","content":"fine"}]}""",         // 1 kept
            """{"messages":[{"role":"user","content":"cut""",                                                     // 2 malformed_json
            """{"messages":[{"role":"user","content":"no answer"}]}""",                                            // 3 no_final_assistant
            """{"messages":[{"role":"user","content":"q"},{"role":"assistant","content":"  "}]}""",               // 4 empty_content
            """{"messages":[{"role":"user","content":"q"},{"role":"tool","content":"x"},{"role":"assistant","content":"a"}]}""", // 5 unknown_role
            """{"messages":[{"role":"user","content":"q"},{"role":"system","content":"late"},{"role":"assistant","content":"a"}]}""", // 6 role_order
            """{"messages":[{"role":"assistant","content":"first"},{"role":"user","content":"q"},{"role":"assistant","content":"a"}]}""", // 7 role_order
            """{"conversations":[{"from":"human","value":"q"},{"from":"gpt","value":"a"}]}""",                   // 8 missing_field (format is messages)
            """{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"x"}}]},{"role":"assistant","content":"a"}]}""", // 9 unsupported_content
            """[1,2]""",                                                                                           // 10 malformed_json
            "",                                                                                                     // 11 blank: no record
            """{"messages":[{"role":"user","content":"q"},{"role":"user","content":"q2"},{"role":"assistant","content":"a"}]}""", // 12 role_order
            """{"messages":[{"role":"user"},{"role":"assistant","content":"a"}]}""",                              // 13 missing_field
        };
        var bytes = new List<byte>(Encoding.UTF8.GetBytes(string.Join('\n', lines) + "\n"));
        bytes.AddRange([0x7B, 0xFF, 0xFE, 0x7D, 0x0A]);                                                            // 14 invalid_utf8
        File.WriteAllBytes(file, [.. bytes]);

        var (kept, summary, rejects) = Read(file);
        Assert.Equal(1, Assert.Single(kept).Line);
        Assert.Equal(13, summary.Read);
        var expected = new (long Line, string Reason)[]
        {
            (2, "malformed_json"), (3, "no_final_assistant"), (4, "empty_content"), (5, "unknown_role"), (6, "role_order"), (7, "role_order"),
            (8, "missing_field"), (9, "unsupported_content"), (10, "malformed_json"), (12, "role_order"), (13, "missing_field"), (14, "invalid_utf8"),
        };
        Assert.Equal(expected, rejects.Select(r => (r.GetProperty("line").GetInt64(), r.GetProperty("reason").GetString()!)).ToArray());
        Assert.All(rejects, r => Assert.Equal(file, r.GetProperty("file").GetString()));
        Assert.Contains("cut", rejects[0].GetProperty("excerpt").GetString());
        Assert.Contains("tool", rejects[3].GetProperty("detail").GetString());
        Assert.Equal(2, summary.Rejected["malformed_json"]);
        Assert.Equal(3, summary.Rejected["role_order"]);
    }

    [Fact]
    public void A_missing_file_and_an_unrecognised_first_record_are_rejects_too()
    {
        using var dir = new TempDir();
        var file = dir.File("x.jsonl");
        File.WriteAllLines(file, ["""{"text":"plain"}""", """{"instruction":"i","output":"o"}"""]);
        using var rejects = new ChatRejects();
        var kept = ChatReader.Read([dir.File("absent.jsonl"), file], ChatFormat.Auto, rejects).ToList();
        var s = rejects.Summary();
        Assert.Single(kept);
        Assert.Equal("alpaca", s.Format); // detected from the first record that names a format
        Assert.Equal(new Dictionary<string, long> { ["unreadable_file"] = 1, ["unknown_format"] = 1 }, s.Rejected);
        Assert.Equal((3L, 1L), (s.Read, s.Kept));
    }

    [Fact]
    public void A_trainer_rejection_moves_a_kept_example_to_the_rejects_under_its_file_and_line()
    {
        using var dir = new TempDir();
        var file = dir.File("m.jsonl");
        File.WriteAllLines(file, ["""{"messages":[{"role":"user","content":"q"},{"role":"assistant","content":"a"}]}""", """{"messages":[{"role":"user","content":"q2"},{"role":"assistant","content":"a2"}]}"""]);
        var path = dir.File("rejects.jsonl");
        using (var rejects = new ChatRejects(path))
        {
            var second = ChatReader.Read(file, ChatFormat.Messages, rejects).Last();
            rejects.Reject(second.File, second.Line, ChatRejectReason.TooLong, "2,049 tokens > cut-off 2,048");
            Assert.Equal((2L, 1L), (rejects.Read, rejects.Kept));
            Assert.False(File.Exists(path)); // written under a temporary name until the read is complete
        }
        var line = JsonDocument.Parse(File.ReadAllText(path)).RootElement;
        Assert.Equal(("too_long", 2L), (line.GetProperty("reason").GetString(), line.GetProperty("line").GetInt64()));
    }

    public sealed class Msg { public string? role { get; set; } public string? content { get; set; } }
    public sealed class Row { public List<Msg>? messages { get; set; } }

    [Fact]
    public async Task Gzip_zstd_JSON_array_and_Parquet_files_read_the_same_conversations()
    {
        using var dir = new TempDir();
        var rows = Enumerable.Range(0, 30).Select(i => new[] { U($"question {i} 问题"), A($"answer {i} 回答") }).ToList();
        var jsonl = string.Join('\n', rows.Select(r => JsonSerializer.Serialize(new { messages = r.Select(m => new { role = m.Role, content = m.Content }) }))) + "\n";
        using (var gz = new GZipStream(File.Create(dir.File("c.jsonl.gz")), CompressionLevel.Optimal)) gz.Write(Encoding.UTF8.GetBytes(jsonl));
        using (var f = File.Create(dir.File("c.jsonl.zst")))
        using (var zs = new ZstdSharp.CompressionStream(f)) zs.Write(Encoding.UTF8.GetBytes(jsonl));
        File.WriteAllText(dir.File("c.json"), "[" + string.Join(",", jsonl.TrimEnd().Split('\n')) + "]");
        await Parquet.Serialization.ParquetSerializer.SerializeAsync(
            rows.Select(r => new Row { messages = r.Select(m => new Msg { role = m.Role, content = m.Content }).ToList() }), dir.File("c.parquet"),
            new Parquet.ParquetOptions { RowGroupSize = 7 });

        foreach (var name in new[] { "c.jsonl.gz", "c.jsonl.zst", "c.json", "c.parquet" })
        {
            var (kept, summary, rejects) = Read(dir.File(name));
            Assert.True(summary.Kept == 30, $"{name}: {string.Join("; ", rejects.Take(2))}");
            Assert.Equal(rows.Select(r => (IEnumerable<ChatMessage>)r), kept.Select(k => k.Messages));
            Assert.Equal(Enumerable.Range(1, 30).Select(i => (long)i), kept.Select(k => k.Line));
        }

        // A gzip file cut short keeps the records before the break and says where it broke.
        var whole = File.ReadAllBytes(dir.File("c.jsonl.gz"));
        File.WriteAllBytes(dir.File("cut.jsonl.gz"), whole[..(whole.Length - 12)]);
        var (_, cut, cutRejects) = Read(dir.File("cut.jsonl.gz"));
        Assert.Equal(1, cut.Rejected["truncated_stream"]);
        Assert.Single(cutRejects);
    }
}
