#!/usr/bin/env bash
# Training throughput, CptLab against PyTorch eager, side by side in one run on the same configuration
# (model, batch, sequence length, thread count, precision). Prints tokens/s, MFU and the ratio
# CptLab / PyTorch per row, and appends a dated section to bench/CptLab.Train.Bench/RESULTS.md (indexed from bench/RESULTS.md).
# Usage: bench/train-bench.sh [flavors…]   (default: cpu-2m cpu-7m cpu-20m)
# Installs Debian's python3-torch and libopenblas0-pthread (without it PyTorch's fp32 uses reference BLAS).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
flavors=("${@:-cpu-2m cpu-7m cpu-20m}")
flavors=(${flavors[*]})
threads=${THREADS:-$(nproc)}
batch=${BATCH:-8}
seq=${SEQ:-256}
steps=${STEPS:-10}

if ! /usr/bin/python3 -c "import torch" 2>/dev/null || ! dpkg -s libopenblas0-pthread >/dev/null 2>&1; then
  echo "installing python3-torch and libopenblas0-pthread (Debian)…"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-torch libopenblas0-pthread >/dev/null
fi
dotnet build bench/CptLab.Train.Bench -c Release --nologo -v quiet >/dev/null
dotnet build src/CptLab.Cli -c Release --nologo -v quiet >/dev/null
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

rows=()
printf '%-8s %-9s %12s %7s %12s %7s %7s\n' flavor dtype "cptlab tok/s" MFU "torch tok/s" MFU ratio
for f in "${flavors[@]}"; do
  dotnet src/CptLab.Cli/bin/Release/net10.0/cptlab.dll model init --flavor "$f" --out "$tmp/$f" >/dev/null
  for d in float32 bfloat16; do
    ours=$(dotnet bench/CptLab.Train.Bench/bin/Release/net10.0/CptLab.Train.Bench.dll --flavor "$f" --dtype "$d" --batch "$batch" --seq "$seq" --steps "$steps" --threads "$threads")
    theirs=$(/usr/bin/python3 bench/train_torch.py --config "$tmp/$f/config.json" --dtype "$d" --batch "$batch" --seq "$seq" --steps "$steps" --threads "$threads")
    row=$(/usr/bin/python3 - "$ours" "$theirs" "$f" "$d" <<'PY'
import json, sys
o, t, f, d = json.loads(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3], sys.argv[4]
print(f"| {f} ({o['parameters']/1e6:.1f}M) | {d} | {o['tokens_per_s']:,.0f} | {o['mfu']:.1%} | {t['tokens_per_s']:,.0f} | {t['mfu']:.1%} | {o['tokens_per_s']/t['tokens_per_s']:.2f} | {o['peak_gflops']:.0f} / {t['peak_gflops']:.0f} |")
PY
)
    echo "$row"
    rows+=("$row")
  done
done

{
  echo
  echo "## Training throughput: CptLab vs PyTorch eager ($(date -u '+%Y-%m-%d %H:%M UTC'))"
  echo
  echo "Command: \`bench/train-bench.sh ${flavors[*]}\` — batch $batch × $seq tokens, $threads threads, median of $steps steps after 3 warm-up steps,"
  echo "random tokens, AdamW, grad clipping. PyTorch: Debian python3-torch $(/usr/bin/python3 -c 'import torch; print(torch.__version__)'), eager, bf16 by autocast over fp32 weights."
  echo "CptLab bf16: bf16 model copy for forward/backward, fp32 master weights, gradients and AdamW state. MFU = tokens/s × training FLOPs/token"
  echo "(6·N_matmul + 12·L·heads·head_dim·T) / peak matmul FLOP/s measured in the same process (1024³ matmul, same dtype and threads)."
  echo
  echo "| model | dtype | CptLab tok/s | CptLab MFU | PyTorch tok/s | PyTorch MFU | ratio CptLab/PyTorch | peak GFLOP/s CptLab / PyTorch |"
  echo "|---|---|---|---|---|---|---|---|"
  printf '%s\n' "${rows[@]}"
} >> bench/CptLab.Train.Bench/RESULTS.md
echo "appended to bench/CptLab.Train.Bench/RESULTS.md"
