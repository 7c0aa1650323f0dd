namespace CptLab.Training.PostTraining;

/// <summary>
/// Turns a rendered conversation into a <see cref="TokenizedExample"/>: labels as LLaMA-Factory's supervised dataset
/// processor sets them, and truncation to the cut-off as its <c>infer_seqlen</c> does, turn by turn (a turn is the
/// prompt tokens since the previous assistant message, then the assistant message).
/// </summary>
public static class ExampleLabeller
{
    /// <summary>The labelled example, or null with <paramref name="reason"/> when it cannot be used (dropped as too long, nothing left to train).</summary>
    public static TokenizedExample? Label(RenderedConversation rendered, LabelOptions options, out string? reason, out bool truncated)
    {
        reason = null;
        truncated = false;
        var ids = rendered.Ids;
        var spans = rendered.AssistantSpans;
        if (spans.Count == 0) { reason = "no assistant message to train on"; return null; }
        var train = new bool[ids.Length];
        for (int s = 0; s < spans.Count; s++)
        {
            if (options.MaskHistory && s < spans.Count - 1) continue;
            for (int i = spans[s].Start; i < spans[s].End; i++) train[i] = true;
        }
        if (options.TrainOnPrompt) Array.Fill(train, true);
        train[0] = false; // the first token has no prediction in its own sequence

        if (ids.Length > options.CutoffLen)
        {
            if (options.Truncation == TruncationMode.Drop) { reason = $"longer than the cut-off ({ids.Length} > {options.CutoffLen} tokens)"; return null; }
            (ids, train) = Truncate(ids, train, spans, options);
            truncated = true;
            train[0] = false;
        }
        if (!train.Any(t => t)) { reason = "nothing left to train on after truncation to the cut-off"; return null; }
        return new TokenizedExample(ids, train);
    }

    /// <summary>LLaMA-Factory's infer_seqlen: how many source and target tokens to keep within <paramref name="cutoff"/>.</summary>
    public static (int Source, int Target) InferSeqlen(int source, int target, int cutoff)
    {
        int maxTarget;
        if (target * 2 < cutoff) maxTarget = cutoff;                   // a short response: cut the prompt
        else if (source * 2 < cutoff) maxTarget = cutoff - source;     // a short prompt: cut the response
        else maxTarget = (int)(cutoff * ((double)target / (source + target))); // both long: in proportion
        int newTarget = Math.Min(maxTarget, target);
        int maxSource = Math.Max(cutoff - newTarget, 0);
        return (Math.Min(maxSource, source), newTarget);
    }

    /// <summary>
    /// Turn by turn within the remaining budget, each turn's source and target kept from their beginnings; with
    /// mask_history the budget goes to the last turns first (LLaMA-Factory reverses the turns there). Tokens after the
    /// last assistant message (a template's trailing newline) are kept only if room is left.
    /// </summary>
    static (int[] Ids, bool[] Train) Truncate(int[] ids, bool[] train, IReadOnlyList<(int Start, int End)> spans, LabelOptions options)
    {
        var turns = new List<(int SourceStart, int TargetStart, int TargetEnd)>();
        int prev = 0;
        foreach (var (start, end) in spans) { turns.Add((prev, start, end)); prev = end; }
        var keep = new (int Source, int Target)[turns.Count];
        int total = 0;
        var order = Enumerable.Range(0, turns.Count);
        if (options.MaskHistory) order = order.Reverse();
        foreach (var k in order)
        {
            if (total >= options.CutoffLen) break;
            var (ss, ts, te) = turns[k];
            keep[k] = InferSeqlen(ts - ss, te - ts, options.CutoffLen - total);
            total += keep[k].Source + keep[k].Target;
        }
        var outIds = new List<int>(options.CutoffLen);
        var outTrain = new List<bool>(options.CutoffLen);
        void Copy(int from, int count)
        {
            for (int i = from; i < from + count; i++) { outIds.Add(ids[i]); outTrain.Add(train[i]); }
        }
        for (int k = 0; k < turns.Count; k++)
        {
            Copy(turns[k].SourceStart, keep[k].Source);
            Copy(turns[k].TargetStart, keep[k].Target);
        }
        Copy(prev, Math.Min(ids.Length - prev, options.CutoffLen - outIds.Count));
        return ([.. outIds], [.. outTrain]);
    }
}

/// <summary>
/// A preference pair's two renderings (prompt + chosen, prompt + rejected) labelled on their completion only — the last
/// assistant message and its end-of-turn token — and truncated together as LLaMA-Factory's pairwise processor does:
/// infer_seqlen over the prompt and the longer completion, so both keep the same prompt.
/// </summary>
public static class PairLabeller
{
    public static PreferencePair? Label(RenderedConversation chosen, RenderedConversation rejected, int cutoffLen, TruncationMode truncation, out string? reason, out bool truncated)
    {
        reason = null;
        truncated = false;
        var (cs, ce) = chosen.AssistantSpans[^1];
        var (rs, re) = rejected.AssistantSpans[^1];
        int longest = Math.Max(chosen.Ids.Length, rejected.Ids.Length);
        int promptC = cs, promptR = rs, targetC = ce - cs, targetR = re - rs;
        if (longest > cutoffLen)
        {
            if (truncation == TruncationMode.Drop) { reason = $"longer than the cut-off ({longest} > {cutoffLen} tokens)"; return null; }
            var (source, target) = ExampleLabeller.InferSeqlen(Math.Max(cs, rs), Math.Max(targetC, targetR), cutoffLen);
            (promptC, promptR, targetC, targetR) = (Math.Min(cs, source), Math.Min(rs, source), Math.Min(targetC, target), Math.Min(targetR, target));
            truncated = true;
            if (targetC == 0 || targetR == 0) { reason = $"no completion token left within the cut-off of {cutoffLen} tokens"; return null; }
        }
        var pair = new PreferencePair(Completion(chosen.Ids, promptC, cs, targetC), Completion(rejected.Ids, promptR, rs, targetR));
        if (pair.Chosen.Ids.AsSpan().SequenceEqual(pair.Rejected.Ids))
        {
            // The completions differed only past the cut-off: the pair would teach nothing (its gradient is zero) and dilute the mean.
            reason = $"chosen and rejected are identical within the cut-off of {cutoffLen} tokens (they differ only after it)";
            return null;
        }
        return pair;
    }

    /// <summary>The first <paramref name="prompt"/> tokens, then <paramref name="target"/> completion tokens from <paramref name="start"/>, only those trained; nothing after the completion.</summary>
    static TokenizedExample Completion(int[] ids, int prompt, int start, int target)
    {
        var outIds = ids.Take(prompt).Concat(ids.Skip(start).Take(target)).ToArray();
        var train = new bool[outIds.Length];
        for (int i = Math.Max(prompt, 1); i < outIds.Length; i++) train[i] = true;
        return new TokenizedExample(outIds, train);
    }
}
