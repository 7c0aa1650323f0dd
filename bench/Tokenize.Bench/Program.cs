// Tokenize-and-pack throughput on the demo corpora, CptLab's tokenizer against Hugging Face tokenizers (Rust) on
// the same tokenizer.json and the same documents, measured side by side in one run.
// "Tokenize and pack" = BOS + ids + EOS per document, appended to one flat stream as prepare/packing does.
// Usage: dotnet run -c Release --project bench/Tokenize.Bench -- [--tokenizer PATH|llama3|trained] [--corpora DIR] [--mb N] [--threads N]
// Default tokenizer: Meta's real Llama-3 tokenizer.json (scripts/fetch-test-peers.sh puts it in .cache/llama3-tokenizer);
// "trained" is the 16k byte-level BPE trained on the sample, as earlier results used.
using System.Diagnostics;
using System.Text;
using CptLab.Data.Sources;
using CptLab.Data.Tokenization;

var argv = args.ToList();
string? Arg(string name) { var i = argv.IndexOf(name); return i >= 0 && i + 1 < argv.Count ? argv[i + 1] : null; }
var root = FindRoot();
var corpora = Arg("--corpora") ?? Path.Combine(root, ".cache", "corpora");
var mbPerCorpus = double.Parse(Arg("--mb") ?? "4", System.Globalization.CultureInfo.InvariantCulture);
var threads = int.Parse(Arg("--threads") ?? Environment.ProcessorCount.ToString());
if (!File.Exists(Path.Combine(corpora, "brown", "brown.jsonl")))
{
    Console.Error.WriteLine($"no demo corpora in {corpora}: run scripts/fetch-corpora.sh first");
    return 1;
}

var sources = new List<SourceSpec>
{
    new() { Name = "brown", Tag = "en", Files = [Path.Combine(corpora, "brown", "brown.jsonl")] },
    new() { Name = "tang", Tag = "zh", TextField = "paragraphs", Files = [Path.Combine(corpora, "chinese-poetry", "dist", "quantangshi", "poet.tang.*.json")] },
};
var docs = SourceConfig.Sample(sources, (long)(mbPerCorpus * 1e6)).ToList();
var bytes = docs.Sum(d => (long)Encoding.UTF8.GetByteCount(d));
var llama3 = Path.Combine(root, ".cache", "llama3-tokenizer", "tokenizer.json");
var tokenizerPath = (Arg("--tokenizer") ?? (File.Exists(llama3) ? "llama3" : "trained")) switch
{
    "llama3" => llama3,
    "trained" => Path.Combine(root, ".cache", "bench", "tokenizer.json"),
    var path => path,
};
if (tokenizerPath == llama3 && !File.Exists(llama3))
{
    Console.Error.WriteLine($"no {llama3}: run scripts/fetch-test-peers.sh first");
    return 1;
}
if (!File.Exists(tokenizerPath))
{
    Console.WriteLine($"training a 16k byte-level BPE on the sample into {tokenizerPath} …");
    BpeTrainer.Train(docs.Take(docs.Count / 4), new BpeTrainerOptions { VocabSize = 16_384 }).Save(tokenizerPath);
}
var ours = TextTokenizer.Load(tokenizerPath);
using var hf = new Tokenizers.DotNet.Tokenizer(tokenizerPath);
Console.WriteLine($"{docs.Count:N0} documents, {bytes / 1e6:0.0} MB UTF-8 (English Brown + Chinese Tang poems), tokenizer {tokenizerPath} ({ours.VocabSize:N0} tokens), {threads} threads");

