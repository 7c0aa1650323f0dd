using System.Globalization;
using System.Text;
using CptLab.Core;
using CptLab.Data.Mixing;
using CptLab.Model;
using CptLab.Model.Parallelism;
using CptLab.Training;

namespace CptLab.Sweep.ScaleOut;

/// <summary>One file of the plan folder.</summary>
public sealed record LauncherFile(string Name, string Content, bool Executable);

/// <summary>What the launchers are written from: the mapped arguments and what they were mapped from.</summary>
public sealed record LauncherInputs(
    string Target,
    LlamaConfig Model,
    TrainConfig Config,
    BlendManifest Blend,
    MegatronArguments Arguments,
    ParallelismPlan? Parallelism,
    IReadOnlyList<string> Assumptions,
    Laws.Interval? LrInterval = null);

/// <summary>
/// The Megatron-LM side of a plan folder: four steps a cluster user runs in order, each a script that takes
/// <c>--dry-run</c> (print the resolved commands, run nothing).
/// <list type="number">
/// <item><c>convert_in.sh</c>: the Hugging Face base → a Megatron checkpoint, with Megatron-Bridge's supported converter
/// (<c>scripts/conversion/convert.sh import</c>; Megatron-LM's own docs/llama_mistral.md points there too).</item>
/// <item><c>train.sh</c> (torchrun, one node or several) or <c>train.sbatch</c> (Slurm): <c>pretrain_gpt.py</c> with the
/// arguments of <c>megatron_args.sh</c>, which <see cref="MegatronMapping"/> generated from train.json. Restarting the same
/// command resumes from the run's latest checkpoint.</item>
/// <item><c>convert_out.sh</c>: the latest checkpoint → a Hugging Face folder, by Megatron-Bridge's best-effort path for a
/// Megatron-LM checkpoint (docs/megatron-lm-to-megatron-bridge.md: write <c>run_config.yaml</c> with
/// <c>make_run_config.py</c>, then <c>convert.sh export</c>).</item>
/// </list>
/// Every path is a variable of <c>megatron_env.sh</c>, set on the cluster: nothing of the planning machine is written.
/// </summary>
public static class MegatronLauncher
{
    public const string EnvFile = "megatron_env.sh";
    public const string ArgsFile = "megatron_args.sh";
    public const string ConvertInFile = "convert_in.sh";
    public const string TrainFile = "train.sh";
    public const string SbatchFile = "train.sbatch";
    public const string ConvertOutFile = "convert_out.sh";
    public const string RunConfigFile = "make_run_config.py";
    public const string ReadmeFile = "README.md";

    public static IReadOnlyList<LauncherFile> Files(LauncherInputs x) =>
    [
        new(EnvFile, Env(x), false),
        new(ArgsFile, Args(x), false),
        new(ConvertInFile, ConvertIn(), true),
        new(TrainFile, Train(), true),
        new(SbatchFile, Sbatch(x), true),
        new(ConvertOutFile, ConvertOut(x), true),
        new(RunConfigFile, RunConfig(), false),
        new(ReadmeFile, Readme(x), false),
    ];

    /// <summary>Writes every file atomically into <paramref name="dir"/>; returns their paths.</summary>
    public static IReadOnlyList<string> Write(string dir, LauncherInputs x)
    {
        var paths = new List<string>();
        foreach (var f in Files(x))
        {
            var path = Path.Combine(dir, f.Name);
            AtomicFile.WriteAllText(path, f.Content);
            if (f.Executable && !OperatingSystem.IsWindows())
                File.SetUnixFileMode(path, File.GetUnixFileMode(path) | UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute);
            paths.Add(path);
        }
        return paths;
    }

    static string I(long v) => v.ToString(CultureInfo.InvariantCulture);

    static string Header(string what) =>
        $"#!/usr/bin/env bash\n# {what}\n# Written by `cptlab sweep plan`; {MegatronVersions.Line}.\n";

    /// <summary>The GPUs the parallel layout was planned for (0: no layout, any world size).</summary>
    static int PlanGpus(LauncherInputs x) => x.Parallelism?.Cluster.Gpus ?? 0;

