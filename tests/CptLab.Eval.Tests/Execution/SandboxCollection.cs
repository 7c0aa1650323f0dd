namespace CptLab.Eval.Tests.Execution;

/// <summary>
/// The sandbox tests run one class at a time: the fork-bomb test counts the processes of the sandbox uids, and the
/// timing tests should not share the two cores with 164 HumanEval programs.
/// </summary>
[CollectionDefinition(Name)]
public sealed class SandboxCollection
{
    public const string Name = "code sandbox";
}
