using System.Runtime.InteropServices;
using System.Text.Json;
using System.Text.Json.Nodes;
using CptLab.Core;
using CptLab.Model;
using static TorchSharp.torch;

namespace CptLab.Export;

/// <summary>What the weight matrices are stored as. Norms and other 1-D tensors are float32 whatever is chosen.</summary>
public enum GgufWeightType { F32, F16, BF16, Q8_0 }

public sealed record GgufExportProgress(int Tensor, int TensorCount, string Name, long BytesWritten, long TotalBytes);

public sealed record GgufExportResult(string Path, long Bytes, int TensorCount, int VocabSize, GgufWeightType Type, IReadOnlyList<string> Notes);

/// <summary>
/// Exports a Hugging Face <c>LlamaForCausalLM</c> folder (config.json, safetensors, tokenizer.json) to one GGUF v3
/// file that llama.cpp (and Ollama, LM Studio, …) loads as its <c>llama</c> architecture, with the same numbers as
/// CptLab: it writes what llama.cpp's convert_hf_to_gguf.py writes for a Llama-3 checkpoint.
/// <list type="bullet">
/// <item>metadata under <c>llama.*</c> with the types llama.cpp's loader insists on (counts u32, eps and rope base f32);</item>
/// <item>Q and K projections with their rows permuted from Hugging Face's rotate-half layout to the interleaved pairs
/// ggml's rope uses (K with the kv head count);</item>
/// <item><c>rope_freqs.weight</c>, the per-frequency divisors of Llama-3.1's <c>rope_type: llama3</c> scaling;</item>
/// <item>tied embeddings as llama.cpp expects them: no <c>output.weight</c>, so it reuses <c>token_embd</c>;</item>
/// <item>the tokenizer (<see cref="GgufVocabulary"/>).</item>
/// </list>
/// What llama.cpp would compute differently is refused with the file and key named, never approximated.
/// Weights are read one tensor at a time, so memory stays near the largest tensor, not the model.
/// </summary>
public static class GgufExport
{
    public static GgufWeightType ParseType(string text) => text.ToLowerInvariant() switch
    {
        "f32" or "float32" => GgufWeightType.F32,
        "f16" or "float16" => GgufWeightType.F16,
        "bf16" or "bfloat16" => GgufWeightType.BF16,
        "q8_0" => GgufWeightType.Q8_0,
        _ => throw new CptLabException($"GGUF type '{text}' is not one of f32, f16, bf16, q8_0"),
    };

    public static GgufExportResult Export(string modelDir, string outFile, GgufWeightType type = GgufWeightType.F16, bool force = false,
        IProgress<GgufExportProgress>? progress = null)
    {
        modelDir = Path.GetFullPath(modelDir);
        outFile = Path.GetFullPath(outFile);
        if (!Directory.Exists(modelDir)) throw new CptLabException($"{modelDir}: model directory not found");
        if (File.Exists(outFile) && !force)
            throw new CptLabException($"{outFile} already exists; pass --force to overwrite it");
        if (Directory.Exists(outFile)) throw new CptLabException($"{outFile} is a directory; give the path of the .gguf file to write");

        var configPath = Path.Combine(modelDir, HfCheckpoint.ConfigFile);
        if (!File.Exists(configPath)) throw new CptLabException($"{modelDir}: no {HfCheckpoint.ConfigFile}; is this a Hugging Face model folder?");
        var config = LlamaConfig.Load(configPath);
        CheckArchitecture(configPath, config);
        var vocab = GgufVocabulary.Read(modelDir, config.VocabSize, config.BosTokenId, config.EosTokenIds.Count > 0 ? config.EosTokenIds[0] : null);

        var notes = new List<string>();
        var writer = new GgufWriter();
        AddModelMetadata(writer, config, type, Path.GetFileName(modelDir.TrimEnd(Path.DirectorySeparatorChar)));
        vocab.AddTo(writer);

        using var weights = CheckpointTensors.Open(modelDir, config);
        var plan = Plan(config, type, notes);
        foreach (var p in plan) writer.AddTensor(p.Info);

        long total = writer.TotalBytes, written = 0;
        AtomicFile.Write(outFile, stream =>
        {
            var buffered = new BufferedStream(stream, 1 << 20);
            writer.Write(buffered, (i, s) =>
            {
                progress?.Report(new GgufExportProgress(i, plan.Count, plan[i].Info.Name, written, total));
                WriteTensor(plan[i], config, weights, s);
                written += plan[i].Info.ByteSize;
            });
            buffered.Flush();
        });
        progress?.Report(new GgufExportProgress(plan.Count, plan.Count, "", total, total));
        return new GgufExportResult(outFile, new FileInfo(outFile).Length, plan.Count, config.VocabSize, type, notes);
    }

