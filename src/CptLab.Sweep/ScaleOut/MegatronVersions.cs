namespace CptLab.Sweep.ScaleOut;

/// <summary>
/// The Megatron-LM and Megatron-Bridge sources the launcher was written against: every flag name, every validate_args rule
/// and every converter option cited in <see cref="MegatronMapping"/> was read there. Nothing in this repository runs their
/// Python (no PyPI here), so the flags are checked against the source text, not against their parsers.
/// </summary>
public static class MegatronVersions
{
    /// <summary>github.com/NVIDIA/Megatron-LM main, 2026-08-22 (git describe: core_v0.15.0rc7-2333-gd98e8a64dd).</summary>
    public const string MegatronLmCommit = "d98e8a64ddf34856e74b24714e3bedb2f5a39553";
    public const string MegatronLmDescribe = "core_v0.15.0rc7-2333-gd98e8a64dd (main, 2026-08-22)";

    /// <summary>github.com/NVIDIA-NeMo/Megatron-Bridge main, 2026-08-22 (git describe: v0.2.0rc6-2335-g067f987df).</summary>
    public const string MegatronBridgeCommit = "067f987df03b8355b03192d88d70f1709fedf51a";
    public const string MegatronBridgeDescribe = "v0.2.0rc6-2335-g067f987df (main, 2026-08-22)";

    /// <summary>One line for the top of every generated file.</summary>
    public static string Line =>
        $"written against Megatron-LM {MegatronLmCommit[..12]} ({MegatronLmDescribe}) and Megatron-Bridge {MegatronBridgeCommit[..12]} ({MegatronBridgeDescribe})";
}
