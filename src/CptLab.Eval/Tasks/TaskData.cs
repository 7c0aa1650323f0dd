using System.Globalization;
using CptLab.Core;
using CptLab.Templates;

namespace CptLab.Eval.Tasks;

/// <summary>
/// One evaluation document ready to score: its prompt (description + shots + doc_to_text), the choices and gold
/// index for multiple_choice, or the target text for generate_until.
/// </summary>
public sealed record PreparedDoc(int Index, EvalDoc Doc, string Prompt, IReadOnlyList<string> Choices, int Gold, string Target);

/// <summary>The documents of one task or one subject of a grouped task, with what was skipped and why.</summary>
public sealed record TaskUnit(TaskSpec Spec, Subject? Subject, IReadOnlyList<PreparedDoc> Docs, IReadOnlyList<SkippedDoc> Skipped, IReadOnlyList<string> Files)
{
    /// <summary>"cmmlu_agronomy" for a subject, the task name otherwise (lm-eval's subtask names).</summary>
    public string Name => Subject is null ? Spec.Task : $"{Spec.Task}_{Subject.Name}";
}

/// <summary>
/// Loads a task's files and assembles its prompts as lm-eval's <c>fewshot_context</c> does: description, then for each
/// shot doc_to_text + target_delimiter + target + fewshot_delimiter, then the document's doc_to_text. Shots come from
/// the few-shot split, first_n or lm-eval's default sampler (Python's random.sample with the seed, one generator per
/// task or subject, advanced document by document); a shot equal to the document itself is left out when both
/// come from the same split.
/// </summary>
public sealed class TaskData
{
    readonly TaskSpec _spec;
    readonly DocTemplate _text, _target, _description;
    readonly IReadOnlyList<DocTemplate>? _choices;

    public TaskData(TaskSpec spec)
    {
        _spec = spec;
        try
        {
            _text = new DocTemplate(spec.DocToText, $"{spec.File}: doc_to_text");
            _target = new DocTemplate(spec.DocToTarget, $"{spec.File}: doc_to_target");
            _description = new DocTemplate(spec.Description, $"{spec.File}: description");
            _choices = spec.DocToChoice?.Select((c, i) => new DocTemplate(c, $"{spec.File}: doc_to_choice[{i}]")).ToArray();
        }
        catch (TemplateException e) { throw new CptLabException(e.Message); }
    }

    /// <summary>Every unit of the task (one per subject, or the task itself), limited to the first <paramref name="limit"/> documents each.</summary>
    public static IReadOnlyList<TaskUnit> Load(TaskSpec spec, string dataDir, int? numFewshot = null, int? limit = null, long seed = 1234, IReadOnlyCollection<string>? subjects = null)
    {
        var data = new TaskData(spec);
        var units = spec.Subjects.Count == 0 ? [null] : spec.Subjects.Where(s => subjects is null || subjects.Contains(s.Name)).Cast<Subject?>().ToList();
        return units.Select(s => data.LoadUnit(s, dataDir, numFewshot ?? spec.NumFewshot, limit, seed)).ToArray();
    }

