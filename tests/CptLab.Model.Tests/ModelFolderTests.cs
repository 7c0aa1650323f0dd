using System.Text.Json.Nodes;
using CptLab.Core;
using CptLab.Model;
using CptLab.TestKit;
using static TorchSharp.torch;

namespace CptLab.Model.Tests;

/// <summary>Model folders written with Meta's real Llama-3 tokenizer files, checked against Meta's published configs.</summary>
public class ModelFolderTests
{
    static LlamaConfig Llama3Vocab() => TestModels.Tiny() with { VocabSize = 128_256, BosTokenId = 1, EosTokenIds = [2], MaxPositionEmbeddings = 8192 };

    static JsonNode Read(string dir, string file) => JsonNode.Parse(File.ReadAllText(Path.Combine(dir, file)))!;

    [Fact]
    public void A_folder_with_Metas_tokenizer_gets_Metas_ids_and_files()
    {
        TorchRuntime.Initialise();
        var dir = TestModels.TempDir();
        using var model = TestModels.Random(Llama3Vocab());
        var contents = ModelFolderContents.For(RepoPaths.Llama3TokenizerDir, null, 8192);
        ModelFolder.Save(model, dir, contents, ScalarType.BFloat16);

        // Meta-Llama-3-8B's config.json: bos 128000, eos 128001. Meta-Llama-3-8B-Instruct's generation_config.json:
        // bos 128000, eos [128001, 128009] (its template ends turns with <|eot_id|>).
        var config = Read(dir, "config.json");
        Assert.Equal(128000, (int)config["bos_token_id"]!);
        Assert.Equal(128001, (int)config["eos_token_id"]!);
        Assert.Equal("bfloat16", (string)config["torch_dtype"]!);
        var generation = Read(dir, "generation_config.json");
        Assert.Equal(128000, (int)generation["bos_token_id"]!);
        Assert.Equal([128001, 128009], generation["eos_token_id"]!.AsArray().Select(n => (int)n!));

        // Meta's files travel byte for byte; special_tokens_map.json is written as transformers writes it.
        foreach (var f in new[] { "tokenizer.json", "tokenizer_config.json" })
            Assert.Equal(File.ReadAllBytes(Path.Combine(RepoPaths.Llama3TokenizerDir, f)), File.ReadAllBytes(Path.Combine(dir, f)));
        var map = Read(dir, "special_tokens_map.json");
        Assert.Equal("<|begin_of_text|>", (string)map["bos_token"]!["content"]!);
        Assert.Equal("<|end_of_text|>", (string)map["eos_token"]!["content"]!);
        Assert.False((bool)map["eos_token"]!["normalized"]!);

        using var loaded = HfCheckpoint.Load(dir);
        Assert.Equal(ScalarType.BFloat16, loaded.Dtype);
    }

    [Fact]
    public void The_bases_sampling_defaults_and_unknown_keys_are_carried_over()
    {
        TorchRuntime.Initialise();
        var baseDir = TestModels.TempDir();
        File.WriteAllText(Path.Combine(baseDir, "generation_config.json"),
            """{"bos_token_id": 128000, "eos_token_id": [128001, 128009], "do_sample": true, "temperature": 0.6, "top_p": 0.9, "transformers_version": "4.40.0.dev0"}""");
        using var model = TestModels.Random(Llama3Vocab());
        var dir = TestModels.TempDir();
        ModelFolder.Save(model, dir, ModelFolderContents.For(RepoPaths.Llama3TokenizerDir, baseDir, 8192));
        var g = Read(dir, "generation_config.json");
        Assert.True((bool)g["do_sample"]!);
        Assert.Equal(0.6, (double)g["temperature"]!);
        Assert.Equal(0.9, (double)g["top_p"]!);
        Assert.Equal("4.40.0.dev0", (string)g["transformers_version"]!);
        Assert.Equal([128001, 128009], g["eos_token_id"]!.AsArray().Select(n => (int)n!));
    }

    [Fact]
    public void Saving_over_a_folder_replaces_it_whole()
    {
        TorchRuntime.Initialise();
        var dir = TestModels.TempDir();
        using var model = TestModels.Random(TestModels.Tiny());
        ModelFolder.Save(model, dir, ModelFolderContents.None, maxShardBytes: 20_000);
        Assert.True(File.Exists(Path.Combine(dir, HfCheckpoint.IndexFile)));
        ModelFolder.Save(model, dir, ModelFolderContents.None);
        Assert.Empty(Directory.GetFiles(dir, "model-*-of-*.safetensors"));
        Assert.False(File.Exists(Path.Combine(dir, HfCheckpoint.IndexFile)));
        Assert.Empty(Directory.GetDirectories(Path.GetDirectoryName(dir)!, $".{Path.GetFileName(dir)}.*")); // no temporary folder left
    }

    [Fact]
    public void A_tokenizer_larger_than_the_vocabulary_is_refused()
    {
        TorchRuntime.Initialise();
        using var model = TestModels.Random(TestModels.Tiny());
        var e = Assert.Throws<CptLabException>(() => ModelFolder.Save(model, TestModels.TempDir(), ModelFolderContents.For(RepoPaths.Llama3TokenizerDir, null, 512)));
        Assert.Contains("128,256 ids", e.Message);
    }

    [Fact]
    public void Hidden_act_other_than_silu_and_old_inv_freq_buffers()
    {
        TorchRuntime.Initialise();
        var dir = TestModels.TempDir();
        using var model = TestModels.Random(TestModels.Tiny());
        HfCheckpoint.Save(model, dir);
        // Older transformers saved each layer's rotary inv_freq buffer; transformers ignores it on load, and so does CptLab.
        var tensors = model.named_parameters().Select(p => (p.name, (Tensor)p.parameter)).ToList();
        using var invFreq = ones(model.Config.HeadDim / 2);
        tensors.Add(("model.layers.0.self_attn.rotary_emb.inv_freq", invFreq));
        SafetensorsWriter.Write(Path.Combine(dir, HfCheckpoint.SingleFile), tensors, ScalarType.Float32);
        using (HfCheckpoint.Load(dir)) { }

        var config = (JsonObject)Read(dir, "config.json");
        config["hidden_act"] = "gelu";
        File.WriteAllText(Path.Combine(dir, "config.json"), config.ToJsonString());
        var e = Assert.Throws<ConfigException>(() => HfCheckpoint.Load(dir));
        Assert.Contains("hidden_act", e.Message);
    }
}
