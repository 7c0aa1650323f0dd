using System.Diagnostics;
using System.Text;
using System.Text.Json;

namespace CptLab.Serving.Tests;

/// <summary>
/// A second real client: OpenAI's official Node package (npm `openai` 6.30.1, from scripts/fetch-test-peers.sh),
/// run by node against the server. It streams a greedy chat reply and asks for the same reply whole with
/// logprobs; the script prints what it received as one JSON line.
/// </summary>
[Collection("server")]
public class NpmClientTests(SharedServer shared)
{
    RunningServer S => shared.Server;

    const string Script = """
        const { OpenAI } = require("openai");
        const [baseURL, model] = process.argv.slice(2);
        const client = new OpenAI({ baseURL, apiKey: "unused", maxRetries: 0 });
        const messages = [{ role: "system", content: "Be brief." }, { role: "user", content: "Tell me about the fox." }];
        (async () => {
          const stream = await client.chat.completions.create({
            model, messages, temperature: 0, max_tokens: 24, stream: true, stream_options: { include_usage: true },
          });
          const deltas = [];
          let finish = null, usage = null;
          for await (const chunk of stream) {
            if (chunk.usage) usage = chunk.usage;
            for (const c of chunk.choices) {
              if (c.delta && typeof c.delta.content === "string") deltas.push(c.delta.content);
              if (c.finish_reason) finish = c.finish_reason;
            }
          }
          const whole = await client.chat.completions.create({
            model, messages, temperature: 0, max_tokens: 24, logprobs: true, top_logprobs: 2,
          });
          const choice = whole.choices[0];
          process.stdout.write(JSON.stringify({
            streamed: deltas.join(""), pieces: deltas.length, streamFinish: finish, streamUsage: usage,
            text: choice.message.content, finish: choice.finish_reason, usage: whole.usage,
            logprobs: choice.logprobs.content,
          }) + "\n");
        })().catch((e) => { process.stderr.write(String(e && e.stack || e) + "\n"); process.exit(1); });
        """;

    List<int> GreedyIds(IReadOnlyList<int> prompt, int maxTokens)
    {
        using var model = CptLab.Model.HfCheckpoint.Load(TestModelDir.Path);
        var request = new CptLab.Model.GenerationRequest(prompt, maxTokens, CptLab.Model.SamplingOptions.Greedy) { StopIds = S.Model.StopIds.ToHashSet() };
        return [.. CptLab.Model.Generation.Generate(model, request).Select(t => t.Id)];
    }

    /// <summary>.cache/node-peers/node_modules when it holds the openai package; otherwise the test fails saying how to get it.</summary>
    static string NodeModules()
    {
        var dir = Path.Combine(TestKit.RepoPaths.Cache, "node-peers", "node_modules");
        var package = Path.Combine(dir, "openai", "package.json");
        if (!File.Exists(package))
            Assert.Fail($"{package} is missing: the npm openai client is not installed; run scripts/fetch-test-peers.sh (./test.sh does)");
        return dir;
    }

    [Fact]
    public async Task Node_openai_client_streams_and_reads_logprobs()
    {
        var modules = NodeModules();
        var dir = Directory.CreateTempSubdirectory("cptlab-npm-openai-").FullName;
        try
        {
            var script = Path.Combine(dir, "client.cjs");
            await File.WriteAllTextAsync(script, Script);
            var psi = new ProcessStartInfo("node", [script, new Uri(S.Address, "v1").ToString(), S.Model.Name])
            {
                RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, StandardOutputEncoding = Encoding.UTF8,
            };
            psi.Environment["NODE_PATH"] = modules;
            using var node = Process.Start(psi) ?? throw new InvalidOperationException("node did not start");
            var stdout = node.StandardOutput.ReadToEndAsync();
            var stderr = node.StandardError.ReadToEndAsync();
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
            await node.WaitForExitAsync(timeout.Token);
            Assert.True(node.ExitCode == 0, $"node exited {node.ExitCode}: {await stderr}");
            using var doc = JsonDocument.Parse(await stdout);
            var r = doc.RootElement;

            // The greedy reply, as the library makes it, arrives the same streamed and whole.
            var prompt = S.Model.EncodeChat([new("system", "Be brief."), new("user", "Tell me about the fox.")]);
            var reference = Reference.Greedy(S.Model, prompt, 24);
            Assert.Equal(reference.Text, r.GetProperty("text").GetString());
            Assert.Equal(reference.Text, r.GetProperty("streamed").GetString());
            Assert.True(r.GetProperty("pieces").GetInt32() > 1, "the stream should arrive in several pieces");
            Assert.Equal(reference.Finish, r.GetProperty("finish").GetString());
            Assert.Equal(reference.Finish, r.GetProperty("streamFinish").GetString());
            int completionTokens = r.GetProperty("usage").GetProperty("completion_tokens").GetInt32();
            Assert.Equal(reference.Tokens, completionTokens);
            Assert.Equal(completionTokens, r.GetProperty("streamUsage").GetProperty("completion_tokens").GetInt32());

            // One logprob per completion token, each with its bytes and two alternatives with theirs.
            var logprobs = r.GetProperty("logprobs");
            Assert.Equal(completionTokens, logprobs.GetArrayLength());
            var bytes = new List<byte>();
            foreach (var t in logprobs.EnumerateArray())
            {
                Assert.True(t.GetProperty("logprob").GetDouble() <= 0);
                var own = t.GetProperty("bytes").EnumerateArray().Select(b => (byte)b.GetInt32()).ToArray();
                Assert.NotEmpty(own);
                bytes.AddRange(own);
                var top = t.GetProperty("top_logprobs");
                Assert.Equal(2, top.GetArrayLength());
                Assert.All(top.EnumerateArray(), a => Assert.NotEmpty(a.GetProperty("bytes").EnumerateArray()));
            }
            // The bytes are each generated token's vocabulary bytes (special tokens: their text), the library's greedy ids
            // looked up in tokenizer.json: a random model's reply holds partial characters and special tokens.
            var vocabulary = TokenBytesTests.VocabularyBytes(Path.Combine(TestModelDir.Path, "tokenizer.json"));
            var expected = GreedyIds(prompt, 24).SelectMany(id => vocabulary[id]).ToArray();
            Assert.Equal(Convert.ToHexString(expected), Convert.ToHexString([.. bytes]));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
