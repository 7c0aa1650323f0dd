using CptLab.Core;
using CptLab.Data.Mixing;
using CptLab.Data.Prepare;
using CptLab.Data.Tokenization;

namespace CptLab.Training;

/// <summary>
/// The trainer's view of a blend manifest written by `cptlab data mix`: training sequences from the
/// token-exact mixture sampler, and one validation set per source from its held-out split, with the UTF-8
/// bytes of document text its target tokens stand for (<see cref="TargetBytes"/>) for bits per byte.
/// </summary>
public sealed class BlendTrainingData : ITrainingData, IDisposable
{
    readonly MixtureSampler _sampler;

    public BlendManifest Plan { get; }
    public int SequenceLength => _sampler.SeqLen;
    public IReadOnlyList<ValidationSet> Validation { get; }

    public string? TokenizerPath { get; }

    BlendTrainingData(BlendManifest plan, MixtureSampler sampler, IReadOnlyList<ValidationSet> validation, string tokenizerPath)
    {
        (Plan, _sampler, Validation, TokenizerPath) = (plan, sampler, validation, tokenizerPath);
    }

    /// <param name="blendPath">The blend manifest (JSON) from `cptlab data mix`.</param>
    /// <param name="maxValidationSequences">Held-out sequences per source used for validation.</param>
    public static BlendTrainingData Open(string blendPath, int seqLen, int maxValidationSequences)
    {
        var plan = BlendManifest.Load(blendPath);
        if (plan.SeqLen != seqLen)
            throw new CptLabException($"{blendPath}: the blend was made for sequences of {plan.SeqLen} tokens, the training config says data.seq_len = {seqLen}; remake it with `cptlab data mix --seq-len {seqLen}`");
        var manifest = PrepareManifest.Load(plan.DataDir);
        var tokenizer = TextTokenizer.Load(manifest.Tokenizer);
        var validation = new List<ValidationSet>();
        foreach (var source in plan.Sources)
        {
            var sequences = Data.Mixing.ValidationWindows.Sequences(Path.Combine(plan.DataDir, source.ValidationPrefix), seqLen, maxValidationSequences).ToList();
            if (sequences.Count == 0) continue; // a source too small to hold one held-out window is reported by `data stats`
            validation.Add(new ValidationSet(source.Name, sequences, TargetBytes(sequences, tokenizer)));
        }
        return new BlendTrainingData(plan, MixtureSampler.Open(plan), validation, manifest.Tokenizer);
    }

    /// <summary>
    /// The UTF-8 bytes of document text the target tokens (each sequence but its first token) stand for: what bits per
    /// byte divides by. BOS and EOS stand for no text and count 0 (counting their decoded strings, 17 and 15 bytes,
    /// understated bits per byte, most on short documents).
    /// </summary>
    public static long TargetBytes(IEnumerable<int[]> sequences, TextTokenizer tokenizer) =>
        sequences.Sum(s => tokenizer.TextByteCount(s.AsSpan(1)));

    public int[] Next() => _sampler.Next();
    public string SaveState() => _sampler.GetState().ToJson();
    public void RestoreState(string state) => _sampler.Restore(SamplerState.FromJson(state));
    public void Dispose() => _sampler.Dispose();
}