    static int GpusPerNode(LauncherInputs x) => x.Parallelism is { } p ? Math.Min(p.Cluster.GpusPerNode, p.Cluster.Gpus) : 8;

    static int Nodes(LauncherInputs x) => x.Parallelism is { } p ? Math.Max(1, (p.Cluster.Gpus + p.Cluster.GpusPerNode - 1) / p.Cluster.GpusPerNode) : 1;

    static string Env(LauncherInputs x)
    {
        var sb = new StringBuilder(Header("Where things are on the cluster; sourced by every script of this plan. Set any variable in the environment first to override it."));
        sb.Append($"""
            PLAN_DIR="${"{"}PLAN_DIR:-$(cd "$(dirname "${"{"}BASH_SOURCE[0]{"}"}")" && pwd){"}"}"
            export MEGATRON_LM="${"{"}MEGATRON_LM:-{"}"}"          # a Megatron-LM checkout ({MegatronVersions.MegatronLmCommit[..12]} or later), its Python environment active
            export MEGATRON_BRIDGE="${"{"}MEGATRON_BRIDGE:-{"}"}"  # a Megatron-Bridge checkout ({MegatronVersions.MegatronBridgeCommit[..12]}), for convert_in.sh and convert_out.sh
            export HF_BASE="${"{"}HF_BASE:-{"}"}"                  # the Hugging Face base checkpoint of {x.Target} (config.json, safetensors, tokenizer)
            export DATA_DIR="${"{"}DATA_DIR:-{"}"}"                # the folder `cptlab data prepare` wrote (manifest.json and the .bin/.idx shards), copied to the cluster
            export WORK_DIR="${"{"}WORK_DIR:-$PLAN_DIR/work{"}"}"   # checkpoints, TensorBoard logs, Megatron-LM's data cache
            export MEGATRON_BASE="${"{"}MEGATRON_BASE:-$WORK_DIR/base_megatron{"}"}"  # convert_in.sh writes the converted base here
            export CKPT_DIR="${"{"}CKPT_DIR:-$WORK_DIR/checkpoints{"}"}"            # the run's own checkpoints (--load and --save)
            export HF_OUT="${"{"}HF_OUT:-$WORK_DIR/hf_final{"}"}"                   # convert_out.sh writes the trained model here, as a Hugging Face folder
            export TOKENIZER_MODEL="${"{"}TOKENIZER_MODEL:-$HF_BASE{"}"}"           # the target's tokenizer, which the shards were checked against when planning
            export GPUS_PER_NODE="${"{"}GPUS_PER_NODE:-{GpusPerNode(x)}{"}"}"
            export NNODES="${"{"}NNODES:-{Nodes(x)}{"}"}"
            export MASTER_PORT="${"{"}MASTER_PORT:-29500{"}"}"
            # The parallel layout in megatron_args.sh was planned for this many GPUs (0: no layout was planned, any world size).
            export PLAN_GPUS={PlanGpus(x)}
            # Tensor and context parallelism overlap communication with compute only when kernels are queued in order:
            # Megatron-LM needs one hardware queue on GPUs before Blackwell (validate_args in megatron/training/arguments.py).
            export CUDA_DEVICE_MAX_CONNECTIONS="${"{"}CUDA_DEVICE_MAX_CONNECTIONS:-1{"}"}"

            # cptlab_require VAR...: stop, naming every variable that is not set.
            cptlab_require() {"{"}
              local missing=() v
              for v in "$@"; do [ -n "${"{"}!v:-{"}"}" ] || missing+=("$v"); done
              if [ "${"{"}#missing[@]{"}"}" -gt 0 ]; then
                echo "error: set ${"{"}missing[*]{"}"} (see $PLAN_DIR/README.md)" >&2
                exit 2
              fi
            {"}"}

            # cptlab_dry_run "$@": true when the first argument is --dry-run.
            cptlab_dry_run() {"{"} [ "${"{"}1:-{"}"}" = "--dry-run" ]; {"}"}

            # cptlab_print CMD...: the command as bash would run it, one word per argument.
            cptlab_print() {"{"} printf '%q ' "$@"; printf '\n'; {"}"}

            """);
        return sb.ToString();
    }

