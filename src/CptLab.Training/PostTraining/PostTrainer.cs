using System.IO.Hashing;
using System.Text;
using System.Text.Json;
using CptLab.Core;
using CptLab.Data.Chat;
using CptLab.Data.Tokenization;

namespace CptLab.Training.PostTraining;

/// <summary>
/// `cptlab sft` and `cptlab dpo`: reads the chat or preference files of the config's section, renders every record with
/// the starting model's own chat template and tokenizer, labels and truncates it, sets aside a held-out split, and runs
/// the trainer with the SFT or DPO objective. A run folder holds, besides the trainer's files, <c>rejects.jsonl</c> (every
/// record not used: file, line, reason) and <c>data_summary.json</c> (read, kept, rejected by reason, the detected
/// format, truncations, packing efficiency).
/// </summary>
public static class PostTrainer
{
    public const string RejectsFile = "rejects.jsonl";
    public const string SummaryFile = "data_summary.json";

    public static TrainResult Run(TrainConfig config, string runDir, bool resume, TrainerHooks? hooks = null, CancellationToken cancellation = default)
    {
        config.Validate();
        var post = config.Post ?? throw new CptLabException("this config has no sft: or dpo: section; pre-training runs with `cptlab train`");
        var source = config.InitFrom ?? throw new ConfigException("train config", "model.init_from", $"missing: {post.Section} starts from a model folder (a CptLab run's final/, or a Hugging Face folder)");
        // Rows longer than the positions the model was trained for would train (and later serve) it past its context.
        int context = config.LoadModelConfig().MaxPositionEmbeddings;
        if (config.SeqLen > context)
            throw new ConfigException("train config", "data.seq_len", $"{config.SeqLen} is longer than the context of {source} (max_position_embeddings {context}); use data.seq_len ≤ {context}");
        var tokenizer = TextTokenizer.Load(config.Tokenizer ?? source, "give model.tokenizer, or a model.init_from folder holding tokenizer.json or tokenizer.model");
        var template = ChatTemplate.ForModel(config.Tokenizer is { } t && Directory.Exists(t) ? t : source);
        var renderer = new ChatRenderer(tokenizer, template);
        var log = hooks?.Log;
        int cutoff = post.CutoffLen > 0 ? post.CutoffLen : config.SeqLen;
        Directory.CreateDirectory(runDir);
        log?.Invoke($"chat template {template.Name}; cut-off {cutoff} tokens ({JsonNamingPolicy.SnakeCaseLower.ConvertName(post.Truncation.ToString())} when longer)");

        var format = ChatFormats.Parse(post.Format);
        var summary = new DataSummary();
        IStepObjective objective;
        using (var rejects = new ChatRejects(Path.Combine(runDir, RejectsFile)))
        {
            if (post.Stage == PostTrainStage.Sft)
            {
                var options = new LabelOptions(cutoff, post.TrainOnPrompt, post.MaskHistory, post.Truncation);
                var (train, validation) = Split(Sft(ChatReader.Read(post.Train, format, rejects), renderer, options, rejects, summary),
                    post.Validation.Count > 0 ? Sft(ChatReader.Read(post.Validation, format, rejects), renderer, options, rejects, summary.Held) : null,
                    post.ValidationFraction, post.MaxValidation, summary);
                if (train.Count == 0) throw new CptLabException($"no usable training example in {string.Join(", ", post.Train)}; see {Path.Combine(runDir, RejectsFile)}");
                var examples = train.Select(e => e.Value).ToList();
                var rows = post.Packing
                    ? SequencePacker.Pack(examples.Select(e => e.Length).ToList(), config.SeqLen)
                    : SequencePacker.OnePerRow(examples.Count);
                summary.Rows = rows.Count;
                summary.PackingEfficiency = examples.Sum(e => (double)e.Length) / ((double)rows.Count * config.SeqLen);
                summary.TrainedShare = examples.Sum(e => (double)e.TrainedCount) / ((double)rows.Count * config.SeqLen);
                config = WithBudget(config, post, rows.Count, log);
                objective = new SftObjective(examples, [.. validation.Select(e => e.Value)], rows, config, tokenizer.SourcePath);
            }
            else
            {
                var (train, validation) = Split(Dpo(PreferenceReader.Read(post.Train, format, rejects), renderer, cutoff, post.Truncation, rejects, summary),
                    post.Validation.Count > 0 ? Dpo(PreferenceReader.Read(post.Validation, format, rejects), renderer, cutoff, post.Truncation, rejects, summary.Held) : null,
                    post.ValidationFraction, post.MaxValidation, summary);
                if (train.Count == 0) throw new CptLabException($"no usable preference pair in {string.Join(", ", post.Train)}; see {Path.Combine(runDir, RejectsFile)}");
                summary.Rows = 2 * train.Count;
                config = WithBudget(config, post, 2 * train.Count, log);
                objective = new DpoObjective([.. train.Select(e => e.Value)], [.. validation.Select(e => e.Value)], config, post.Dpo, runDir, tokenizer.SourcePath, log);
            }
            summary.Read = rejects.Summary();
        }
        AtomicFile.WriteAllText(Path.Combine(runDir, SummaryFile), JsonSerializer.Serialize(summary, new JsonSerializerOptions(Json.SnakeCase) { WriteIndented = true }) + "\n");
        var s = summary.Read!;
        log?.Invoke($"{post.Section} data: {s.Read:N0} records read ({s.Format ?? "no"} format), {summary.Train:N0} training and {summary.Validation:N0} held-out {(post.Stage == PostTrainStage.Sft ? "examples" : "pairs")}, " +
                    $"{s.Rejected.Values.Sum():N0} rejected{(s.Rejected.Count > 0 ? " (" + string.Join(", ", s.Rejected.Select(kv => $"{kv.Key} {kv.Value:N0}")) + $"; see {RejectsFile})" : "")}, {summary.Truncated:N0} truncated" +
                    (post.Stage == PostTrainStage.Sft ? $"; {summary.Rows:N0} rows, packing efficiency {summary.PackingEfficiency:P1} (trained tokens {summary.TrainedShare:P1} of capacity)" : ""));
        return Trainer.Run(config, objective, runDir, resume, hooks, cancellation);
    }