    TaskUnit LoadUnit(Subject? subject, string dataDir, int numFewshot, int? limit, long seed)
    {
        var skipped = new List<SkippedDoc>();
        var files = new List<string>();
        var test = Read(_spec.TestSplit, subject, dataDir, skipped, files);
        var pool = new List<(EvalDoc Doc, int Gold, string Target, IReadOnlyList<string> Choices)>();
        bool sameSplit = numFewshot > 0 && _spec.FewshotSamples.Count == 0 && _spec.FewshotSplit == _spec.TestSplit;
        if (numFewshot > 0)
        {
            if (_spec.FewshotSamples.Count == 0 && (_spec.FewshotSplit is null || !_spec.DataFiles.ContainsKey(_spec.FewshotSplit)))
                throw new CptLabException($"{_spec.File}: {numFewshot} shots asked for but the task has no few-shot split with data_files");
            var shotDocs = _spec.FewshotSamples.Count > 0 ? Samples(skipped)
                : sameSplit ? test : Read(_spec.FewshotSplit!, subject, dataDir, skipped, files);
            foreach (var d in shotDocs)
                if (Resolve(d, subject, out var ch, out var gold, out var target, out _)) pool.Add((d, gold, target, ch));
            if (pool.Count < numFewshot + (sameSplit ? 1 : 0))
                throw new CptLabException($"{_spec.Task}{(subject is null ? "" : "_" + subject.Name)}: {numFewshot} shots asked for but the few-shot split has only {pool.Count} usable documents");
        }
        var rnd = new PythonRandom(seed);
        string description = Render(_description, null, subject);
        var prepared = new List<PreparedDoc>();
        foreach (var doc in test)
        {
            if (limit is { } l && prepared.Count >= l) break;
            if (!Resolve(doc, subject, out var choices, out var gold, out var target, out var why)) { skipped.Add(new SkippedDoc(doc.File, doc.Line, why!)); continue; }
            if (_spec.HeldOutFraction is { } heldOut)
            {
                // The text as `cptlab data prepare` cleans it, kept only when prepare would have held it out.
                target = Data.Cleaning.TextCleaner.Normalize(target);
                if (Data.Cleaning.TextCleaner.SplitValueOf(target) >= heldOut) continue;
            }
            if (_spec.OutputType == OutputType.LoglikelihoodRolling && target.Length == 0) { skipped.Add(new SkippedDoc(doc.File, doc.Line, "empty document text")); continue; }
            string text;
            try { text = _text.Render(doc, subject); }
            catch (TemplateException e) { skipped.Add(new SkippedDoc(doc.File, doc.Line, e.Message)); continue; }
            var sb = new System.Text.StringBuilder(description);
            foreach (var shot in Shots(pool, doc, numFewshot, sameSplit, rnd))
                sb.Append(_text.Render(shot.Doc, subject)).Append(_spec.TargetDelimiter)
                  .Append(_spec.OutputType == OutputType.MultipleChoice ? shot.Choices[shot.Gold] : shot.Target)
                  .Append(_spec.FewshotDelimiter);
            sb.Append(text);
            prepared.Add(new PreparedDoc(prepared.Count, doc, sb.ToString(), choices, gold, target));
        }
        return new TaskUnit(_spec, subject, prepared, skipped, files);
    }

    IEnumerable<(EvalDoc Doc, int Gold, string Target, IReadOnlyList<string> Choices)> Shots(
        List<(EvalDoc Doc, int Gold, string Target, IReadOnlyList<string> Choices)> pool, EvalDoc doc, int n, bool sameSplit, PythonRandom rnd)
    {
        if (n == 0) return [];
        if (_spec.FewshotSampler == "first_n")
            return (sameSplit ? pool.Where(p => !ReferenceEquals(p.Doc, doc)) : pool).Take(n);
        if (!sameSplit) return rnd.Sample(pool, n);
        return rnd.Sample(pool, n + 1).Where(p => !ReferenceEquals(p.Doc, doc)).Take(n);
    }

