namespace CptLab.Eval;

/// <summary>The evaluation room: benchmark tasks as data, scored as lm-evaluation-harness scores them.</summary>
public static class EvalRoom
{
    public const string Name = "CptLab.Eval";
}
