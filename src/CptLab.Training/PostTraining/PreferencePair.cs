namespace CptLab.Training.PostTraining;

/// <summary>A tokenized preference pair: the prompt followed by the chosen, and by the rejected, completion; only the completions are trained.</summary>
public sealed record PreferencePair(TokenizedExample Chosen, TokenizedExample Rejected);
