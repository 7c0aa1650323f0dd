using CptLab.Core;
using CptLab.Eval.Metrics;

namespace CptLab.Eval.Tests.Metrics;

/// <summary>
/// Expected values come from reading lm-eval's hendrycks_math/utils.py and minerva_math/utils.py (EleutherAI
/// lm-evaluation-harness @4e7e0d47); each was also checked by running those Python functions on the same input.
/// The comment beside a case says which rule of the reference produces it.
/// </summary>
public class MathAnswersTests
{
    [Theory]
    [InlineData("The answer is $\\boxed{\\frac{1}{2}}$.", "\\boxed{\\frac{1}{2}}", "\\frac{1}{2}")]   // braces matched, not the first "}"
    [InlineData("so \\boxed{\\sqrt{\\frac{a}{b}}} end", "\\boxed{\\sqrt{\\frac{a}{b}}}", "\\sqrt{\\frac{a}{b}}")]   // nested braces
    [InlineData("\\boxed{1} then \\boxed{2}.", "\\boxed{2}", "2")]                                    // rfind: the last box
    [InlineData("is \\boxed 5$ more", "\\boxed 5", "5")]                                              // brace-less form, cut at "$"
    [InlineData("\\boxed{3} and \\boxed 5", "\\boxed 5", "5")]                                        // "\boxed " is checked first and wins
    public void Finds_and_unwraps_the_last_box(string text, string boxed, string inside)
    {
        Assert.Equal(boxed, MathAnswers.LastBoxedOnlyString(text));
        Assert.Equal(inside, MathAnswers.RemoveBoxed(boxed));
    }

    [Fact]
    public void Fbox_is_found_but_not_unwrapped_and_malformed_boxes_give_null()
    {
        Assert.Equal("\\fbox{4}", MathAnswers.LastBoxedOnlyString("\\fbox{4}"));   // fallback to rfind("\\fbox")
        Assert.Null(MathAnswers.RemoveBoxed("\\fbox{4}"));                          // remove_boxed's assert fails
        Assert.Null(MathAnswers.LastBoxedOnlyString("\\boxed{3"));                   // never closes → None
        Assert.Null(MathAnswers.LastBoxedOnlyString("no box"));
        Assert.Null(MathAnswers.LastBoxedOnlyString("\\boxed}{5}"));                 // count goes −1, 0 is never reached from above
        Assert.Null(MathAnswers.RemoveBoxed(null));
    }

    [Theory]
    [InlineData("\\dfrac{1}{2}", "\\frac{1}{2}")]          // dfrac → frac
    [InlineData("\\tfrac{3}{4}", "\\frac{3}{4}")]          // tfrac → frac
    [InlineData("0.5", "\\frac{1}{2}")]                    // the one hard-coded decimal
    [InlineData(".5", "\\frac{1}{2}")]                     // leading "." → "0." and then the 0.5 rule
    [InlineData("1/2", "\\frac{1}{2}")]                    // fix_a_slash_b
    [InlineData("03/4", "03/4")]                           // int() accepts "03" but the assert str(a)/str(b) fails
    [InlineData("10\\%", "10")]                            // percent removed
    [InlineData("5 \\text{ cm}", "5")]                     // remove_right_units keeps what precedes "\text{ "
    [InlineData("x = 5", "5")]                             // lhs of ≤ 2 characters dropped ("x " is 2)
    [InlineData("abc = 5", "abc=5")]                       // longer lhs kept; spaces removed
    [InlineData("k=\\sqrt2", "\\sqrt{2}")]                 // lhs dropped, fix_sqrt
    [InlineData("\\sqrt3", "\\sqrt{3}")]
    [InlineData("\\frac12", "\\frac{1}{2}")]               // fix_fracs, both one-character
    [InlineData("\\frac1{72}", "\\frac{1}{72}")]           // fix_fracs, second already braced
    [InlineData("\\frac1", "\\frac1")]                     // too short: fix_fracs returns its input
    [InlineData("\\left( 3, 4 \\right)", "(3,4)")]         // \left, \right and spaces removed
    [InlineData("90^\\circ", "90")]                        // degrees
    [InlineData("\\$5", "5")]                              // dollar sign
    [InlineData("1,000", "1,000")]                         // hendrycks keeps commas (minerva removes them)
    public void Strip_string_normalises_as_the_reference(string input, string expected) =>
        Assert.Equal(expected, MathAnswers.StripString(input));

    [Theory]
    [InlineData("x/2")]                    // int('x') raises ValueError, uncaught by fix_a_slash_b
    [InlineData("\\frac")]                 // substr[0] of "" → IndexError
    [InlineData("\\text{ a}\\text{ b}")]   // remove_right_units asserts exactly one "\text{ "
    public void Strip_string_gives_null_where_the_reference_raises(string input) => Assert.Null(MathAnswers.StripString(input));

