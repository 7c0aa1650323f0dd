using CptLab.Core;
using CptLab.Data.Tokenization;
using CptLab.Model;
using CptLab.Model.Hardware;
using static TorchSharp.torch;

namespace CptLab.Serving;

/// <summary>
/// What the server serves: the model, its tokenizer and chat template, and the ids that end a reply. A model
/// directory is the Hugging Face layout: config.json and weights (read by <see cref="HfCheckpoint"/>), and
/// next to them tokenizer.json (or a tiktoken tokenizer.model) and, optionally, tokenizer_config.json with
/// the chat_template.
/// </summary>
public sealed class ServedModel : IDisposable
{
    public ServedModel(LlamaForCausalLM model, ITextTokenizer tokenizer, ChatTemplate template, string name, GenerationConfig? generation = null)
    {
        if (tokenizer.VocabSize > model.Config.VocabSize)
            throw new CptLabException($"the tokenizer has {tokenizer.VocabSize} ids but the model's vocab_size is {model.Config.VocabSize}; they do not belong together");
        Model = model;
        Tokenizer = tokenizer;
        Template = template;
        Name = name;
        Generation = generation ?? new GenerationConfig();
        // A reply ends at the model's eos ids, generation_config.json's (as vLLM reads them), the tokenizer's end-of-text,
        // and the template's end of turn.
        StopIds = model.Config.EosTokenIds.Concat(Generation.EosTokenIds).Append(tokenizer.EosId).Concat(template.TurnEndIds(tokenizer)).ToHashSet();
        Defaults = SamplingDefaults.From(Generation);
        SpecialIds = tokenizer.SpecialTokens.Values.ToHashSet();
    }

    public LlamaForCausalLM Model { get; }
    public ITextTokenizer Tokenizer { get; }
    public ChatTemplate Template { get; }
    /// <summary>The id clients put in "model" (default: the directory's name).</summary>
    public string Name { get; }
    public IReadOnlySet<int> StopIds { get; }
    /// <summary>The folder's generation_config.json (empty when it has none).</summary>
    public GenerationConfig Generation { get; }
    /// <summary>What a request that leaves a sampling field out gets: generation_config.json's value, as vLLM does, else OpenAI's default.</summary>
    public SamplingDefaults Defaults { get; }
    /// <summary>Special tokens are left out of reply text, as vLLM's skip_special_tokens does by default.</summary>
    public IReadOnlySet<int> SpecialIds { get; }
    public int ContextLength => Model.Config.MaxPositionEmbeddings;

    /// <summary>The compute dtype the model runs in, and why (dtype auto: the faster on this machine).</summary>
    public PrecisionChoice Precision { get; private init; } = new(ScalarType.Float32, "");

    /// <param name="dtype">Compute dtype; null: auto, the faster on this machine (whatever the checkpoint's stored dtype).</param>
    public static ServedModel Load(string dir, string? name = null, ScalarType? dtype = null, string? chatTemplate = null, Action<string>? warn = null)
    {
        if (!Directory.Exists(dir)) throw new CptLabException($"{dir}: model directory not found");
        var template = ChatTemplate.ForModel(dir, chatTemplate);
        var tokenizer = TextTokenizer.Load(dir,
            "a model folder to serve needs its tokenizer. Folders written by `cptlab train` and `cptlab model init --tokenizer` carry one; " +
            "for an older folder, copy tokenizer.json (and tokenizer_config.json, for the chat template) from the model it was trained from " +
            "or from the tokenizer its training data was prepared with (the data folder's manifest names it)");
        var generation = GenerationConfig.TryLoad(dir);
        var precision = ComputePrecision.ForInference(dir, dtype, warn);
        var model = HfCheckpoint.Load(dir, precision.Dtype);
        model.eval();
        try
        {
            return new ServedModel(model, tokenizer, template, name ?? Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(dir))), generation) { Precision = precision };
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    public int[] EncodeChat(IReadOnlyList<ChatMessage> messages) => Template.Encode(Tokenizer, messages);

    /// <summary>Text of generated ids with special tokens left out.</summary>
    public string DecodeText(IReadOnlyList<int> ids) => Tokenizer.Decode(ids.Where(i => !SpecialIds.Contains(i)));

    public void Dispose() => Model.Dispose();
}
