using System.Globalization;
using System.Text;
using System.Text.Json;
using CptLab.Core;
using CptLab.TestKit;
using LLama.Native;

namespace CptLab.Export.Tests;

/// <summary>
/// What llama.cpp reads back from the exported metadata, and what the exporter refuses. llama.cpp's loader checks
/// every hyper-parameter's GGUF type (a wrong one fails the load; the negative control below shows it does), so a
/// file that loads carries the types llama.cpp requires.
/// </summary>
[Collection(nameof(ExportModels))]
public sealed class MetadataTests(ExportModels models)
{
    [Theory]
    [InlineData(GgufWeightType.F32, LLamaFtype.ALL_F32)]
    [InlineData(GgufWeightType.F16, LLamaFtype.MOSTLY_F16)]
    [InlineData(GgufWeightType.BF16, LLamaFtype.MOSTLY_BF16)]
    [InlineData(GgufWeightType.Q8_0, LLamaFtype.MOSTLY_Q8_0)]
    public void Llama_cpp_reads_the_hyper_parameters_back(GgufWeightType type, LLamaFtype ftype)
    {
        var config = ExportModels.Llama31;
        using var llama = new LlamaCpp(models.Gguf(models.Folder("llama31"), type), 256, 1);
        var w = llama.Weights;
        Assert.Equal(config.MaxPositionEmbeddings, w.ContextSize);
        Assert.Equal(config.HiddenSize, w.EmbeddingSize);
        Assert.Equal(config.NumHiddenLayers, w.NativeHandle.LayerCount);
        Assert.Equal(config.NumAttentionHeads, w.NativeHandle.HeadCount);
        Assert.Equal(config.NumKeyValueHeads, w.NativeHandle.KVHeadCount);
        Assert.Equal(ftype, w.NativeHandle.FileType);
        Assert.Equal(config.VocabSize, w.Vocab.Count);
        Assert.Equal(128000, (int?)w.Vocab.BOS);
        Assert.Equal(128001, (int?)w.Vocab.EOS);
        Assert.Equal(128009, (int?)w.Vocab.EOT);
        Assert.True(w.Vocab.ShouldAddBOS);
        Assert.True(((LLamaToken)128009).IsControl(w.Vocab));
        Assert.Equal("llama", w.Metadata["general.architecture"]);
        Assert.Equal("llama-bpe", w.Metadata["tokenizer.ggml.pre"]);
        Assert.Equal(config.RopeTheta, double.Parse(w.Metadata["llama.rope.freq_base"], CultureInfo.InvariantCulture), 1e-3);
        Assert.Equal(config.RmsNormEps, double.Parse(w.Metadata["llama.attention.layer_norm_rms_epsilon"], CultureInfo.InvariantCulture), 1e-9);
        using var tc = JsonDocument.Parse(File.ReadAllText(Path.Combine(RepoPaths.Llama3TokenizerDir, "tokenizer_config.json")));
        Assert.Equal(tc.RootElement.GetProperty("chat_template").GetString(), w.NativeHandle.GetTemplate(null, strict: true));
    }

    [Fact]
    public void A_chat_template_jinja_file_is_the_template_llama_cpp_reads()
    {
        // A folder whose template lives in chat_template.jinja (transformers ≥ 4.43 writes it there), here Llama-3.1's.
        var folder = Directory.CreateTempSubdirectory("cptlab-gguf-jinja-").FullName;
        foreach (var f in Directory.GetFiles(models.Folder("llama31"))) File.Copy(f, Path.Combine(folder, Path.GetFileName(f)));
        var template = File.ReadAllText(Path.Combine(RepoPaths.SharedData, "chat-templates", "meta-llama-Llama-3.1-8B-Instruct.jinja"));
        File.WriteAllText(Path.Combine(folder, "chat_template.jinja"), template);
        var gguf = Path.Combine(folder, "model.gguf");
        GgufExport.Export(folder, gguf, GgufWeightType.F16);
        using var llama = new LlamaCpp(gguf, 256, 1);
        Assert.Equal(template, llama.Weights.NativeHandle.GetTemplate(null, strict: true));
    }

