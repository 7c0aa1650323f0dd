#!/usr/bin/env bash
# SFT throughput, side by side in one run: packed rows vs padded batches on the same GSM8K conversations (trained tokens/s),
# and SFT against plain next-token training of the same model at the same batch geometry (bench/CptLab.Train.Bench, the
# trainer's step on full rows). Prints the ratios and appends a dated section to bench/RESULTS.md.
# Usage: bench/sft-bench.sh [flavor]   (default cpu-2m; STEPS, THREADS, DTYPE override)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
flavor=${1:-cpu-2m}
steps=${STEPS:-30}
threads=${THREADS:-$(nproc)}
dtype=${DTYPE:-float32}
gsm8k=${GSM8K:-../shared/data/gsm8k/train.jsonl}
dotnet build src/CptLab.Cli -c Release --nologo -v quiet >/dev/null
dotnet build bench/CptLab.Train.Bench -c Release --nologo -v quiet >/dev/null
cptlab="dotnet src/CptLab.Cli/bin/Release/net10.0/cptlab.dll"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

$cptlab data post-train-sets --out "$tmp/sets" --gsm8k "$gsm8k" --no-translation >/dev/null
/usr/bin/python3 - "$gsm8k" "$tmp/text.jsonl" <<'PY'
import json, sys
with open(sys.argv[1]) as f, open(sys.argv[2], "w") as out:
    for line in f:
        r = json.loads(line); out.write(json.dumps({"text": r["question"] + "\n" + r["answer"]}) + "\n")
PY
$cptlab data train-tokenizer --source gsm8k=en:"$tmp/text.jsonl" --vocab-size 8192 --out "$tmp/tokenizer.json" >/dev/null
$cptlab model init --flavor "$flavor" --tokenizer "$tmp/tokenizer.json" --out "$tmp/base" >/dev/null

run_sft() { # packing → "tokens/s trained/s efficiency"
  cat > "$tmp/sft-$1.yaml" <<YAML
model: {init_from: $tmp/base, dtype: $dtype}
data: {seq_len: 256}
sft: {train: $tmp/sets/gsm8k_sft.jsonl, packing: $1, epochs: 0}
optimizer: {lr: 1e-4}
batch: {micro_batch_size: 8, global_batch_tokens: 2048}
budget_tokens: $((steps * 2048))
eval: {every_steps: 100000}
checkpoint: {every_steps: 100000}
threads: $threads
measure_peak_flops: false
YAML
  $cptlab sft --config "$tmp/sft-$1.yaml" --out "$tmp/run-$1" >/dev/null
  /usr/bin/python3 - "$tmp/run-$1" <<'PY'
import json, sys, statistics
rows = [json.loads(l) for l in open(sys.argv[1] + "/metrics.jsonl") if '"loss"' in l]
rows = rows[3:]  # warm-up
prev = None; tps, trained = [], []
for r in rows:
    tps.append(r["tokens_per_s"])
    # real tokens of the step = tokens_per_s × seconds; trained tokens/s = tokens_per_s × trained / real
    trained.append(r["tokens_per_s"] * r["trained_tokens"] / (r["packing_efficiency"] * 2048))
s = json.load(open(sys.argv[1] + "/data_summary.json"))
print(f"{statistics.median(tps):.0f} {statistics.median(trained):.0f} {s['packing_efficiency']:.3f}")
PY
}
read -r packed_tps packed_trained packed_eff < <(run_sft true)
read -r padded_tps padded_trained padded_eff < <(run_sft false)
cpt=$(dotnet bench/CptLab.Train.Bench/bin/Release/net10.0/CptLab.Train.Bench.dll --flavor "$flavor" --dtype "$dtype" --batch 8 --seq 256 --steps 10 --threads "$threads" | /usr/bin/python3 -c 'import json,sys; print(round(json.load(sys.stdin)["tokens_per_s"]))')
cpu=$(grep -m1 "model name" /proc/cpuinfo | cut -d: -f2 | xargs)
ext=$(grep -o -w 'avx512f\|amx_bf16\|avx2' /proc/cpuinfo | sort -u | xargs)
load=$(cut -d' ' -f1-3 /proc/loadavg)
table=$(cat <<MD

## SFT throughput: packed vs padded, and SFT vs next-token training ($(date -u '+%Y-%m-%d %H:%M UTC'))

Command: \`bench/sft-bench.sh $flavor\` — $flavor, $dtype, $threads threads, rows of 256 tokens, 8 rows per step, median of $((steps - 3)) steps
after 3 warm-up steps, on the GSM8K SFT set (\`cptlab data post-train-sets\`, own 8k BPE tokenizer, Llama-3 chat template).
CPU: $cpu ($ext); load average before the run: $load.

| run | tokens/s (attended) | trained tokens/s | packing efficiency (tokens ÷ capacity) |
|---|---|---|---|
| SFT, packed (block-diagonal mask) | $packed_tps | $packed_trained | $packed_eff |
| SFT, padded (one example per row) | $padded_tps | $padded_trained | $padded_eff |
| next-token training, full rows (CptLab.Train.Bench) | $cpt | $cpt | 1 |

Ratios: packed / padded trained tokens/s = $(python3 -c "print(f'{$packed_trained/$padded_trained:.2f}')"); packed SFT / next-token tokens/s = $(python3 -c "print(f'{$packed_tps/$cpt:.2f}')").
MD
)
echo "$table"
echo "$table" >> bench/RESULTS.md
