namespace CptLab.Training.PostTraining;

/// <summary>
/// One training sequence of post-training: its ids and, per token, whether the loss trains on predicting it. Targets
/// never cross sequences: the first token of a sequence is never a target (nothing precedes it in its own sequence).
/// </summary>
public sealed record TokenizedExample(int[] Ids, bool[] Trained)
{
    public int Length => Ids.Length;
    public int TrainedCount => Trained.Count(t => t);
}

/// <summary>How an over-long example is cut: LLaMA-Factory's <c>infer_seqlen</c> budget between prompt and response, or dropped.</summary>
public enum TruncationMode { InferSeqlen, Drop }

/// <summary>The labelling options of SFT (LLaMA-Factory's names and defaults).</summary>
/// <param name="CutoffLen">Longest sequence in tokens.</param>
/// <param name="TrainOnPrompt">Train on every token, prompts included (default: assistant turns and their end-of-turn token only).</param>
/// <param name="MaskHistory">Train on the last assistant turn only.</param>
public sealed record LabelOptions(int CutoffLen, bool TrainOnPrompt = false, bool MaskHistory = false, TruncationMode Truncation = TruncationMode.InferSeqlen);