    /// <summary>The choices, gold index and target text of a document, or false with the reason it cannot be scored.</summary>
    bool Resolve(EvalDoc doc, Subject? subject, out IReadOnlyList<string> choices, out int gold, out string target, out string? why)
    {
        choices = [];
        gold = -1;
        target = "";
        why = null;
        foreach (var t in new[] { _text, _target }.Concat(_choices ?? []))
            foreach (var f in t.Fields)
                if (doc[f] is null) { why = doc.Fields.ContainsKey(f) ? $"field '{f}' is empty" : $"missing field '{f}' (fields: {string.Join(", ", doc.Fields.Keys)})"; return false; }
        try
        {
            target = _target.IsPlain && doc.Fields.ContainsKey(_spec.DocToTarget) ? Convert.ToString(doc[_spec.DocToTarget], CultureInfo.InvariantCulture) ?? "" : _target.Render(doc, subject);
            if (_spec.OutputType != OutputType.MultipleChoice) return true;
            if (_choices is not null) choices = _choices.Select(c => c.Render(doc, subject)).ToArray();
            else if (doc[_spec.DocToChoiceField!] is IEnumerable<object?> list) choices = list.Select(o => Convert.ToString(o, CultureInfo.InvariantCulture) ?? "").ToArray();
            else { why = doc.Fields.ContainsKey(_spec.DocToChoiceField!) ? $"field '{_spec.DocToChoiceField}' is not a list of choices" : $"missing field '{_spec.DocToChoiceField}'"; return false; }
        }
        catch (TemplateException e) { why = e.Message; return false; }
        var t2 = target.Trim();
        if (int.TryParse(t2, NumberStyles.Integer, CultureInfo.InvariantCulture, out var idx) && !choices.Contains(t2))
        {
            if (idx < 0 || idx >= choices.Count) { why = $"answer index {idx} is outside the {choices.Count} choices"; return false; }
            gold = idx;
        }
        else
        {
            gold = choices.ToList().IndexOf(t2);
            if (gold < 0) { why = $"answer '{t2}' is not one of the choices ({string.Join(", ", choices.Select(c => c.Length > 20 ? c[..20] + "…" : c))})"; return false; }
        }
        return true;
    }

    string Render(DocTemplate t, EvalDoc? doc, Subject? subject)
    {
        try { return t.Render(doc ?? new EvalDoc(new Dictionary<string, object?>(), _spec.File, 0), subject); }
        catch (TemplateException e) { throw new CptLabException(e.Message); }
    }

    List<EvalDoc> Read(string split, Subject? subject, string dataDir, List<SkippedDoc> skipped, List<string> files)
    {
        // dataDir may list several folders (':'-separated, as PATH): the task's files are taken from the first that has them.
        var relative = _spec.DataFiles[split].Select(p => Render(new DocTemplate(p, $"{_spec.File}: data_files.{split}"), null, subject)).ToArray();
        var candidates = dataDir.Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .SelectMany(d => relative.Select(r => Path.Combine(d, _spec.DatasetPath, r))).ToArray();
        var file = candidates.FirstOrDefault(File.Exists)
            ?? throw new CptLabException($"{_spec.Task}: no {split} file: looked for {string.Join(" and ", candidates)}; pass --data-dir with the folder that holds {_spec.DatasetPath}/ (several folders: separated by '{Path.PathSeparator}')");
        files.Add(file);
        var (docs, bad) = DocReader.Read(file, _spec.Format);
        skipped.AddRange(bad);
        return Processed(docs.Where(d => _spec.Where.All(w => Convert.ToString(d[w.Key], CultureInfo.InvariantCulture) == w.Value)), skipped);
    }

    /// <summary>fewshot_config.samples as documents of the task file (line = the sample's number).</summary>
    List<EvalDoc> Samples(List<SkippedDoc> skipped) =>
        Processed(_spec.FewshotSamples.Select((f, i) => new EvalDoc(f.ToDictionary(kv => kv.Key, kv => (object?)kv.Value), _spec.File, i + 1)), skipped);

    /// <summary>The documents through the task's process_docs; one it cannot handle is skipped with its reason.</summary>
    List<EvalDoc> Processed(IEnumerable<EvalDoc> docs, List<SkippedDoc> skipped)
    {
        if (_spec.ProcessDocs is not { } name) return docs.ToList();
        var transform = DocProcessors.Get(name);
        var output = new List<EvalDoc>();
        foreach (var d in docs)
        {
            try { output.Add(transform(d)); }
            catch (CptLabException e) { skipped.Add(new SkippedDoc(d.File, d.Line, $"process_docs {name}: {e.Message}")); }
        }
        return output;
    }
}