    static string Args(LauncherInputs x)
    {
        var sb = new StringBuilder(Header($"Megatron-LM arguments of the full-size run of {x.Target}, generated from train.json by CptLab's mapping table (docs/scale-out.md)."));
        sb.Append("# Sourced by train.sh; the values with $VARS are expanded from megatron_env.sh on the cluster.\n");
        if (x.Arguments.NotRepresentable.Count > 0)
        {
            sb.Append("#\n# train.json keys not representable in Megatron-LM:\n");
            foreach (var (key, reason) in x.Arguments.NotRepresentable) sb.Append("#   ").Append(key).Append(": ").Append(OneLine(reason)).Append('\n');
        }
        if (x.Arguments.Deviations.Count > 0)
        {
            sb.Append("#\n# where this run differs from the proxies:\n");
            foreach (var d in x.Arguments.Deviations) sb.Append("#   - ").Append(OneLine(d)).Append('\n');
        }
        sb.Append("MEGATRON_ARGS=(\n");
        foreach (var a in x.Arguments.Args) sb.Append("  ").Append(a.Shell).Append('\n');
        sb.Append(")\n\n# Every shard the arguments name (prefixes: .bin and .idx each).\nSHARD_PREFIXES=(\n");
        foreach (var p in x.Arguments.ShardPrefixes.Distinct()) sb.Append("  ").Append(ShellWord.Var("$DATA_DIR/" + p.Replace('\\', '/')).Quoted).Append('\n');
        sb.Append(")\n");
        return sb.ToString();
    }

    static string ConvertIn() => Header("Step 1: the Hugging Face base → a Megatron checkpoint in $MEGATRON_BASE (Megatron-Bridge's import, one CPU process).") + """
        # Usage: ./convert_in.sh [--dry-run] [more convert.sh import options, e.g. --device gpu --tp 8]
        set -euo pipefail
        source "$(dirname "${BASH_SOURCE[0]}")/megatron_env.sh"
        dry=false; if cptlab_dry_run "$@"; then dry=true; shift; fi
        cptlab_require MEGATRON_BRIDGE HF_BASE
        cmd=("$MEGATRON_BRIDGE/scripts/conversion/convert.sh" import --executor local --device cpu
             --hf-model "$HF_BASE" --megatron-path "$MEGATRON_BASE" --torch-dtype bfloat16 "$@")
        if $dry; then cptlab_print "${cmd[@]}"; exit 0; fi
        if [ -f "$MEGATRON_BASE/latest_checkpointed_iteration.txt" ]; then
          echo "$MEGATRON_BASE already holds a converted checkpoint; delete it to convert again"
          exit 0
        fi
        [ -f "$HF_BASE/config.json" ] || { echo "error: $HF_BASE/config.json not found: HF_BASE must be a Hugging Face checkpoint folder" >&2; exit 2; }
        "${cmd[@]}"
        [ -f "$MEGATRON_BASE/latest_checkpointed_iteration.txt" ] || { echo "error: the import finished without $MEGATRON_BASE/latest_checkpointed_iteration.txt; see its log above" >&2; exit 1; }
        echo "converted $HF_BASE → $MEGATRON_BASE; next: ./train.sh (one node) or sbatch train.sbatch"

        """;