    /// <summary>Negative control: the same file with llama.context_length's type changed from u32 to i32 (same size) is refused.</summary>
    [Fact]
    public void Llama_cpp_refuses_a_hyper_parameter_of_the_wrong_type()
    {
        var good = models.Gguf(models.BpeFolder, GgufWeightType.F32);
        Assert.Null(LlamaCpp.LoadError(good));
        var bytes = File.ReadAllBytes(good);
        var key = Encoding.UTF8.GetBytes("llama.context_length");
        int at = bytes.AsSpan().IndexOf(key);
        Assert.True(at > 0);
        int typeAt = at + key.Length;
        Assert.Equal((byte)GgufValueType.UInt32, bytes[typeAt]);
        bytes[typeAt] = (byte)GgufValueType.Int32;
        var bad = Path.Combine(models.Root, "wrong-type.gguf");
        File.WriteAllBytes(bad, bytes);
        var error = LlamaCpp.LoadError(bad);
        Assert.NotNull(error);
        Assert.Contains("llama.context_length", error);
    }

    [Fact]
    public void An_existing_file_needs_force()
    {
        var dir = Path.Combine(models.Root, "force");
        Directory.CreateDirectory(dir);
        var path = Path.Combine(dir, "model.gguf");
        File.WriteAllText(path, "keep me");
        var e = Assert.Throws<CptLabException>(() => GgufExport.Export(models.BpeFolder, path, GgufWeightType.F16));
        Assert.Contains("--force", e.Message);
        Assert.Equal("keep me", File.ReadAllText(path));

        GgufExport.Export(models.BpeFolder, path, GgufWeightType.F16, force: true);
        Assert.Null(LlamaCpp.LoadError(path));
        Assert.Equal([path], Directory.GetFiles(dir)); // no temporary file left beside it
    }

    [Fact]
    public void A_model_llama_cpp_would_compute_differently_is_refused()
    {
        var dir = CopyOf(models.BpeFolder, "gelu");
        var config = Path.Combine(dir, "config.json");
        File.WriteAllText(config, File.ReadAllText(config).Replace("\"silu\"", "\"gelu\""));
        var e = Assert.Throws<ConfigException>(() => GgufExport.Export(dir, Path.Combine(dir, "out.gguf")));
        Assert.Equal("hidden_act", e.Key);
        Assert.False(File.Exists(Path.Combine(dir, "out.gguf")));
    }

    [Fact]
    public void A_tokenizer_with_another_pre_tokenizer_is_refused()
    {
        var dir = CopyOf(models.BpeFolder, "gpt2-pattern");
        var tokenizer = Path.Combine(dir, "tokenizer.json");
        var text = File.ReadAllText(tokenizer);
        var pattern = JsonSerializer.Serialize(CptLab.Data.Tokenization.Llama3Format.Pattern, new JsonSerializerOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping });
        Assert.Contains(pattern, text);
        File.WriteAllText(tokenizer, text.Replace(pattern, JsonSerializer.Serialize(@"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+")));
        var e = Assert.Throws<CorruptFileException>(() => GgufExport.Export(dir, Path.Combine(dir, "out.gguf")));
        Assert.Contains("split pattern", e.Message);
        Assert.Contains("tokenizer.json", e.Path);
    }

    [Fact]
    public void A_folder_without_tokenizer_json_is_refused()
    {
        var dir = CopyOf(models.BpeFolder, "no-tokenizer");
        File.Delete(Path.Combine(dir, "tokenizer.json"));
        var e = Assert.Throws<CptLabException>(() => GgufExport.Export(dir, Path.Combine(dir, "out.gguf")));
        Assert.Contains("no tokenizer.json", e.Message);
    }

    string CopyOf(string folder, string name)
    {
        var dir = Path.Combine(models.Root, name);
        Directory.CreateDirectory(dir);
        foreach (var f in Directory.GetFiles(folder)) File.Copy(f, Path.Combine(dir, Path.GetFileName(f)), overwrite: true);
        return dir;
    }
}
