using CptLab.Eval.Metrics;

namespace CptLab.Eval.Scoring;

/// <summary>
/// MATH's process_results as lm-eval's two tasks define them, over the <c>answer</c> their process_docs put in each
/// document (<see cref="Tasks.DocProcessors"/>): minerva_math takes the "Final Answer: The final answer is X. I hope
/// it is correct." sentence and compares normalised strings (no sympy, no math_verify: see <see cref="MathAnswers"/>);
/// hendrycks_math takes the text between the first and last "$" and compares after strip_string.
/// </summary>
public static class MathScorers
{
    public static ProcessOutput Minerva(ProcessInput i)
    {
        var answer = MathAnswers.NormalizeFinalAnswer(MathAnswers.GetUnnormalizedAnswer(i.Generation ?? ""));
        var gold = i.Doc.Doc["answer"] as string ?? "";
        return new ProcessOutput(new Dictionary<string, double> { ["exact_match"] = MathAnswers.IsEquivMinerva(answer, gold) ? 1 : 0 }, answer);
    }

    public static ProcessOutput Hendrycks(ProcessInput i)
    {
        var answer = MathAnswers.HendrycksAnswer(i.Generation ?? "");
        var gold = i.Doc.Doc["answer"] as string;
        return new ProcessOutput(new Dictionary<string, double> { ["exact_match"] = MathAnswers.IsEquivHendrycks(answer, gold) ? 1 : 0 }, answer);
    }
}