    static string Train() => Header("Step 2: continual pre-training with Megatron-LM's pretrain_gpt.py under torchrun, on this node (NNODES=1) or on each of NNODES nodes (MASTER_ADDR set; train.sbatch does it).") + """
        # Usage: ./train.sh [--dry-run] [more Megatron-LM flags, which win over megatron_args.sh]
        # Run again after a failure or a time limit: it resumes from the latest checkpoint in $CKPT_DIR.
        set -euo pipefail
        source "$(dirname "${BASH_SOURCE[0]}")/megatron_env.sh"
        source "$PLAN_DIR/megatron_args.sh"
        dry=false; if cptlab_dry_run "$@"; then dry=true; shift; fi
        cptlab_require MEGATRON_LM DATA_DIR HF_BASE
        world=$((NNODES * GPUS_PER_NODE))
        if [ "$PLAN_GPUS" -gt 0 ] && [ "$world" -ne "$PLAN_GPUS" ]; then
          echo "error: NNODES × GPUS_PER_NODE = $world GPUs, but the parallel layout was planned for $PLAN_GPUS; plan again with \`cptlab sweep plan --gpus $world\`" >&2
          exit 2
        fi
        if [ "$NNODES" -gt 1 ]; then
          cptlab_require MASTER_ADDR
          launch=(--nnodes "$NNODES" --nproc-per-node "$GPUS_PER_NODE" --rdzv-backend c10d --rdzv-endpoint "$MASTER_ADDR:$MASTER_PORT" --rdzv-id "${SLURM_JOB_ID:-cptlab}")
        else
          launch=(--standalone --nnodes 1 --nproc-per-node "$GPUS_PER_NODE")
        fi
        cmd=(torchrun "${launch[@]}" "$MEGATRON_LM/pretrain_gpt.py" "${MEGATRON_ARGS[@]}" "$@")
        missing=()
        for p in "${SHARD_PREFIXES[@]}"; do
          for ext in bin idx; do [ -f "$p.$ext" ] || missing+=("$p.$ext"); done
        done
        if $dry; then
          [ "${#missing[@]}" -eq 0 ] || echo "warning: ${#missing[@]} shard files missing under DATA_DIR, e.g. ${missing[0]}" >&2
          cptlab_print "${cmd[@]}"
          exit 0
        fi
        [ "${#missing[@]}" -eq 0 ] || { echo "error: ${#missing[@]} shard files missing under DATA_DIR=$DATA_DIR, e.g. ${missing[0]}: copy the prepared data folder there" >&2; exit 2; }
        if [ ! -f "$CKPT_DIR/latest_checkpointed_iteration.txt" ] && [ ! -f "$MEGATRON_BASE/latest_checkpointed_iteration.txt" ]; then
          echo "error: no converted base in $MEGATRON_BASE and no checkpoint of this run in $CKPT_DIR: run ./convert_in.sh first" >&2
          exit 2
        fi
        mkdir -p "$CKPT_DIR" "$WORK_DIR/data_cache" "$WORK_DIR/tensorboard"
        exec "${cmd[@]}"

        """;

    static string Sbatch(LauncherInputs x)
    {
        var sb = new StringBuilder();
        sb.Append("#!/usr/bin/env bash\n");
        sb.Append("#SBATCH --job-name=cptlab-cpt\n");
        sb.Append("#SBATCH --nodes=").Append(I(Nodes(x))).Append('\n');
        sb.Append("#SBATCH --ntasks-per-node=1\n");
        sb.Append("#SBATCH --gpus-per-node=").Append(I(GpusPerNode(x))).Append('\n');
        sb.Append("#SBATCH --exclusive\n");
        sb.Append("#SBATCH --output=%x-%j.out\n");
        sb.Append("# Step 2 on Slurm: one torchrun per node (train.sh), the first node of the job as rendezvous.\n");
        sb.Append($"# Written by `cptlab sweep plan`; {MegatronVersions.Line}.\n");
        if (x.Parallelism is { } p)
            sb.Append("# Estimated wall time ").Append(Duration(p.WallTime)).Append(" at MFU ").Append(p.Cluster.Mfu.ToString("P0", CultureInfo.InvariantCulture))
              .Append(": add #SBATCH --time for your partition; a job that hits it is resubmitted as it is and resumes from its last checkpoint.\n");
        sb.Append("""
            # Usage: cd PLAN_DIR && sbatch train.sbatch [more Megatron-LM flags]    (sbatch --test-only checks the request)
            set -euo pipefail
            export PLAN_DIR="${PLAN_DIR:-$SLURM_SUBMIT_DIR}"
            source "$PLAN_DIR/megatron_env.sh"
            export NNODES="$SLURM_JOB_NUM_NODES"
            MASTER_ADDR="$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)"
            export MASTER_ADDR
            srun --kill-on-bad-exit=1 --ntasks-per-node=1 "$PLAN_DIR/train.sh" "$@"

            """);
        return sb.ToString();
    }