    // ---- what is refused ------------------------------------------------------------------------------

    /// <summary>Keys of config.json that llama.cpp's llama architecture cannot honour, checked on the raw file (LlamaConfig does not model them all).</summary>
    static void CheckArchitecture(string configPath, LlamaConfig c)
    {
        var raw = JsonNode.Parse(File.ReadAllText(configPath)) as JsonObject ?? throw new ConfigException(configPath, "(root)", "expected a JSON object");
        if (raw["hidden_act"] is JsonValue act && act.TryGetValue<string>(out var a) && a != "silu")
            throw new ConfigException(configPath, "hidden_act", $"'{a}' is not silu; llama.cpp's llama architecture computes SwiGLU with SiLU only");
        if (raw["pretraining_tp"] is JsonValue tp && tp.TryGetValue<int>(out var t) && t != 1)
            throw new ConfigException(configPath, "pretraining_tp", $"{t}: tensor-parallel slicing of the MLP is not representable; only 1 is");
        if (c.AttentionBias) throw new ConfigException(configPath, "attention_bias", "true: GGUF export writes Llama-3's bias-free projections only");
        if (c.MlpBias) throw new ConfigException(configPath, "mlp_bias", "true: GGUF export writes Llama-3's bias-free MLP only");
        if (c.RopeScaling is { RopeType: not ("default" or "llama3") } rs)
            throw new ConfigException(configPath, "rope_scaling.rope_type", $"'{rs.RopeType}' is not exported (supported: none, default, llama3)");
    }

    // ---- metadata -------------------------------------------------------------------------------------

    static void AddModelMetadata(GgufWriter w, LlamaConfig c, GgufWeightType type, string name)
    {
        w.Add("general.architecture", GgufValue.Str("llama"));
        w.Add("general.name", GgufValue.Str(name));
        w.Add("general.file_type", GgufValue.U32(FileType(type)));
        w.Add("general.quantization_version", GgufValue.U32(2)); // GGML_QUANT_VERSION
        w.Add("llama.vocab_size", GgufValue.U32((uint)c.VocabSize));
        w.Add("llama.context_length", GgufValue.U32((uint)c.MaxPositionEmbeddings));
        w.Add("llama.embedding_length", GgufValue.U32((uint)c.HiddenSize));
        w.Add("llama.block_count", GgufValue.U32((uint)c.NumHiddenLayers));
        w.Add("llama.feed_forward_length", GgufValue.U32((uint)c.IntermediateSize));
        w.Add("llama.attention.head_count", GgufValue.U32((uint)c.NumAttentionHeads));
        w.Add("llama.attention.head_count_kv", GgufValue.U32((uint)c.NumKeyValueHeads));
        w.Add("llama.attention.key_length", GgufValue.U32((uint)c.HeadDim));
        w.Add("llama.attention.value_length", GgufValue.U32((uint)c.HeadDim));
        w.Add("llama.attention.layer_norm_rms_epsilon", GgufValue.F32((float)c.RmsNormEps));
        w.Add("llama.rope.freq_base", GgufValue.F32((float)c.RopeTheta));
        w.Add("llama.rope.dimension_count", GgufValue.U32((uint)c.HeadDim));
    }

