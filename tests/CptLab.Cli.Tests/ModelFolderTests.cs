using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using CptLab.Model;
using CptLab.Training;
using CptLab.Training.Tests;

namespace CptLab.Cli.Tests;

/// <summary>
/// What `cptlab train` writes is a complete model folder: `cptlab serve --model RUN/final` answers a chat request
/// with nothing copied by hand, and every checkpoint's model part is a model folder too.
/// </summary>
public class ModelFolderTests
{
    [Fact]
    public async Task Train_then_serve_the_final_folder_with_no_extra_step()
    {
        var dir = Directory.CreateTempSubdirectory("cptlab-folder-").FullName;
        var (blend, vocab) = TinyBlend.Create(Path.Combine(dir, "data"), almr: 0.3, seqLen: 32, tokens: 128 * 60);
        var modelConfig = Path.Combine(dir, "model.json");
        (Flavors.Get("debug") with { VocabSize = vocab, MaxPositionEmbeddings = 64 }).Save(modelConfig);
        var config = Path.Combine(dir, "train.yaml");
        File.WriteAllText(config, $"model: {{config: {modelConfig}}}\ndata: {{mixture: {blend}, seq_len: 32}}\n" +
            "batch: {micro_batch_size: 2, global_batch_tokens: 128}\nbudget_tokens: 2560\ncheckpoint: {every_steps: 10}\n" +
            "eval: {every_steps: 100, max_sequences: 2}\nthreads: 1\nmeasure_peak_flops: false\n");
        var run = Path.Combine(dir, "run");
        var output = new StringBuilder();
        using (var train = CliProcess.Start(output, "train", "--config", config, "--out", run))
            Assert.True(train.WaitForExitOrKill(TimeSpan.FromMinutes(3)) == 0, output.ToString());

        // The tokenizer the data was prepared with, read here from its own file (not through CptLab's tokenizer).
        var tokenizerJson = Path.Combine(dir, "data", "tokenizer.json");
        var added = JsonNode.Parse(File.ReadAllText(tokenizerJson))!["added_tokens"]!.AsArray()
            .ToDictionary(t => (string)t!["content"]!, t => (int)t!["id"]!);
        var final = Path.Combine(run, Trainer.FinalDir);
        var checkpoint = TrainingCheckpoint.List(Path.Combine(run, Trainer.CheckpointsDir))[^1].Dir;
        foreach (var folder in new[] { final, checkpoint })
        {
            foreach (var file in new[] { "config.json", "generation_config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json" })
                Assert.True(File.Exists(Path.Combine(folder, file)), $"{folder} lacks {file}");
            Assert.Equal(File.ReadAllBytes(tokenizerJson), File.ReadAllBytes(Path.Combine(folder, "tokenizer.json")));
            var tc = JsonNode.Parse(File.ReadAllText(Path.Combine(folder, "tokenizer_config.json")))!;
            Assert.Equal("<|begin_of_text|>", (string)tc["bos_token"]!);
            Assert.Equal("<|end_of_text|>", (string)tc["eos_token"]!);
            Assert.Equal(64, (int)tc["model_max_length"]!);
            Assert.Contains("<|start_header_id|>", (string)tc["chat_template"]!);
            var hf = JsonNode.Parse(File.ReadAllText(Path.Combine(folder, "config.json")))!;
            Assert.Equal(added["<|begin_of_text|>"], (int)hf["bos_token_id"]!);
            Assert.Equal(added["<|end_of_text|>"], (int)hf["eos_token_id"]!);
            Assert.Equal("float32", (string)hf["torch_dtype"]!);
            var gen = JsonNode.Parse(File.ReadAllText(Path.Combine(folder, "generation_config.json")))!;
            Assert.Equal([added["<|end_of_text|>"], added["<|eot_id|>"]], gen["eos_token_id"]!.AsArray().Select(n => (int)n!).ToArray());
        }
        TrainingCheckpoint.Verify(checkpoint); // the tokenizer files are in its checksum manifest too

        int port = FreePort();
        var serverOutput = new StringBuilder();
        using var server = CliProcess.Start(serverOutput, "serve", "--model", final, "--port", port.ToString(), "--no-request-log", "--threads", "1");
        try
        {
            using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };
            var sw = Stopwatch.StartNew();
            while (true)
            {
                try { if ((await http.GetAsync("/health")).IsSuccessStatusCode) break; }
                catch (HttpRequestException) { }
                if (server.HasExited) Assert.Fail($"cptlab serve exited with code {server.ExitCode}: {serverOutput}");
                Assert.True(sw.Elapsed < TimeSpan.FromMinutes(2), "cptlab serve did not come up");
                await Task.Delay(200);
            }
            var body = """{"messages":[{"role":"user","content":"hello"}],"max_tokens":5,"temperature":0}""";
            var reply = await http.PostAsync("/v1/chat/completions", new StringContent(body, Encoding.UTF8, "application/json"));
            var text = await reply.Content.ReadAsStringAsync();
            Assert.True(reply.StatusCode == HttpStatusCode.OK, text);
            using var doc = JsonDocument.Parse(text);
            // "hello" in Llama-3's template: bos, header "user", "\n\n", the text, eot, open assistant header.
            Assert.True(doc.RootElement.GetProperty("usage").GetProperty("prompt_tokens").GetInt32() >= 7, text);
            Assert.InRange(doc.RootElement.GetProperty("usage").GetProperty("completion_tokens").GetInt32(), 1, 5);
        }
        finally
        {
            server.Kill(entireProcessTree: true);
            server.WaitForExit();
        }
    }

    static int FreePort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }
}
