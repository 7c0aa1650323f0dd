#!/usr/bin/env bash
# Evaluation throughput: the whole CMMLU test set (11,582 questions, 5-shot, 67 subjects) scored in-process by
# `cptlab eval`, against the trainer's throughput on the same model in the same run (bench/CptLab.Train.Bench: forward +
# backward + AdamW on full rows). Prints both, the ratio and the wall time; appends a dated section to bench/RESULTS.md.
# Usage: bench/eval-bench.sh [flavor] [dtype]   (default cpu-20m auto; LIMIT=N scores N questions per subject)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
flavor=${1:-cpu-20m}
dtype=${2:-auto}
threads=${THREADS:-$(nproc)}
data=${DATA:-../shared/data}
dotnet build src/CptLab.Cli -c Release --nologo -v quiet >/dev/null
dotnet build bench/CptLab.Train.Bench -c Release --nologo -v quiet >/dev/null
cptlab="dotnet src/CptLab.Cli/bin/Release/net10.0/cptlab.dll"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# An 8k BPE vocabulary (the flavor's) trained on CMMLU's own Chinese text; the model is freshly initialised: throughput does not depend on what it knows.
/usr/bin/python3 - "$data/cmmlu" "$tmp/text.jsonl" <<'PY'
import csv, glob, json, sys
with open(sys.argv[2], "w") as out:
    for f in sorted(glob.glob(sys.argv[1] + "/*/*.csv")):
        for row in csv.DictReader(open(f, encoding="utf-8")):
            out.write(json.dumps({"text": "\n".join(row[k] for k in ("Question", "A", "B", "C", "D"))}, ensure_ascii=False) + "\n")
PY
$cptlab data train-tokenizer --source cmmlu=zh:"$tmp/text.jsonl" --vocab-size 8192 --out "$tmp/tokenizer.json" >/dev/null
$cptlab model init --flavor "$flavor" --tokenizer "$tmp/tokenizer.json" --out "$tmp/model" >/dev/null
limit=()
[[ -n "${LIMIT:-}" ]] && limit=(--limit "$LIMIT")
load=$(cut -d' ' -f1-3 /proc/loadavg)
start=$(date +%s.%N)
$cptlab eval --model "$tmp/model" --tasks cmmlu --data-dir "$data" --dtype "$dtype" --batch-size 16 "${limit[@]}" --out "$tmp/eval" > "$tmp/eval.log" 2> "$tmp/eval.err"
wall=$(python3 -c "import time; print(f'{time.time() - $start:.0f}')")
chosen=$(grep -m1 "^model " "$tmp/eval.err" | sed -E 's/^model [^:]*: //')
read -r tokens eval_tps < <(grep "^log-likelihoods:" "$tmp/eval.log" | python3 -c 'import re,sys; m=re.search(r"([\d,]+) tokens in .* ([\d,]+) tokens/s", sys.stdin.read()); print(m.group(1).replace(",",""), m.group(2).replace(",",""))')
questions=$(python3 -c "import json; r=json.load(open('$tmp/eval/results.json')); print(sum(u['n'] for t in r['tasks'] for u in t['units']))" 2>/dev/null || echo "?")
train_dtype=$(grep -o '^[a-z0-9]*' <<<"$chosen" | head -1 || true)
[[ "$train_dtype" == bfloat16 || "$train_dtype" == float32 ]] || train_dtype=float32
train_tps=$(dotnet bench/CptLab.Train.Bench/bin/Release/net10.0/CptLab.Train.Bench.dll --flavor "$flavor" --dtype "$train_dtype" --batch 8 --seq 512 --steps 5 --threads "$threads" | python3 -c 'import json,sys; print(round(json.load(sys.stdin)["tokens_per_s"]))')
cpu=$(grep -m1 "model name" /proc/cpuinfo | cut -d: -f2 | xargs)
ext=$(grep -o -w 'avx512f\|amx_bf16\|avx2' /proc/cpuinfo | sort -u | xargs)
table=$(cat <<MD

## Evaluation throughput: CMMLU in-process vs training ($(date -u '+%Y-%m-%d %H:%M UTC'))

Command: \`bench/eval-bench.sh $flavor $dtype\`${LIMIT:+ (LIMIT=$LIMIT)} — $flavor, eval dtype $chosen, $threads threads, batch 16 rows;
CPU: $cpu ($ext); load average before the run: $load.

| | tokens/s | wall |
|---|---|---|
| \`cptlab eval --tasks cmmlu\` ($questions questions, 5-shot, one row per question scoring A–D at once) | $eval_tps ($tokens tokens) | ${wall} s |
| training step on the same model ($train_dtype, 8 × 512, fwd + bwd + AdamW) | $train_tps | |

Ratio evaluation / training tokens/s: $(python3 -c "print(f'{$eval_tps/$train_tps:.2f}')").
MD
)
echo "$table"
echo "$table" >> bench/RESULTS.md