    /// <summary>general.file_type (llama.cpp's llama_ftype), which numbers types differently from ggml_type.</summary>
    public static uint FileType(GgufWeightType t) => t switch
    {
        GgufWeightType.F32 => 0,   // LLAMA_FTYPE_ALL_F32
        GgufWeightType.F16 => 1,   // LLAMA_FTYPE_MOSTLY_F16
        GgufWeightType.Q8_0 => 7,  // LLAMA_FTYPE_MOSTLY_Q8_0
        GgufWeightType.BF16 => 32, // LLAMA_FTYPE_MOSTLY_BF16
        _ => throw new ArgumentOutOfRangeException(nameof(t)),
    };

    // ---- tensors --------------------------------------------------------------------------------------

    enum Transform { None, PermuteQ, PermuteK, RopeFreqs }

    sealed record PlannedTensor(GgufTensorInfo Info, string? Source, long[] SourceShape, Transform Transform);

    /// <summary>Every tensor of the GGUF file, in the converter's order: rope_freqs, token_embd, blocks, output_norm, output.</summary>
    static List<PlannedTensor> Plan(LlamaConfig c, GgufWeightType type, List<string> notes)
    {
        var expected = HfTensorNames.Expected(c).ToDictionary(e => e.Name, e => e.Shape, StringComparer.Ordinal);
        var list = new List<PlannedTensor>();
        if (c.RopeScaling is { RopeType: "llama3" })
            list.Add(new(new GgufTensorInfo("rope_freqs.weight", [c.HeadDim / 2], GgmlType.F32), null, [c.HeadDim / 2], Transform.RopeFreqs));

        void Add(string gguf, string hf, Transform transform = Transform.None)
        {
            var shape = expected[hf];
            var ne = shape.Reverse().ToArray();
            var t = shape.Length == 1 ? GgmlType.F32 : MatrixType(type);
            if (t == GgmlType.Q8_0 && ne[0] % Q8_0.BlockSize != 0)
            {
                // As the converter does: Q8_0 needs rows in whole blocks of 32; this tensor falls back to f16.
                t = GgmlType.F16;
                notes.Add($"{gguf}: rows of {ne[0]} values are not whole Q8_0 blocks of {Q8_0.BlockSize}; stored as f16");
            }
            list.Add(new(new GgufTensorInfo(gguf, ne, t), hf, shape, transform));
        }

        Add("token_embd.weight", HfTensorNames.Embeddings);
        for (int l = 0; l < c.NumHiddenLayers; l++)
        {
            string B(string s) => $"blk.{l}.{s}";
            Add(B("attn_norm.weight"), HfTensorNames.Layer(l, "input_layernorm.weight"));
            Add(B("attn_q.weight"), HfTensorNames.Layer(l, "self_attn.q_proj.weight"), Transform.PermuteQ);
            Add(B("attn_k.weight"), HfTensorNames.Layer(l, "self_attn.k_proj.weight"), Transform.PermuteK);
            Add(B("attn_v.weight"), HfTensorNames.Layer(l, "self_attn.v_proj.weight"));
            Add(B("attn_output.weight"), HfTensorNames.Layer(l, "self_attn.o_proj.weight"));
            Add(B("ffn_norm.weight"), HfTensorNames.Layer(l, "post_attention_layernorm.weight"));
            Add(B("ffn_gate.weight"), HfTensorNames.Layer(l, "mlp.gate_proj.weight"));
            Add(B("ffn_up.weight"), HfTensorNames.Layer(l, "mlp.up_proj.weight"));
            Add(B("ffn_down.weight"), HfTensorNames.Layer(l, "mlp.down_proj.weight"));
        }
        Add("output_norm.weight", HfTensorNames.FinalNorm);
        // Tied embeddings: no output.weight; llama.cpp then uses token_embd for the head, as the converter leaves it.
        if (!c.TieWordEmbeddings) Add("output.weight", HfTensorNames.LmHead);
        return list;
    }

    static GgmlType MatrixType(GgufWeightType t) => t switch
    {
        GgufWeightType.F32 => GgmlType.F32,
        GgufWeightType.F16 => GgmlType.F16,
        GgufWeightType.BF16 => GgmlType.BF16,
        GgufWeightType.Q8_0 => GgmlType.Q8_0,
        _ => throw new ArgumentOutOfRangeException(nameof(t)),
    };

