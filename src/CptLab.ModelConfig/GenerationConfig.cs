using System.Text.Json.Nodes;
using CptLab.Core;

namespace CptLab.Model;

/// <summary>
/// A model folder's <c>generation_config.json</c> as transformers and vLLM read it: the special ids (bos, eos — a list
/// for chat models, whose turns end with <c>&lt;|eot_id|&gt;</c> — and pad) and the model's default sampling settings.
/// vLLM stops at every eos id listed here and takes the sampling keys as the defaults of requests that do not set them;
/// CptLab's server does both. Keys CptLab does not model are kept as they were read and written back unchanged.
/// </summary>
public sealed record GenerationConfig
{
    public const string FileName = "generation_config.json";

    public int? BosTokenId { get; init; }
    public IReadOnlyList<int> EosTokenIds { get; init; } = [];
    public int? PadTokenId { get; init; }
    public bool? DoSample { get; init; }
    public double? Temperature { get; init; }
    public double? TopP { get; init; }
    public int? TopK { get; init; }
    public double? MinP { get; init; }
    public double? RepetitionPenalty { get; init; }
    public int? MaxNewTokens { get; init; }

    /// <summary>Keys read but not modelled above, written back as they were.</summary>
    public JsonObject Extra { get; init; } = [];

    static readonly string[] Modelled =
        ["bos_token_id", "eos_token_id", "pad_token_id", "do_sample", "temperature", "top_p", "top_k", "min_p", "repetition_penalty", "max_new_tokens"];

    /// <summary>Reads a generation_config.json; errors name the file and the key.</summary>
    public static GenerationConfig Load(string path)
    {
        using var doc = Json.ParseFile(path);
        if (JsonNode.Parse(doc.RootElement.GetRawText()) is not JsonObject root) throw new ConfigException(path, "(root)", "expected a JSON object");
        var r = new ConfigReader(root, path);
        int? Id(string key) => r.Long(key) is { } v ? v is >= 0 and <= int.MaxValue ? (int)v : throw r.Error(key, $"{v} is not a token id") : null;
        var eos = (r.Longs("eos_token_id") ?? []).Select(e => e is >= 0 and <= int.MaxValue ? (int)e : throw r.Error("eos_token_id", $"{e} is not a token id")).ToArray();
        var extra = new JsonObject();
        foreach (var (key, value) in root)
            if (!Modelled.Contains(key)) extra[key] = value?.DeepClone();
        return new GenerationConfig
        {
            BosTokenId = Id("bos_token_id"),
            EosTokenIds = eos,
            PadTokenId = Id("pad_token_id"),
            DoSample = r.Bool("do_sample"),
            Temperature = r.Double("temperature"),
            TopP = r.Double("top_p"),
            TopK = r.Int("top_k"),
            MinP = r.Double("min_p"),
            RepetitionPenalty = r.Double("repetition_penalty"),
            MaxNewTokens = r.Int("max_new_tokens"),
            Extra = extra,
        };
    }

    /// <summary>The generation config in <paramref name="dir"/>, or null when the folder has none.</summary>
    public static GenerationConfig? TryLoad(string dir) =>
        File.Exists(Path.Combine(dir, FileName)) ? Load(Path.Combine(dir, FileName)) : null;

    public JsonObject ToJson()
    {
        var o = new JsonObject();
        if (BosTokenId is { } bos) o["bos_token_id"] = bos;
        if (EosTokenIds.Count == 1) o["eos_token_id"] = EosTokenIds[0];
        else if (EosTokenIds.Count > 1) o["eos_token_id"] = new JsonArray(EosTokenIds.Select(e => (JsonNode)e).ToArray());
        if (PadTokenId is { } pad) o["pad_token_id"] = pad;
        if (DoSample is { } sample) o["do_sample"] = sample;
        if (Temperature is { } t) o["temperature"] = t;
        if (TopP is { } p) o["top_p"] = p;
        if (TopK is { } k) o["top_k"] = k;
        if (MinP is { } m) o["min_p"] = m;
        if (RepetitionPenalty is { } rp) o["repetition_penalty"] = rp;
        if (MaxNewTokens is { } n) o["max_new_tokens"] = n;
        foreach (var (key, value) in Extra) o[key] = value?.DeepClone();
        return o;
    }

    /// <summary>Writes the file atomically.</summary>
    public void Save(string path) => AtomicFile.WriteAllText(path, ToJson().ToJsonString(Json.Indented) + "\n");
}
