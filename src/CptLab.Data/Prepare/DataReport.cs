using System.Globalization;
using System.Text;
using CptLab.Core;
using CptLab.Data.Mixing;
using CptLab.Data.Shards;
using CptLab.Data.Tokenization;

namespace CptLab.Data.Prepare;

/// <summary>The text `cptlab data stats` and `cptlab data inspect` print; kept here so that tests read the same.</summary>
public static class DataReport
{
    static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    /// <summary>Per source: documents read, kept, dropped by reason, tokens, and tokens per document, checked against the shards.</summary>
    public static string Stats(string dataDir)
    {
        var m = PrepareManifest.Load(dataDir);
        var dir = Directory.Exists(dataDir) ? dataDir : Path.GetDirectoryName(dataDir)!;
        var sb = new StringBuilder();
        sb.AppendLine(Inv, $"tokenizer {m.Tokenizer} (vocabulary {m.VocabSize:N0}, BOS {(m.AddBos ? m.BosId : "none")}, EOS {m.EosId}), validation fraction {m.ValidationFraction}");
        sb.AppendLine(Inv, $"{"source",-14} {"tag",-6} {"read",10} {"train",10} {"val",8} {"dropped",9} {"train tok",12} {"val tok",10} {"tok/doc",8} {"chars/tok",9}");
        foreach (var s in m.Sources)
        {
            using var train = new IndexedDataset(Path.Combine(dir, s.TrainPrefix));
            if (train.TokenCount != s.TokensTrain || train.Count != s.KeptTrain)
                throw new Core.CorruptFileException(Path.Combine(dir, s.TrainPrefix + ".idx"), $"holds {train.Count} documents / {train.TokenCount} tokens, the manifest says {s.KeptTrain} / {s.TokensTrain}");
            var perDoc = s.KeptTrain == 0 ? 0 : (double)s.TokensTrain / s.KeptTrain;
            var charsPerTok = s.TokensTrain + s.TokensValidation == 0 ? 0 : (double)s.CharsKept / (s.TokensTrain + s.TokensValidation);
            sb.AppendLine(Inv, $"{s.Name,-14} {s.Tag,-6} {s.DocumentsRead,10:N0} {s.KeptTrain,10:N0} {s.KeptValidation,8:N0} {s.DroppedTotal,9:N0} {s.TokensTrain,12:N0} {s.TokensValidation,10:N0} {perDoc,8:0.0} {charsPerTok,9:0.00}");
            if (s.Dropped.Count > 0) sb.AppendLine(Inv, $"{"",14}   dropped: {string.Join(", ", s.Dropped.Select(kv => $"{kv.Key} {kv.Value:N0}"))}");
        }
        return sb.ToString();
    }

    /// <summary>The blend: shares, planned tokens, epochs, warnings and Megatron arguments.</summary>
    public static string Blend(BlendManifest plan)
    {
        var sb = new StringBuilder();
        sb.AppendLine(Inv, $"ALMR {plan.Almr:0.###}, domain share {plan.DomainShare:0.###}; {TokenAmount.Format(plan.TokenBudget)} tokens = {plan.Sequences:N0} sequences of {plan.SeqLen} (+1), seed {plan.Seed}");
        sb.AppendLine(Inv, $"{"source",-14} {"group",-10} {"share",8} {"available",12} {"planned",12} {"epochs",7}");
        foreach (var s in plan.Sources)
            sb.AppendLine(Inv, $"{s.Name,-14} {s.Group.ToString().ToLowerInvariant(),-10} {s.Share,8:0.####} {s.TokensAvailable,12:N0} {s.TokensPlanned,12:N0} {s.Epochs,7:0.##}");
        foreach (var w in plan.Warnings) sb.AppendLine("warning: " + w);
        sb.AppendLine("Megatron-LM: " + plan.MegatronDataPath);
        sb.AppendLine("             " + plan.MegatronValidDataPath);
        return sb.ToString();
    }

    /// <summary>The first <paramref name="count"/> sequences of the blend's stream, decoded, with their source.</summary>
    public static string Inspect(BlendManifest plan, ITextTokenizer tokenizer, int count, int maxChars = 400)
    {
        using var sampler = MixtureSampler.Open(plan);
        var sb = new StringBuilder();
        for (var i = 0; i < count; i++)
        {
            var seq = sampler.Next();
            var text = tokenizer.Decode(seq.AsSpan(0, plan.SeqLen));
            if (text.Length > maxChars) text = text[..maxChars] + "…";
            sb.AppendLine(Inv, $"--- sequence {i} from {sampler.Sources[sampler.LastSource]} ({seq.Length} tokens, first ids {string.Join(' ', seq.Take(8))})");
            sb.AppendLine(text);
        }
        return sb.ToString();
    }

    /// <summary>The first <paramref name="count"/> training documents of one source, decoded.</summary>
    public static string InspectSource(string dataDir, string source, ITextTokenizer tokenizer, int count, int maxChars = 400)
    {
        var m = PrepareManifest.Load(dataDir);
        using var data = new IndexedDataset(Path.Combine(dataDir, m.Source(source).TrainPrefix));
        var sb = new StringBuilder();
        for (var i = 0; i < Math.Min(count, data.Count); i++)
        {
            var ids = data.Get(i);
            var text = tokenizer.Decode(ids);
            if (text.Length > maxChars) text = text[..maxChars] + "…";
            sb.AppendLine(Inv, $"--- document {i} of {source} ({ids.Length} tokens)");
            sb.AppendLine(text);
        }
        return sb.ToString();
    }
}
