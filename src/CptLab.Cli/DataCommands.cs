using System.CommandLine;
using CptLab.Core;
using CptLab.Data.Chat;
using CptLab.Data.Cleaning;
using CptLab.Data.Mixing;
using CptLab.Data.Prepare;
using CptLab.Data.Sources;
using CptLab.Data.Sources.DebianDocs;
using CptLab.Data.Tokenization;
using Spectre.Console;

namespace CptLab.Cli;

/// <summary>`cptlab data prepare|mix|stats|inspect|train-tokenizer|post-train-sets|extract-docs`: thin verbs over CptLab.Data.</summary>
public static class DataCommands
{
    const string TokenizerAdvice = "point --tokenizer at a tokenizer.json, a tokenizer.model or a folder holding one";

    public static Command Create()
    {
        var data = new Command("data", "Corpora → cleaned, tokenized Megatron shards → token-exact ALMR mixtures.");
        data.Subcommands.Add(Prepare());
        data.Subcommands.Add(Mix());
        data.Subcommands.Add(Stats());
        data.Subcommands.Add(Inspect());
        data.Subcommands.Add(TrainTokenizer());
        data.Subcommands.Add(PostTrainSets());
        data.Subcommands.Add(ExtractDocs());
        return data;
    }

    static Option<string[]> SourceOption() => new("--source")
    {
        Description = "A corpus as NAME=TAG:GLOB[,GLOB…] (repeatable), e.g. brown=en:.cache/corpora/brown/*.jsonl. A known TAG (en, zh, …) also sets the language check.",
        AllowMultipleArgumentsPerToken = false,
    };

    static Option<FileInfo?> SourcesFileOption() => new("--sources-file") { Description = "A JSON file listing sources (name, tag, files, text_field, txt_documents, language)." };

    static IReadOnlyList<SourceSpec> ReadSources(string[]? flags, FileInfo? file, string? textField)
    {
        var list = new List<SourceSpec>();
        if (file is not null) list.AddRange(SourceConfig.Load(file.FullName));
        foreach (var f in flags ?? []) list.Add(textField is null ? SourceSpec.Parse(f) : SourceSpec.Parse(f) with { TextField = textField });
        if (list.Count == 0) throw new CptLabException("no sources: give --source NAME=TAG:GLOB (repeatable) or --sources-file");
        return list;
    }

