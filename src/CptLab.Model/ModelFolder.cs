using CptLab.Core;
using CptLab.Data.Tokenization;
using static TorchSharp.torch;

namespace CptLab.Model;

/// <summary>
/// What a model folder holds besides the weights: the tokenizer files (<see cref="TokenizerFiles"/>) and the generation
/// config of the model a run started from, whose sampling defaults and extra keys are carried over.
/// </summary>
public sealed record ModelFolderContents
{
    /// <summary>The tokenizer files every folder gets; null only where no tokenizer is known (a folder that cannot be served).</summary>
    public TokenizerFiles? Tokenizer { get; init; }
    /// <summary>The generation_config.json of the model the run started from, if it had one.</summary>
    public GenerationConfig? BaseGeneration { get; init; }

    public static ModelFolderContents None { get; } = new();

    /// <summary>
    /// The contents for a model continued from <paramref name="baseDir"/> (or made from scratch when null). The tokenizer is
    /// <paramref name="tokenizerSource"/> when given, else the base folder's when it has one, else
    /// <paramref name="dataTokenizer"/> (the one the training data was tokenized with); the generation config is the base's.
    /// </summary>
    public static ModelFolderContents For(string? tokenizerSource, string? baseDir, int modelMaxLength, string? dataTokenizer = null)
    {
        var source = tokenizerSource ?? (baseDir is not null && HasTokenizer(baseDir) ? baseDir : dataTokenizer);
        return new ModelFolderContents
        {
            Tokenizer = source is null ? null : TokenizerFiles.From(source, modelMaxLength),
            BaseGeneration = baseDir is null ? null : GenerationConfig.TryLoad(baseDir),
        };
    }

    static bool HasTokenizer(string dir) =>
        File.Exists(Path.Combine(dir, TokenizerFiles.TokenizerJson)) || File.Exists(Path.Combine(dir, TokenizerFiles.TiktokenModel));
}

/// <summary>
/// The one writer of model folders (a run's <c>final/</c>, the model part of every checkpoint, <c>cptlab model init</c>):
/// a complete Hugging Face model — <c>config.json</c> with <c>torch_dtype</c> true to the stored dtype and the tokenizer's
/// bos/eos ids, <c>generation_config.json</c> (bos, every id that ends generation, the base's sampling defaults),
/// the weights (sharded with an index past a size limit) and the tokenizer files — so that the folder is served,
/// exported or loaded by other tools with no file copied by hand.
/// </summary>
public static class ModelFolder
{
    public const long DefaultMaxShardBytes = 5L << 30;

    /// <summary>Writes the folder as one unit (a temporary sibling folder renamed into place).</summary>
    /// <param name="dtype">Stored dtype (default: the model's).</param>
    public static void Save(LlamaForCausalLM model, string dir, ModelFolderContents contents, ScalarType? dtype = null, long maxShardBytes = DefaultMaxShardBytes) =>
        AtomicFolder.Write(dir, tmp => WriteInto(model, tmp, contents, dtype, maxShardBytes));

    /// <summary>Writes the folder's files into <paramref name="dir"/> (each file atomically), for callers that make the folder atomic themselves.</summary>
    public static void WriteInto(LlamaForCausalLM model, string dir, ModelFolderContents contents, ScalarType? dtype = null, long maxShardBytes = DefaultMaxShardBytes)
    {
        var (config, generation) = Describe(model.Config, contents);
        HfCheckpoint.Save(model, dir, dtype, maxShardBytes, config, generation);
        if (contents.Tokenizer is { } tokenizer) tokenizer.WriteInto(dir);
    }

    /// <summary>
    /// config.json and generation_config.json for <paramref name="config"/>'s model with these contents. With a tokenizer, the
    /// ids are the tokenizer's: bos is its begin-of-text, eos its end-of-text plus those of the config's eos ids that are its
    /// special tokens (a flavor's placeholder ids are dropped; a Hub chat model's [end_of_text, eot] stay), and generation
    /// also ends at the chat template's end-of-turn ids, as Meta's generation_config.json lists them.
    /// </summary>
    public static (LlamaConfig Config, GenerationConfig Generation) Describe(LlamaConfig config, ModelFolderContents contents)
    {
        var baseGen = contents.BaseGeneration ?? new GenerationConfig();
        if (contents.Tokenizer is not { } tok)
            return (config, baseGen with { BosTokenId = baseGen.BosTokenId ?? config.BosTokenId, EosTokenIds = Union(config.EosTokenIds, baseGen.EosTokenIds) });
        if (tok.VocabSize > config.VocabSize)
            throw new CptLabException($"{tok.Source}: the tokenizer has {tok.VocabSize:N0} ids but the model's vocab_size is {config.VocabSize:N0}; they do not belong together");
        var eos = Union([tok.EosId], config.EosTokenIds.Where(tok.SpecialIds.Contains));
        var written = config with { BosTokenId = tok.BosId ?? config.BosTokenId, EosTokenIds = eos };
        var generation = baseGen with
        {
            BosTokenId = written.BosTokenId,
            EosTokenIds = Union(eos, Union(baseGen.EosTokenIds.Where(tok.SpecialIds.Contains), tok.TurnEndIds)),
        };
        return (written, generation);
    }

    static int[] Union(IEnumerable<int> a, IEnumerable<int> b) => a.Concat(b).Distinct().ToArray();
}