    static string ConvertOut(LauncherInputs x)
    {
        var dtype = x.Config.SaveDtype is "auto" ? "bfloat16" : x.Config.SaveDtype;
        return Header("Step 3: the run's latest checkpoint → a Hugging Face folder in $HF_OUT, which CptLab evaluates, fine-tunes and serves like any other.") + $$"""
            # Usage: ./convert_out.sh [--dry-run] [more convert.sh export options]
            # Megatron-Bridge exports a Megatron-LM checkpoint by its documented best-effort path
            # (docs/megatron-lm-to-megatron-bridge.md): make_run_config.py writes the run_config.yaml a Bridge checkpoint would
            # have, from the checkpoint's own arguments over the base's Hugging Face config; then convert.sh export.
            set -euo pipefail
            source "$(dirname "${BASH_SOURCE[0]}")/megatron_env.sh"
            dry=false; if cptlab_dry_run "$@"; then dry=true; shift; fi
            cptlab_require MEGATRON_BRIDGE HF_BASE
            if [ -f "$CKPT_DIR/latest_checkpointed_iteration.txt" ]; then
              iteration="$(cat "$CKPT_DIR/latest_checkpointed_iteration.txt")"
            elif $dry; then
              iteration=0
            else
              echo "error: no checkpoint in $CKPT_DIR (latest_checkpointed_iteration.txt): run ./train.sh first" >&2
              exit 2
            fi
            iter_dir="$CKPT_DIR/$(printf 'iter_%07d' "$iteration")"
            config_cmd=(python "$PLAN_DIR/make_run_config.py" "$iter_dir" "$HF_BASE")
            export_cmd=("$MEGATRON_BRIDGE/scripts/conversion/convert.sh" export --executor local --device cpu
                        --hf-model "$HF_BASE" --megatron-path "$iter_dir" --hf-path "$HF_OUT" --torch-dtype {{dtype}} "$@")
            if $dry; then cptlab_print "${config_cmd[@]}"; cptlab_print "${export_cmd[@]}"; exit 0; fi
            [ -f "$iter_dir/run_config.yaml" ] || "${config_cmd[@]}"
            "${export_cmd[@]}"
            echo "wrote $HF_OUT; next, e.g.: cptlab eval --model $HF_OUT --tasks cmmlu,gsm8k; cptlab serve --model $HF_OUT"

            """;
    }

    /// <summary>
    /// Megatron-Bridge's export needs the model provider a Bridge checkpoint records in run_config.yaml; a Megatron-LM
    /// checkpoint has its arguments in common.pt instead. This builds the Llama provider from the base's Hugging Face config,
    /// overlays the TransformerConfig stored with the checkpoint, and writes it as Bridge's export reads it.
    /// </summary>
    static string RunConfig() => """
        # Writes run_config.yaml into a Megatron-LM checkpoint iteration folder, so that Megatron-Bridge's
        # `convert.sh export` can read it (Bridge's docs/megatron-lm-to-megatron-bridge.md, "Best-effort export").
        # Usage: python make_run_config.py ITER_DIR HF_BASE      (run by convert_out.sh, in Megatron-Bridge's environment)
        import dataclasses
        import pathlib
        import sys

        from megatron.bridge import AutoBridge
        from megatron.bridge.training.config import ConfigContainer
        from megatron.bridge.training.model_load_save import load_model_config
        from megatron.bridge.utils.yaml_utils import dump_dataclass_to_yaml
        from transformers import AutoConfig


        def main(iter_dir: str, hf_base: str) -> None:
            folder = pathlib.Path(iter_dir)
            target = folder / "run_config.yaml"
            if not (folder / "common.pt").is_file():
                sys.exit(f"error: {folder} has no common.pt: give a Megatron-LM checkpoint iteration folder (iter_NNNNNNN)")
            if target.exists():
                sys.exit(f"error: {target} exists already; remove it to write it again")
            stored, megatron_args = load_model_config(str(folder))
            if megatron_args is None:
                sys.exit(f"error: {folder} holds no Megatron-LM arguments in common.pt")
            provider = AutoBridge.from_hf_config(AutoConfig.from_pretrained(hf_base)).to_megatron_provider(load_weights=False)
            # The checkpoint's own architecture wins over the base's wherever both name a field.
            for field in dataclasses.fields(stored):
                if hasattr(provider, field.name):
                    setattr(provider, field.name, getattr(stored, field.name))
            if getattr(megatron_args, "seq_length", None) is not None and hasattr(provider, "seq_length"):
                provider.seq_length = megatron_args.seq_length
            if hasattr(provider, "hf_model_id"):
                provider.hf_model_id = hf_base
            provider.finalize()
            dump_dataclass_to_yaml({"model": ConfigContainer._convert_value_to_dict(provider)}, str(target))
            print(f"wrote {target}")


        if __name__ == "__main__":
            if len(sys.argv) != 3:
                sys.exit("usage: python make_run_config.py ITER_DIR HF_BASE")
            main(sys.argv[1], sys.argv[2])

        """;