    static Command Prepare()
    {
        var sources = SourceOption();
        var sourcesFile = SourcesFileOption();
        var tokenizer = new Option<string>("--tokenizer") { Description = "tokenizer.json, a tiktoken tokenizer.model, or a model folder holding one.", Required = true };
        var outDir = new Option<DirectoryInfo>("--out") { Description = "Folder for the shards, manifest.json and rejects.jsonl.", Required = true };
        var textField = new Option<string?>("--text-field") { Description = "Record field holding the text in JSONL/JSON/Parquet (default: text)." };
        var valFraction = new Option<double>("--validation-fraction") { Description = "Share of documents held out for validation, chosen by content hash.", DefaultValueFactory = _ => 0.01 };
        var strict = new Option<bool>("--strict") { Description = "Stop at the first unreadable record instead of counting, logging and skipping it." };
        var noBos = new Option<bool>("--no-bos") { Description = "Do not prepend BOS to documents (default: prepend when the tokenizer has one, as Llama-3 expects)." };
        var minChars = new Option<int>("--min-chars") { Description = "Drop documents shorter than this (characters, after cleaning).", DefaultValueFactory = _ => 16 };
        var maxChars = new Option<int>("--max-chars") { Description = "Drop documents longer than this.", DefaultValueFactory = _ => 2_000_000 };
        var scriptShare = new Option<double>("--min-script-share") { Description = "Language check: least share of letters in the source language's script.", DefaultValueFactory = _ => 0.5 };
        var jaccard = new Option<double>("--jaccard") { Description = "Near-duplicate threshold (estimated Jaccard of character shingles).", DefaultValueFactory = _ => 0.8 };
        var shingle = new Option<int>("--shingle") { Description = "Shingle size in characters for near-duplicate detection.", DefaultValueFactory = _ => 5 };
        var noNear = new Option<bool>("--no-near-dedup") { Description = "Skip MinHash near-duplicate removal." };
        var threads = new Option<int>("--threads") { Description = "Files prepared at once (default: the number of cores). The output is byte-identical for any value.", DefaultValueFactory = _ => Math.Max(1, Environment.ProcessorCount) };
        var cmd = new Command("prepare", "Read, clean, deduplicate and tokenize sources into Megatron .bin/.idx shards with a manifest accounting for every document. " +
            "An interrupted run resumes when the same command is run again (per-file state in OUT/prepare.state.json).")
            { sources, sourcesFile, tokenizer, outDir, textField, valFraction, strict, noBos, minChars, maxChars, scriptShare, jaccard, shingle, noNear, threads };
        cmd.SetAction(r => CliAction.Run(() =>
        {
            var specs = ReadSources(r.GetValue(sources), r.GetValue(sourcesFile), r.GetValue(textField));
            var tokPath = r.GetValue(tokenizer)!;
            var tok = TextTokenizer.Load(tokPath, TokenizerAdvice);
            var options = new PrepareOptions
            {
                Sources = specs, OutputDir = r.GetValue(outDir)!.FullName, TokenizerPath = tok.SourcePath,
                ValidationFraction = r.GetValue(valFraction), Strict = r.GetValue(strict), AddBos = !r.GetValue(noBos), Threads = r.GetValue(threads),
                Cleaning = new CleaningOptions
                {
                    MinChars = r.GetValue(minChars), MaxChars = r.GetValue(maxChars), MinScriptShare = r.GetValue(scriptShare),
                    JaccardThreshold = r.GetValue(jaccard), ShingleSize = r.GetValue(shingle), NearDedup = !r.GetValue(noNear),
                },
            };
            // Ctrl-C stops at the next batch; the finished files' parts stay, so the same command resumes.
            using var cancel = new CancellationTokenSource();
            ConsoleCancelEventHandler onCancel = (_, e) => { e.Cancel = true; cancel.Cancel(); };
            Console.CancelKeyPress += onCancel;
            PrepareManifest? manifest = null;
            var clock = System.Diagnostics.Stopwatch.StartNew();
            double? firstPassSeconds = null;
            try
            {
                AnsiConsole.Progress().AutoClear(false).Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn())
                    .Start(ctx =>
                    {
                        var tasks = specs.ToDictionary(s => s.Name, s => ctx.AddTask(Markup.Escape(s.Name), autoStart: false));
                        manifest = CorpusPreparer.Run(options, tok, new SyncProgress<PrepareProgress>(p =>
                        {
                            if (p.Note is { } note) { AnsiConsole.MarkupLine(Markup.Escape(note)); return; }
                            if (p.Stage == PrepareStage.Write) firstPassSeconds ??= clock.Elapsed.TotalSeconds;
                            var t = tasks[p.Source];
                            t.StartTask();
                            t.MaxValue = 2 * p.FileCount; // tokenize, then write
                            t.Value = p.Stage == PrepareStage.Tokenize ? p.FileIndex : p.FileCount + p.FileIndex;
                            t.Description = Markup.Escape(p.Stage == PrepareStage.Tokenize
                                ? $"{p.Source}: {p.FileIndex}/{p.FileCount} files tokenized, {p.DocumentsRead:N0} docs"
                                : $"{p.Source}: writing shards, {p.DocumentsRead:N0} docs, {p.TokensWritten:N0} tokens");
                        }), cancel.Token);
                    });
            }
            catch (OperationCanceledException)
            {
                Console.Error.WriteLine($"interrupted: run the same command again to resume (state in {PrepareState.PathIn(options.OutputDir)})");
                throw;
            }
            finally
            {
                Console.CancelKeyPress -= onCancel;
            }
            Console.Write(DataReport.Stats(options.OutputDir));
            var total = clock.Elapsed.TotalSeconds;
            var first = firstPassSeconds ?? total;
            Console.WriteLine(FormattableString.Invariant($"time: {first:0.0} s reading, cleaning and tokenizing ({options.Threads} thread{(options.Threads == 1 ? "" : "s")}), {total - first:0.0} s dedup and shard writes in input order (1 thread)"));
            Console.WriteLine($"wrote {options.OutputDir} (manifest.json, rejects.jsonl)");
            return 0;
        }));
        return cmd;
    }

    static Command Mix()
    {
        var dataDir = new Option<DirectoryInfo>("--data") { Description = "A folder written by `cptlab data prepare`.", Required = true };
        var original = new Option<string[]>("--original") { Description = "Original-language (replay) source, NAME or NAME:WEIGHT (repeatable)." };
        var additional = new Option<string[]>("--additional") { Description = "Additional-language source, NAME or NAME:WEIGHT (repeatable)." };
        var domain = new Option<string[]>("--domain") { Description = "Domain source (math, code), NAME or NAME:WEIGHT (repeatable)." };
        var almr = new Option<double>("--almr") { Description = "Additional-language mixture ratio: share of additional-language tokens, in [0, 1].", Required = true };
        var domainShare = new Option<double>("--domain-share") { Description = "Share of domain tokens (default 0).", DefaultValueFactory = _ => 0 };
        var tokens = new Option<string>("--tokens") { Description = "Token budget of the run, e.g. 200M or 1.5B.", Required = true };
        var seqLen = new Option<int>("--seq-len") { Description = "Training sequence length (each sample holds seq-len + 1 tokens).", Required = true };
        var seed = new Option<ulong>("--seed") { Description = "Seed of the document order.", DefaultValueFactory = _ => 1234UL };
        var maxEpochs = new Option<double>("--max-epochs") { Description = "Warn when a source would repeat more often than this.", DefaultValueFactory = _ => 4 };
        var outFile = new Option<FileInfo>("--out") { Description = "Blend manifest to write (JSON).", Required = true };
        var cmd = new Command("mix", "Plan a token-exact mixture: shares, epochs per source, the sampler's seed, and the Megatron-LM --data-path line.")
            { dataDir, original, additional, domain, almr, domainShare, tokens, seqLen, seed, maxEpochs, outFile };
        cmd.SetAction(r => CliAction.Run(() =>
        {
            var components = new List<MixComponent>();
            components.AddRange((r.GetValue(original) ?? []).Select(s => MixComponent.Parse(s, SourceGroup.Original)));
            components.AddRange((r.GetValue(additional) ?? []).Select(s => MixComponent.Parse(s, SourceGroup.Additional)));
            components.AddRange((r.GetValue(domain) ?? []).Select(s => MixComponent.Parse(s, SourceGroup.Domain)));
            if (components.Count == 0) throw new CptLabException("no sources in the mixture: give --original and --additional (and optionally --domain)");
            var plan = BlendManifest.Create(new MixSpec
            {
                DataDir = r.GetValue(dataDir)!.FullName, Components = components, Almr = r.GetValue(almr), DomainShare = r.GetValue(domainShare),
                TokenBudget = TokenAmount.ParsePositive(r.GetValue(tokens)!, "--tokens"), SeqLen = r.GetValue(seqLen), Seed = r.GetValue(seed), MaxEpochs = r.GetValue(maxEpochs),
            });
            var path = r.GetValue(outFile)!.FullName;
            plan.Save(path);
            Console.Write(DataReport.Blend(plan));
            Console.WriteLine($"wrote {path}");
            return 0;
        }));
        return cmd;
    }

    static Command Stats()
    {
        var dataDir = new Option<DirectoryInfo?>("--data") { Description = "A folder written by `cptlab data prepare`." };
        var blend = new Option<FileInfo?>("--blend") { Description = "Or a blend manifest written by `cptlab data mix`." };
        var cmd = new Command("stats", "Documents, drops by reason and tokens per source; or a blend's shares and epochs.") { dataDir, blend };
        cmd.SetAction(r => CliAction.Run(() =>
        {
            Console.Write((r.GetValue(dataDir), r.GetValue(blend)) switch
            {
                ({ } d, null) => DataReport.Stats(d.FullName),
                (null, { } b) => DataReport.Blend(BlendManifest.Load(b.FullName)),
                _ => throw new CptLabException("give exactly one of --data or --blend"),
            });
            return 0;
        }));
        return cmd;
    }

    static Command Inspect()
    {
        var blend = new Option<FileInfo?>("--blend") { Description = "Decode the first sequences of this blend's training stream." };
        var dataDir = new Option<DirectoryInfo?>("--data") { Description = "Or decode the first documents of one source of a prepared folder (with --source)." };
        var source = new Option<string?>("--source") { Description = "Source name, with --data." };
        var count = new Option<int>("--count") { Description = "How many sequences or documents.", DefaultValueFactory = _ => 3 };
        var tokenizer = new Option<string?>("--tokenizer") { Description = "Tokenizer to decode with (default: the one recorded by prepare)." };
        var cmd = new Command("inspect", "Decode a few training sequences or documents, to see what the model will read.") { blend, dataDir, source, count, tokenizer };
        cmd.SetAction(r => CliAction.Run(() =>
        {
            if (r.GetValue(blend) is { } b)
            {
                var plan = BlendManifest.Load(b.FullName);
                var tok = TextTokenizer.Load(r.GetValue(tokenizer) ?? PrepareManifest.Load(plan.DataDir).Tokenizer, TokenizerAdvice);
                Console.Write(DataReport.Inspect(plan, tok, r.GetValue(count)));
            }
            else if (r.GetValue(dataDir) is { } d && r.GetValue(source) is { } s)
            {
                var tok = TextTokenizer.Load(r.GetValue(tokenizer) ?? PrepareManifest.Load(d.FullName).Tokenizer, TokenizerAdvice);
                Console.Write(DataReport.InspectSource(d.FullName, s, tok, r.GetValue(count)));
            }
            else throw new CptLabException("give --blend, or --data with --source");
            return 0;
        }));
        return cmd;
    }

    static Command TrainTokenizer()
    {
        var sources = SourceOption();
        var sourcesFile = SourcesFileOption();
        var textField = new Option<string?>("--text-field") { Description = "Record field holding the text (default: text)." };
        var vocab = new Option<int>("--vocab-size") { Description = "Total vocabulary: 256 bytes + merges + 256 Llama-3 special tokens.", DefaultValueFactory = _ => 16_384 };
        var sampleMb = new Option<double>("--sample-mb") { Description = "Megabytes of text (UTF-16) to sample from each source.", DefaultValueFactory = _ => 20 };
        var outFile = new Option<FileInfo>("--out") { Description = "tokenizer.json to write.", Required = true };
        var cmd = new Command("train-tokenizer", "Train a byte-level BPE tokenizer with Llama-3's pattern and special tokens; writes a Hugging Face tokenizer.json.")
            { sources, sourcesFile, textField, vocab, sampleMb, outFile };
        cmd.SetAction(r => CliAction.Run(() =>
        {
            var specs = ReadSources(r.GetValue(sources), r.GetValue(sourcesFile), r.GetValue(textField));
            var texts = SourceConfig.Sample(specs, (long)(r.GetValue(sampleMb) * 1e6)).ToList();
            TrainedBpe? bpe = null;
            AnsiConsole.Progress().AutoClear(false).Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn())
                .Start(ctx =>
                {
                    var task = ctx.AddTask($"merges ({texts.Count:N0} documents)", maxValue: 1.0);
                    bpe = BpeTrainer.Train(texts, new BpeTrainerOptions { VocabSize = r.GetValue(vocab) }, new SyncProgress<double>(v => task.Value = v));
                });
            var path = r.GetValue(outFile)!.FullName;
            bpe!.Save(path);
            Console.WriteLine($"wrote {path}: {bpe.VocabSize:N0} tokens ({bpe.Merges.Count:N0} merges; BOS {bpe.FirstSpecialId}, EOS {bpe.FirstSpecialId + 1})");
            return 0;
        }));
        return cmd;
    }

    const string DefaultLocaleDir = "/usr/share/locale/zh_CN/LC_MESSAGES";

    static Command PostTrainSets()
    {
        var outDir = new Option<DirectoryInfo>("--out") { Description = "Folder for the *_sft/*_dpo JSONL sets, their .val.jsonl splits and manifest.json.", Required = true };
        var gsm8k = new Option<FileInfo?>("--gsm8k") { Description = "GSM8K's train.jsonl ({question, answer}), for gsm8k_sft and gsm8k_dpo." };
        var localeDir = new Option<DirectoryInfo?>("--locale-dir") { Description = $"Folder of zh_CN gettext .mo catalogs, for translation_sft and translation_dpo (default: {DefaultLocaleDir} when it exists)." };
        var noTranslation = new Option<bool>("--no-translation") { Description = "Leave the translation sets out." };
        var seed = new Option<int>("--seed") { Description = "Seed of the wrong answers, translation directions, phrasings and rejected translations.", DefaultValueFactory = _ => 1234 };
        var valFraction = new Option<double>("--validation-fraction") { Description = "Share of items held out (*.val.jsonl), chosen by content hash.", DefaultValueFactory = _ => 0.02 };
        var keepCalc = new Option<bool>("--keep-calculator-annotations") { Description = "Keep GSM8K's <<48/2=24>> calculator annotations in the solutions (default: strip them)." };
        var maxChars = new Option<int>("--max-translation-chars") { Description = "Drop catalog strings longer than this (characters).", DefaultValueFactory = _ => 400 };
        var cmd = new Command("post-train-sets", "Build SFT and DPO sets (JSONL) from GSM8K and gettext catalogs: conversations, preference pairs, held-out splits and a manifest of counts and drops.")
            { outDir, gsm8k, localeDir, noTranslation, seed, valFraction, keepCalc, maxChars };
        cmd.SetAction(r => CliAction.Run(() =>
        {
            var locale = r.GetValue(noTranslation) ? null : r.GetValue(localeDir)?.FullName ?? (Directory.Exists(DefaultLocaleDir) ? DefaultLocaleDir : null);
            var options = new PostTrainSetOptions
            {
                OutputDir = r.GetValue(outDir)!.FullName, Gsm8kFile = r.GetValue(gsm8k)?.FullName, LocaleDir = locale, Seed = r.GetValue(seed),
                ValidationFraction = r.GetValue(valFraction), KeepCalculatorAnnotations = r.GetValue(keepCalc), MaxTranslationChars = r.GetValue(maxChars),
            };
            PostTrainManifest? manifest = null;
            AnsiConsole.Progress().AutoClear(false).Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn())
                .Start(ctx =>
                {
                    var tasks = new Dictionary<string, ProgressTask>();
                    manifest = CptLab.Data.Chat.PostTrainSets.Build(options, new SyncProgress<PostTrainProgress>(p =>
                    {
                        if (!tasks.TryGetValue(p.Stage, out var t)) tasks[p.Stage] = t = ctx.AddTask(Markup.Escape(p.Stage));
                        t.MaxValue = p.Total;
                        t.Value = p.Done;
                        t.Description = Markup.Escape(p.Stage == "translation" ? $"translation: {p.Done}/{p.Total} catalogs" : p.Stage);
                    }));
                });
            foreach (var (name, set) in manifest!.Sets)
                Console.WriteLine($"{name,-18} {set.Train,8:N0} train {set.Validation,6:N0} validation   {set.File}");
            foreach (var source in manifest.Sources)
                Console.WriteLine($"{source.Name}: {source.Records:N0} read, {source.Used:N0} used; dropped: {(source.Dropped.Count == 0 ? "none" : string.Join(", ", source.Dropped.Select(d => $"{d.Key} {d.Value:N0}")))}");
            Console.WriteLine($"wrote {options.OutputDir} ({CptLab.Data.Chat.PostTrainSets.ManifestFile})");
            return 0;
        }));
        return cmd;
    }

    static Command ExtractDocs()
    {
        var from = new Option<DirectoryInfo>("--from") { Description = "The folder scripts/fetch-debian-corpora.sh wrote (default there: .cache/debian-pkgs), or a root holding usr/share.", Required = true };
        var outDir = new Option<DirectoryInfo>("--out") { Description = "Folder for {zh,en}-{man,reference,gettext}.jsonl, rejects.jsonl and summary.json.", Required = true };
        var defaults = new DocsExtractOptions { From = "", OutputDir = "" };
        var cjk = new Option<double>("--min-cjk-share") { Description = "Drop a zh page whose Han characters ÷ (Han characters + Latin words) is lower (catches untranslated pages).", DefaultValueFactory = _ => defaults.MinCjkShare };
        var latin = new Option<double>("--min-latin-share") { Description = "Drop an en page when fewer of its letters are Latin.", DefaultValueFactory = _ => defaults.MinLatinShare };
        var minChars = new Option<int>("--min-chars") { Description = "Drop man and Debian Reference pages shorter than this (characters, after extraction).", DefaultValueFactory = _ => defaults.MinChars };
        var mandoc = new Option<string>("--mandoc") { Description = "The mandoc executable that renders the man pages.", DefaultValueFactory = _ => defaults.Mandoc };
        var threads = new Option<int>("--threads") { Description = "Man pages rendered at once (default: the number of cores). The output does not depend on it.", DefaultValueFactory = _ => defaults.Threads };
        var cmd = new Command("extract-docs", "Extract a modern Chinese + English corpus of one domain from Debian packages: man pages (mandoc), Debian Reference (HTML) and zh_CN gettext catalogs, as JSONL per source with a summary of what was kept and dropped.")
            { from, outDir, cjk, latin, minChars, mandoc, threads };
        cmd.SetAction(r => CliAction.Run(() =>
        {
            var options = new DocsExtractOptions
            {
                From = r.GetValue(from)!.FullName, OutputDir = r.GetValue(outDir)!.FullName, MinCjkShare = r.GetValue(cjk), MinLatinShare = r.GetValue(latin),
                MinChars = r.GetValue(minChars), Mandoc = r.GetValue(mandoc)!, Threads = Math.Max(1, r.GetValue(threads)),
            };
            DocsSummary? summary = null;
            AnsiConsole.Progress().AutoClear(false).Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn())
                .Start(ctx =>
                {
                    var tasks = new Dictionary<string, ProgressTask>();
                    summary = DocsExtractor.Run(options, new SyncProgress<DocsProgress>(p =>
                    {
                        if (!tasks.TryGetValue(p.Source, out var t)) tasks[p.Source] = t = ctx.AddTask(Markup.Escape(p.Source));
                        t.MaxValue = p.Total;
                        t.Value = p.Done;
                        t.Description = Markup.Escape($"{p.Source}: {p.Done:N0}/{p.Total:N0}");
                    }));
                });
            foreach (var s in summary!.Sources)
                Console.WriteLine($"{s.Name,-13} {s.Read,7:N0} read {s.Kept,7:N0} kept {s.Characters,12:N0} chars; dropped: {(s.Dropped.Count == 0 ? "none" : string.Join(", ", s.Dropped.Select(d => $"{d.Key} {d.Value:N0}")))}");
            Console.WriteLine($"wrote {options.OutputDir} (*.jsonl, {DocsExtractor.RejectsFile}, {DocsExtractor.SummaryFile})");
            return 0;
        }));
        return cmd;
    }
}