    [Theory]
    [InlineData("x/2", "x/2", true)]            // strip_string raised → raw strings compared: equal
    [InlineData("x/2", " x/2", false)]          // … and raw comparison sees the space
    [InlineData("1,000", "1000", false)]        // commas are not normalised here
    [InlineData("0.5", "\\frac{1}{2}", true)]
    [InlineData("\\dfrac12", "1/2", true)]      // both → \frac{1}{2}
    [InlineData("50\\%", "50", true)]
    public void Is_equiv_hendrycks(string a, string b, bool expected) => Assert.Equal(expected, MathAnswers.IsEquivHendrycks(a, b));

    [Theory]
    [InlineData("The answer is $\\frac{1}{2}$.", "\\frac{1}{2}", true)]   // between first and last "$"
    [InlineData("so $x$ and $y=3$", "x$ and $y=3", false)]                // first to LAST "$", whatever lies between
    [InlineData("no dollars 7", "no dollars 7", false)]                   // fewer than two "$": the whole output
    [InlineData("one $ only", "one $ only", false)]
    public void Hendrycks_process_results(string output, string answer, bool correct)
    {
        Assert.Equal(answer, MathAnswers.HendrycksAnswer(output));
        Assert.Equal(correct, MathAnswers.HendrycksExactMatch(output, "x \\boxed{\\frac12}"));   // gold strips to \frac{1}{2}
    }

    [Fact]
    public void A_solution_without_a_box_is_refused()
    {
        Assert.Throws<CptLabException>(() => MathAnswers.HendrycksExactMatch("$5$", "the answer is 5"));
        Assert.Throws<CptLabException>(() => MathAnswers.MinervaGoldAnswer("\\fbox{5}"));
    }

    [Theory]
    [InlineData("We get 24.\nFinal Answer: The final answer is $24$. I hope it is correct.", "$24$")]
    [InlineData("Final Answer: The final answer is $\\frac{1}{2}$. I hope it is correct.\nProblem: next", "$\\frac{1}{2}$")]
    [InlineData("no sentence", "[invalidanswer]")]
    [InlineData("Final Answer: The final answer is 5", "[invalidanswer]")]    // appended "I hope…" has no space before it
    [InlineData("Final Answer: The final answer is 5.", "[invalidanswer]")]   // ".I hope": still no " I hope"
    public void Get_unnormalized_answer(string output, string expected) => Assert.Equal(expected, MathAnswers.GetUnnormalizedAnswer(output));

    [Theory]
    [InlineData("$24$", "24")]                              // inside of $…$, then "$" dropped
    [InlineData("\\$1,000", "1000")]                        // "\$" substituted away; digits+commas → commas removed
    [InlineData("1,234,567", "1234567")]
    [InlineData("(1,2)", "(1,2)")]                          // not only digits: commas stay
    [InlineData("5 \\text{ cm}", "5")]                      // " " removed, "cm" deleted, then "\text{}" deleted
    [InlineData("12 \\mbox{ inches}", "12")]                // mbox → text, "inches" and "\text{}" deleted
    [InlineData("\\dfrac{1}{2}", "\\dfrac{1}{2}")]          // minerva does not rewrite dfrac
    [InlineData("x = \\frac12", "\\frac{1}{2}")]            // after the last "=", short frac expanded
    [InlineData("a = 5, b = 6", "6")]                       // only what follows the LAST "="
    [InlineData("\\boxed{7}", "7")]
    [InlineData("\\text{(A)}", "(A)")]
    [InlineData("\\textbf{Monday}", "Monday")]
    [InlineData("50\\%", "50\\%")]                          // percent is not in the lists
    [InlineData("\\sqrt2", "\\sqrt{2}")]
    [InlineData("3^\\circ", "3")]
    [InlineData("\\frac{\\sqrt{3}}{2}", "\\frac{\\sqrt{3}}{2}")]
    [InlineData("an integer 6", "integer6")]                // "an " removed, "integers" (plural) not present
    [InlineData("\\left(3,4\\right)", "\\le(3,4\\right)")]  // "ft" is deleted even out of "\left"
    [InlineData("[invalidanswer]", "[invalidanswer]")]
    public void Normalize_final_answer(string input, string expected) => Assert.Equal(expected, MathAnswers.NormalizeFinalAnswer(input));

    [Fact]
    public void Minerva_exact_match_compares_normalised_strings()
    {
        const string solution = "Adding, we get $\\boxed{1,000}$.";
        Assert.Equal("1000", MathAnswers.MinervaGoldAnswer(solution));
        Assert.True(MathAnswers.MinervaExactMatch("So.\nFinal Answer: The final answer is $1000$. I hope it is correct.", solution));
        Assert.True(MathAnswers.MinervaExactMatch("Final Answer: The final answer is \\$1,000. I hope it is correct.", solution));
        Assert.False(MathAnswers.MinervaExactMatch("Final Answer: The final answer is $999$. I hope it is correct.", solution));
        Assert.False(MathAnswers.MinervaExactMatch("The answer is 1000.", solution));   // no final-answer sentence
        // sympy would call these equal; string equality does not (documented on the class).
        Assert.False(MathAnswers.IsEquivMinerva("0.5", "\\frac{1}{2}"));
        Assert.False(MathAnswers.IsEquivMinerva(MathAnswers.InvalidAnswer, MathAnswers.InvalidAnswer));
    }
}