int[] OursWith(TextTokenizer t, string text)
{
    var ids = new List<int>(text.Length / 2 + 2) { t.BosId!.Value };
    t.Encode(text, ids);
    ids.Add(t.EosId);
    return [.. ids];
}
int[] Ours(string text) => OursWith(ours, text);
// Whether the file's post-processor adds BOS (TemplateProcessing, as BpeTrainer writes) or not (ByteLevel, as the
// npm copy of Llama-3's file has); HF then gets BOS + ids + EOS exactly as CptLab does.
var hfAddsBos = hf.Encode("a") is { Length: > 0 } probe && probe[0] == (uint)ours.BosId!.Value;
int[] Hf(string text) => HfWith(hf, text);
int[] HfWith(Tokenizers.DotNet.Tokenizer h, string text)
{
    var u = h.Encode(text);
    var skip = hfAddsBos ? 0 : 1;
    var ids = new int[u.Length + skip + 1];
    ids[0] = ours.BosId!.Value;
    for (var i = 0; i < u.Length; i++) ids[i + skip] = (int)u[i];
    ids[^1] = ours.EosId;
    return ids;
}

// Same ids? (A benchmark of two tokenizers that disagree would compare nothing.)
var differing = docs.Where(d => !Ours(d).AsSpan().SequenceEqual(Hf(d))).ToList();
Console.WriteLine($"documents with identical ids: {docs.Count - differing.Count:N0}/{docs.Count:N0}");
foreach (var d in differing.Take(int.Parse(Arg("--show-diff") ?? "0")))
{
    var (o, h) = (Ours(d), Hf(d));
    var at = 0;
    while (at < Math.Min(o.Length, h.Length) && o[at] == h[at]) at++;
    Console.WriteLine($"  differs at token {at}: ours [{string.Join(' ', o.Skip(at).Take(6))}] = '{ours.Decode(o.Skip(at).Take(6))}', HF [{string.Join(' ', h.Skip(at).Take(6))}] = '{ours.Decode(h.Skip(at).Take(6))}'");
}

// Every timed run gets fresh tokenizers on both sides, so caches (CptLab's per-thread pre-token cache, HF's BPE
// word cache) start cold as in a real prepare run and hold only what this run's text repeats; the JIT is warm.
(double MBs, long Tokens) RunFresh(bool cptlab, int parallelism)
{
    if (cptlab)
    {
        var t = TextTokenizer.Load(tokenizerPath);
        return Run(text => OursWith(t, text), parallelism);
    }
    using var h = new Tokenizers.DotNet.Tokenizer(tokenizerPath);
    return Run(text => HfWith(h, text), parallelism);
}

(double MBs, long Tokens) Run(Func<string, int[]> encode, int parallelism)
{
    GC.Collect();
    GC.WaitForPendingFinalizers();
    var results = new int[docs.Count][];
    var sw = Stopwatch.StartNew();
    Parallel.For(0, docs.Count, new ParallelOptions { MaxDegreeOfParallelism = parallelism }, i => results[i] = encode(docs[i]));
    var stream = new List<int>();
    foreach (var r in results) stream.AddRange(r);      // pack in document order
    sw.Stop();
    return (bytes / 1e6 / sw.Elapsed.TotalSeconds, stream.Count);
}

foreach (var p in new[] { 1, threads }.Distinct())
{
    Run(Ours, p); Run(Hf, p);                          // warm-up: JIT
    var best = (Ours: 0.0, Hf: 0.0);
    long tOurs = 0, tHf = 0;
    for (var rep = 0; rep < 3; rep++)
    {
        var o = RunFresh(cptlab: true, p); var h = RunFresh(cptlab: false, p);
        best = (Math.Max(best.Ours, o.MBs), Math.Max(best.Hf, h.MBs));
        (tOurs, tHf) = (o.Tokens, h.Tokens);
    }
    Console.WriteLine($"threads {p}: CptLab {best.Ours:0.00} MB/s ({tOurs:N0} tokens), HF tokenizers {best.Hf:0.00} MB/s ({tHf:N0} tokens), ratio CptLab/HF {best.Ours / best.Hf:0.00}");
}
return 0;

static string FindRoot()
{
    var d = new DirectoryInfo(AppContext.BaseDirectory);
    while (d is not null && !File.Exists(Path.Combine(d.FullName, "CptLab.slnx"))) d = d.Parent;
    return d?.FullName ?? Directory.GetCurrentDirectory();
}