    static string Readme(LauncherInputs x)
    {
        var ci = CultureInfo.InvariantCulture;
        var c = x.Config;
        var sb = new StringBuilder();
        sb.Append($"# Continual pre-training of {x.Target} on Megatron-LM\n\n");
        sb.Append($"Written by `cptlab sweep plan` from the proxy sweep's law; {MegatronVersions.Line}. ");
        sb.Append("The run is `train.json` (what `cptlab train` would run); the Megatron-LM arguments in `megatron_args.sh` were generated from it by one mapping table, so the two cannot drift.\n\n");
        sb.Append("## What to run, in order\n\n");
        sb.Append("0. On the cluster: a Megatron-LM checkout and a Megatron-Bridge checkout with their Python environments, the Hugging Face base checkpoint, and the prepared data folder (`manifest.json` and the shards listed under *Data*) copied over. Set the variables below (or edit `megatron_env.sh`).\n");
        sb.Append("1. `./convert_in.sh` — the Hugging Face base → a Megatron checkpoint in `$MEGATRON_BASE` (Megatron-Bridge `scripts/conversion/convert.sh import`, one CPU process; add `--device gpu --tp N` to convert on GPUs).\n");
        sb.Append(string.Create(ci, $"2. `./train.sh` on one node, or `sbatch train.sbatch` for {Nodes(x)} node(s) of {GpusPerNode(x)} GPUs. The first start continues the converted base (`--pretrained-checkpoint`: weights only, iteration 0, LR re-warmed); a restart with the same command resumes from the latest checkpoint in `$CKPT_DIR` with its optimizer, scheduler and data position.\n"));
        sb.Append("3. `./convert_out.sh` — the latest checkpoint → a Hugging Face folder in `$HF_OUT` (Megatron-Bridge's best-effort export of a Megatron-LM checkpoint: `make_run_config.py`, then `convert.sh export`). Then `cptlab eval --model $HF_OUT`, `cptlab sft`, `cptlab serve --model $HF_OUT` as with any model folder.\n\n");
        sb.Append("Each script takes `--dry-run`: it prints the resolved command and runs nothing. `train.sh --dry-run` also warns about shards missing under `$DATA_DIR`.\n\n");
        sb.Append("## Variables (megatron_env.sh)\n\n| variable | what | default |\n|---|---|---|\n");
        sb.Append("| `MEGATRON_LM` | Megatron-LM checkout | required for train.sh |\n");
        sb.Append("| `MEGATRON_BRIDGE` | Megatron-Bridge checkout | required for convert_in.sh, convert_out.sh |\n");
        sb.Append($"| `HF_BASE` | the {x.Target} Hugging Face folder | required |\n");
        sb.Append("| `DATA_DIR` | the prepared data folder | required for train.sh |\n");
        sb.Append("| `WORK_DIR` | checkpoints, logs, data cache | `PLAN_DIR/work` |\n");
        sb.Append("| `MEGATRON_BASE`, `CKPT_DIR`, `HF_OUT` | converted base, run checkpoints, final Hugging Face folder | under `WORK_DIR` |\n");
        sb.Append("| `TOKENIZER_MODEL` | tokenizer Megatron-LM loads (`HuggingFaceTokenizer`) | `HF_BASE` |\n");
        sb.Append(string.Create(ci, $"| `NNODES`, `GPUS_PER_NODE`, `MASTER_ADDR`, `MASTER_PORT` | torchrun's world (train.sbatch sets NNODES and MASTER_ADDR from the job) | {Nodes(x)}, {GpusPerNode(x)}, —, 29500 |\n"));
        sb.Append("| `CUDA_DEVICE_MAX_CONNECTIONS` | one kernel queue, which Megatron-LM's tensor/context parallel overlap needs before Blackwell | 1 |\n\n");

        sb.Append("## The run\n\n");
        sb.Append(string.Create(ci, $"- {c.TotalSteps:N0} iterations × {c.GlobalBatchTokens / c.SeqLen:N0} sequences × {c.SeqLen:N0} tokens = {c.TotalSteps * c.GlobalBatchTokens:N0} tokens\n"));
        sb.Append(string.Create(ci, $"- LR {c.Lr:0.###e0} → min {c.Lr * c.MinLrRatio:0.###e0}, {c.Schedule} schedule, warm-up {c.WarmupSteps:N0} iterations from {c.WarmupInitLr:0.###e0}\n"));
        if (x.LrInterval is { } li)
            sb.Append(string.Create(ci, $"- LR interval [{li.Lo:0.###e0}, {li.Hi:0.###e0}] (the proxy's LR interval carried through the size rule with α's interval; see *Assumptions*)\n"));
        sb.Append(string.Create(ci, $"- AdamW β1 {c.Beta1}, β2 {c.Beta2}, ε {c.Eps:0.###e0}, weight decay {c.WeightDecay}, gradient clip {c.GradClip}\n"));
        sb.Append(string.Create(ci, $"- ALMR {x.Blend.Almr:0.####} of the training tokens\n\n"));

        sb.Append("## Parallel layout\n\n");
        if (x.Parallelism is { } p) sb.Append("```\n").Append(ParallelismPlanner.Describe(p)).Append("```\n\n");
        else sb.Append("None was planned (no `--gpus`): the arguments carry no tensor or pipeline parallelism, so the model must fit one GPU with data parallelism only. Plan again with `cptlab sweep plan … --gpus N --gpu-memory GiB` for a real cluster.\n\n");

        sb.Append("## Data\n\nMegatron-LM's BlendedDataset draws fixed-length sequences by weight, so each weight is that source's share of the training tokens. Within a language the sources share by their `NAME:WEIGHT` (1 each unless given), as `cptlab data mix` and the proxies did.\n\n");
        sb.Append("| source | group | share of training tokens | train shard (under `$DATA_DIR`) |\n|---|---|---|---|\n");
        foreach (var s in x.Blend.Sources.Where(s => s.Share > 0))
            sb.Append(string.Create(ci, $"| {s.Name} | {s.Group.ToString().ToLowerInvariant()} | {s.Share:0.######} | `{s.TrainPrefix.Replace('\\', '/')}` |\n"));
        sb.Append('\n');

        if (x.Arguments.NotRepresentable.Count > 0 || x.Arguments.Deviations.Count > 0)
        {
            sb.Append("## What Megatron-LM does not carry\n\n");
            foreach (var (key, reason) in x.Arguments.NotRepresentable) sb.Append($"- `{key}`: {OneLine(reason)}\n");
            foreach (var d in x.Arguments.Deviations) sb.Append($"- {OneLine(d)}\n");
            sb.Append('\n');
        }
        sb.Append("## Assumptions\n\n");
        foreach (var a in x.Assumptions) sb.Append("- ").Append(OneLine(a)).Append('\n');
        return sb.ToString();
    }

    static string OneLine(string s) => s.Replace('\n', ' ');

    static string Duration(TimeSpan t) =>
        t.TotalDays >= 1 ? t.TotalDays.ToString("0.0", CultureInfo.InvariantCulture) + " days" : t.TotalHours.ToString("0.0", CultureInfo.InvariantCulture) + " hours";
}
