#!/usr/bin/env bash
# Peak resident memory of loading a sharded checkpoint, against its size on disk (issue 11: at most 1.15×).
# A ~1.3 GB random Llama (float32, shards of 300 MB) is written with `cptlab model init`, then loaded by
# `cptlab generate` (one new token) under /usr/bin/time; the same for a tiny model gives the process's own
# baseline (.NET + LibTorch), which is subtracted. Also: the same weights stored in bf16, loaded into float32.
# Usage: bench/load-memory.sh [WORKDIR]   (needs a built CLI: dotnet build CptLab.slnx -c Release)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-$(mktemp -d)}
cli="dotnet $root/src/CptLab.Cli/bin/Release/net10.0/cptlab.dll"
mkdir -p "$work"
cat > "$work/big.json" <<'JSON'
{"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 32000, "hidden_size": 1024, "intermediate_size": 4096,
 "num_hidden_layers": 16, "num_attention_heads": 16, "num_key_value_heads": 16, "max_position_embeddings": 2048,
 "rms_norm_eps": 1e-5, "rope_theta": 500000.0, "tie_word_embeddings": false, "torch_dtype": "float32"}
JSON
[ -d "$work/big-f32" ] || $cli model init --config "$work/big.json" --out "$work/big-f32" --max-shard-size 300MB >/dev/null
[ -d "$work/big-bf16" ] || $cli model init --config "$work/big.json" --out "$work/big-bf16" --dtype bfloat16 --max-shard-size 300MB >/dev/null
[ -d "$work/tiny" ] || $cli model init --flavor debug --out "$work/tiny" >/dev/null
peak() { # model dir → peak RSS in KiB of loading it and generating one token in float32
  /usr/bin/time -f %M -o "$work/rss" $cli generate --model "$1" --prompt-ids 1,2,3 --max-new-tokens 1 --dtype float32 --threads 1 >/dev/null
  cat "$work/rss"
}
bytes() { du -cb "$1"/*.safetensors | tail -1 | cut -f1; }
base=$(peak "$work/tiny")
echo "$(date -u) | $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs) | load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "baseline (debug model): peak RSS $((base / 1024)) MiB"
for m in big-f32 big-bf16; do
  p=$(peak "$work/$m"); size=$(bytes "$work/$m"); shards=$(ls "$work/$m"/model-*.safetensors | wc -l)
  f32=$(( $(bytes "$work/big-f32") ))
  awk -v p="$p" -v b="$base" -v s="$size" -v f="$f32" -v m="$m" -v n="$shards" 'BEGIN {
    d = (p - b) * 1024; printf "%s: %d shards, %.0f MB on disk, peak RSS above baseline %.0f MB = %.3f x its size on disk, %.3f x the float32 model it loads into\n", m, n, s/1e6, d/1e6, d/s, d/f }'
done
