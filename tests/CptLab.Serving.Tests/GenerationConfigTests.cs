using System.Text.Json.Nodes;
using CptLab.Data.Tokenization;
using CptLab.Model;
using static TorchSharp.torch;

namespace CptLab.Serving.Tests;

/// <summary>
/// generation_config.json is read as vLLM reads it: its eos ids end replies, and its sampling values are the defaults of
/// requests that leave those fields out.
/// </summary>
public class GenerationConfigTests
{
    const string Prompt = "The quick brown fox";

    /// <summary>A copy of the test model folder with <paramref name="generation"/> as its generation_config.json.</summary>
    static string FolderWith(JsonObject generation)
    {
        var dir = Directory.CreateTempSubdirectory("cptlab-genconfig-").FullName;
        foreach (var f in Directory.GetFiles(TestModelDir.Path)) File.Copy(f, Path.Combine(dir, Path.GetFileName(f)));
        File.WriteAllText(Path.Combine(dir, "generation_config.json"), generation.ToJsonString());
        return dir;
    }

    /// <summary>The greedy continuation of the prompt, computed with the library (not through the server).</summary>
    static int[] Greedy(int n)
    {
        using var served = ServedModel.Load(TestModelDir.Path, dtype: ScalarType.Float32);
        var prompt = served.Tokenizer.Encode(Prompt, addBos: true);
        return Generation.Generate(served.Model, new GenerationRequest(prompt, n, SamplingOptions.Greedy)).Select(t => t.Id).ToArray();
    }

    [Fact]
    public async Task Its_eos_ids_end_a_reply_and_its_sampling_values_are_the_defaults()
    {
        var greedy = Greedy(8);
        int k = Enumerable.Range(1, greedy.Length - 1).First(i => !greedy[..i].Contains(greedy[i]));
        var dir = FolderWith(new JsonObject { ["eos_token_id"] = new JsonArray(greedy[k]), ["temperature"] = 0.0, ["max_new_tokens"] = 6 });
        await using var server = await RunningServer.StartAsync(o => o with { ModelDir = dir });

        // No temperature, no max_tokens, no seed: greedy (temperature 0 from the folder), stopped at the folder's eos id.
        var (status, body) = await server.PostAsync("v1/completions", $$"""{"prompt":"{{Prompt}}"}""");
        Assert.Equal(200, status);
        Assert.Equal("stop", body.GetProperty("choices")[0].GetProperty("finish_reason").GetString());
        Assert.Equal(server.Model.DecodeText(greedy[..k]), body.GetProperty("choices")[0].GetProperty("text").GetString());

        // The request's own values win: sampling at temperature 1 with a seed differs from greedy somewhere in 6 tries,
        // and max_tokens from the folder (6) caps a reply whose eos id the request asks to ignore.
        var (_, capped) = await server.PostAsync("v1/completions", $$"""{"prompt":"{{Prompt}}","ignore_eos":true}""");
        Assert.Equal(6, capped.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
        Assert.Equal("length", capped.GetProperty("choices")[0].GetProperty("finish_reason").GetString());
        var sampled = new List<string>();
        for (int seed = 1; seed <= 6; seed++)
        {
            var (_, s) = await server.PostAsync("v1/completions", $$"""{"prompt":"{{Prompt}}","temperature":1.0,"seed":{{seed}},"max_tokens":4,"ignore_eos":true}""");
            sampled.Add(s.GetProperty("choices")[0].GetProperty("text").GetString()!);
        }
        Assert.Contains(sampled, s => s != server.Model.DecodeText(greedy[..4]));
    }

    [Fact]
    public async Task Without_the_file_requests_get_OpenAIs_defaults()
    {
        await using var server = await RunningServer.StartAsync();
        Assert.Equal(1.0, server.Model.Defaults.Temperature);
        Assert.Null(server.Model.Defaults.MaxTokens);
    }
}