    static void WriteTensor(PlannedTensor p, LlamaConfig c, CheckpointTensors weights, Stream output)
    {
        if (p.Transform == Transform.RopeFreqs)
        {
            WriteValues(RopeFreqFactors(c), p.Info.Type, output);
            return;
        }
        using var scope = NewDisposeScope();
        var t = weights.ReadFloat32(p.Source!, p.SourceShape);                       // (out, in) or (n)
        t = p.Transform switch
        {
            Transform.PermuteQ => PermuteForGgmlRope(t, c.NumAttentionHeads),
            Transform.PermuteK => PermuteForGgmlRope(t, c.NumKeyValueHeads),
            _ => t,
        };
        // Rows of the PyTorch (out, in) matrix are ggml's ne[0]-runs, so a contiguous block of rows is already in
        // GGUF order. Chunks of rows keep each span small (and under 2 GB for the 8B+ embeddings).
        long rows = t.shape.Length == 1 ? 1 : t.shape[0];
        long rowLength = p.Info.Ne[0];
        long rowsPerChunk = Math.Max(1, (1L << 22) / rowLength);                    // ~16 MB of f32 per chunk
        var flat = t.reshape(rows, rowLength);
        for (long r0 = 0; r0 < rows; r0 += rowsPerChunk)
        {
            using var chunk = flat.narrow(0, r0, Math.Min(rowsPerChunk, rows - r0)).contiguous();
            WriteValues(MemoryMarshal.Cast<byte, float>(chunk.bytes), p.Info.Type, output);
        }
    }

    /// <summary>
    /// Hugging Face stores each head's rows as [first halves of the rotary pairs; second halves] (rotate_half);
    /// ggml's rope rotates adjacent rows (2j, 2j+1). Row h·hd + s·hd/2 + j moves to h·hd + 2j + s.
    /// </summary>
    static Tensor PermuteForGgmlRope(Tensor w, int heads)                                   // (heads·hd, in)
    {
        long rows = w.shape[0], cols = w.shape[1];
        return w.reshape(heads, 2, rows / heads / 2, cols)                                  // (heads, 2, hd/2, in)
            .transpose(1, 2)                                                                // (heads, hd/2, 2, in)
            .reshape(rows, cols);
    }

    /// <summary>
    /// The llama3 rope scaling as ggml applies it: θ_i = pos · base^(−2i/d) / factor_i. Transformers scales the
    /// inverse frequency by (1 − s)/factor + s in the blended band (<see cref="Rope.InverseFrequencies"/>), so
    /// factor_i is the ratio of the unscaled to the scaled frequency: 1, factor, or 1/((1 − s)/factor + s). The
    /// original context comes from rope_scaling.original_max_position_embeddings, where transformers reads it.
    /// </summary>
    public static float[] RopeFreqFactors(LlamaConfig c)
    {
        var plain = Rope.InverseFrequencies(c.HeadDim, c.RopeTheta, null);
        var scaled = Rope.InverseFrequencies(c.HeadDim, c.RopeTheta, c.RopeScaling);
        var factors = new float[plain.Length];
        for (int i = 0; i < factors.Length; i++) factors[i] = (float)(plain[i] / scaled[i]);
        return factors;
    }

    static void WriteValues(ReadOnlySpan<float> values, GgmlType type, Stream output)
    {
        switch (type)
        {
            case GgmlType.F32:
                output.Write(MemoryMarshal.AsBytes(values)); // little-endian hosts only (x86-64, arm64), as TorchSharp itself
                break;
            case GgmlType.F16:
            {
                var buf = new byte[values.Length * 2];
                HalfFloats.EncodeFloat16(values, buf);
                output.Write(buf);
                break;
            }
            case GgmlType.BF16:
            {
                var buf = new byte[values.Length * 2];
                HalfFloats.EncodeBFloat16(values, buf);
                output.Write(buf);
                break;
            }
            case GgmlType.Q8_0:
            {
                var buf = new byte[values.Length / Q8_0.BlockSize * Q8_0.BlockBytes];
                Q8_0.Encode(values, buf);
                output.Write(buf);
                break;
            }
            default:
                throw new ArgumentOutOfRangeException(nameof(type), type, null);
        }
    }
}