    /// <summary>
    /// The budget in steps: <c>epochs</c> passes over the rows (whole steps, at least one), written into budget_tokens
    /// (the run's config.json then says how long it trains); epochs 0 keeps budget_tokens.
    /// </summary>
    static TrainConfig WithBudget(TrainConfig config, PostTrainOptions post, int rows, Action<string>? log)
    {
        if (post.Epochs == 0) return config;
        long rowsPerStep = config.GlobalBatchTokens / config.SeqLen;
        long steps = Math.Max(1, (long)Math.Floor(post.Epochs * rows / rowsPerStep));
        log?.Invoke($"{post.Epochs:G} epoch(s) of {rows:N0} rows at {rowsPerStep:N0} rows per step: {steps:N0} steps");
        return (config with { BudgetTokens = steps * config.GlobalBatchTokens }).Validate();
    }

    /// <summary>Keyed examples (the key: a hash of the record's text, for the held-out choice) of the records that render and label.</summary>
    static IEnumerable<KeyValuePair<ulong, TokenizedExample>> Sft(IEnumerable<ChatExample> records, ChatRenderer renderer, LabelOptions options, ChatRejects rejects, Counts counts)
    {
        foreach (var r in records)
        {
            RenderedConversation rendered;
            try { rendered = renderer.Render(r.Messages); }
            catch (RenderException e) { rejects.Reject(r.File, r.Line, ChatRejectReason.Unrenderable, e.Message); continue; }
            var example = ExampleLabeller.Label(rendered, options, out var reason, out var truncated);
            if (example is null) { rejects.Reject(r.File, r.Line, ChatRejectReason.TooLong, reason!); continue; }
            if (truncated) counts.Truncated++;
            yield return new(Key(r.Messages), example);
        }
    }

    static IEnumerable<KeyValuePair<ulong, PreferencePair>> Dpo(IEnumerable<PreferenceExample> records, ChatRenderer renderer, int cutoff, TruncationMode truncation, ChatRejects rejects, Counts counts)
    {
        foreach (var r in records)
        {
            RenderedConversation chosen, rejected;
            try
            {
                chosen = renderer.Render([.. r.Prompt, r.Chosen]);
                rejected = renderer.Render([.. r.Prompt, r.Rejected]);
            }
            catch (RenderException e) { rejects.Reject(r.File, r.Line, ChatRejectReason.Unrenderable, e.Message); continue; }
            var pair = PairLabeller.Label(chosen, rejected, cutoff, truncation, out var reason, out var truncated);
            if (pair is null)
            {
                rejects.Reject(r.File, r.Line, reason!.StartsWith("chosen and rejected are identical", StringComparison.Ordinal) ? ChatRejectReason.ChosenEqualsRejected : ChatRejectReason.TooLong, reason);
                continue;
            }
            if (truncated) counts.Truncated++;
            yield return new(Key([.. r.Prompt, r.Chosen, r.Rejected]), pair);
        }
    }

    /// <summary>
    /// Training and held-out examples: the validation files' when given, else the training records whose text hash falls
    /// in the first <paramref name="fraction"/> of the hash range (stable whatever the file order); the first <paramref name="max"/> of them are scored.
    /// </summary>
    static (List<KeyValuePair<ulong, T>> Train, List<KeyValuePair<ulong, T>> Validation) Split<T>(IEnumerable<KeyValuePair<ulong, T>> train,
        IEnumerable<KeyValuePair<ulong, T>>? validation, double fraction, int max, DataSummary summary)
    {
        var all = train.ToList();
        List<KeyValuePair<ulong, T>> held;
        if (validation is not null) held = [.. validation];
        else
        {
            var cut = (ulong)(fraction * ulong.MaxValue);
            held = [.. all.Where(e => e.Key < cut)];
            all = [.. all.Where(e => e.Key >= cut)];
        }
        (summary.Train, summary.Validation, summary.ValidationScored) = (all.Count, held.Count, Math.Min(held.Count, max));
        return (all, held.Take(max).ToList());
    }

    static ulong Key(IEnumerable<ChatMessage> messages)
    {
        var h = new XxHash64();
        foreach (var m in messages) { h.Append(Encoding.UTF8.GetBytes(m.Role)); h.Append([0]); h.Append(Encoding.UTF8.GetBytes(m.Content)); h.Append([0]); }
        return h.GetCurrentHashAsUInt64();
    }

    class Counts
    {
        public long Truncated { get; set; }
    }

    /// <summary>What data_summary.json records.</summary>
    sealed class DataSummary : Counts
    {
        public ChatReadSummary? Read { get; set; }
        public long Train { get; set; }
        public long Validation { get; set; }
        /// <summary>Held-out examples scored at each evaluation (the first max_validation); the rest are neither trained nor scored.</summary>
        public long ValidationScored { get; set; }
        public long Rows { get; set; }
        public double PackingEfficiency { get; set; }
        public double TrainedShare { get; set; }
        /// <summary>Truncations among the held-out files' records.</summary>
        public Counts Held { get; } = new();
    }
}
