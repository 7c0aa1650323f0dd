#!/usr/bin/env bash
# Precision and threads on this machine, side by side in one run (issue: speed that adapts to the machine):
#  1. training tokens/s in float32 and in bfloat16 for the demo's four model shapes and cpu-20m, and what
#     `dtype: auto` chose and reached there: auto must be within 10% of the faster of the two;
#  2. 1 vs 2 threads, idle and with both cores busy (two busy loops at normal priority, then at nice 10),
#     and the trainer's own choice (threads 0) in each case;
#  3. two trainers side by side (what a sweep with two workers does): 2 threads each (oversubscribed) vs 1 each,
#     with CptLab's OpenMP default (OMP_WAIT_POLICY=PASSIVE) and with libgomp's own spinning (GOMP_SPINCOUNT=300000);
#  4. the quick demo's stage times (stages.json), unless QUICK_DEMO=0.
# Prints the tables and appends them, with the CPU, its flags and the load average, to bench/CptLab.Train.Bench/RESULTS.md.
# Usage: bench/precision-bench.sh      (about 12 minutes on a 2-core AVX2 machine)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
dotnet build bench/CptLab.Train.Bench -c Release --nologo -v quiet >/dev/null
dotnet build src/CptLab.Cli -c Release --nologo -v quiet >/dev/null
bench=(dotnet bench/CptLab.Train.Bench/bin/Release/net10.0/CptLab.Train.Bench.dll)
cores=$(nproc)
cpu=$(grep -m1 -E '^model name|^Hardware|^CPU part' /proc/cpuinfo | cut -d: -f2 | xargs)
flags=$( (grep -m1 -E '^flags|^Features' /proc/cpuinfo | cut -d: -f2 | tr ' ' '\n' | grep -x -E 'avx2|avx512f|avx512_bf16|amx_bf16|amx_tile|bf16|asimd' || true) | sort -u | xargs)
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
out=$(mktemp -d)
busy_pids=()
cleanup() { for p in "${busy_pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$out"; }
trap cleanup EXIT

busy() { # n [nice]: start n busy loops
  for _ in $(seq "$1"); do nice -n "${2:-0}" sh -c 'while :; do :; done' & busy_pids+=($!); done
  sleep 1
}
unbusy() { for p in "${busy_pids[@]}"; do kill "$p" 2>/dev/null || true; done; busy_pids=(); sleep 1; }
field() { python3 -c "import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])" "$1" "$2"; }

echo "CPU: $cpu [$flags], $cores cores; load average at start $load_start"

# ---- 1. precision ----
prec_rows=()
printf '%-22s %10s %10s %10s %9s %10s %9s\n' shape params "fp32 tok/s" "bf16 tok/s" "auto →" "auto tok/s" "auto/best"
# cpu-20m at 2 × 256 tokens a step: emulated bf16 takes minutes a step at 8 × 256.
for shape in "--demo quick-small" "--demo quick-large" "--demo default-small" "--demo default-large" "--flavor cpu-20m --batch 2"; do
  # fp32 and auto three times each, interleaved, the best of each kept: on a shared VM one run of a tiny model
  # was seen 10% off another of the same computation. bf16 once, one warm-up and at least one measured step.
  one() { "${bench[@]}" $shape --dtype "$1" --threads "$cores" --steps 80 --max-seconds 12; }
  r32a=$(one float32); raa=$(one auto); r32b=$(one float32); rab=$(one auto); r32c=$(one float32); rac=$(one auto)
  r16=$("${bench[@]}" $shape --dtype bfloat16 --threads "$cores" --steps 20 --warmup 1 --min-steps 1 --max-seconds 20)
  row=$(python3 - "$r32a" "$r32b" "$r32c" "$r16" "$raa" "$rab" "$rac" <<'PY'
import json, sys
a1, a2, a3, b, c1, c2, c3 = (json.loads(x) for x in sys.argv[1:])
a = max(a1, a2, a3, key=lambda r: r['tokens_per_s'])
c = max(c1, c2, c3, key=lambda r: r['tokens_per_s'])
best = max(a['tokens_per_s'], b['tokens_per_s'])
print(f"| {a['model']} ({a['parameters']/1e6:.2f}M, {a['batch']}×{a['seq']}) | {a['tokens_per_s']:,.0f} | {b['tokens_per_s']:,.0f} | "
      f"{b['tokens_per_s']/a['tokens_per_s']:.2f} | {c['computed']} | {c['tokens_per_s']:,.0f} | {c['tokens_per_s']/best:.2f} |")
PY
)
  echo "$row"; prec_rows+=("$row")
  why=$(field "$raa" why)
done

# ---- 2. threads under load ----
thread_rows=()
run_t() { "${bench[@]}" --demo default-small --dtype float32 --threads "$1" --steps 60 --max-seconds 15; }
for cond in idle busy nice; do
  case $cond in busy) busy "$cores" 0 ;; nice) busy "$cores" 10 ;; esac
  t1=$(run_t 1); t2=$(run_t 2); t0=$(run_t 0)
  unbusy
  row=$(python3 - "$cond" "$t1" "$t2" "$t0" <<'PY'
import json, sys
cond = {"idle": "idle", "busy": "both cores busy (2 loops, nice 0)", "nice": "both cores busy (2 loops, nice 10)"}[sys.argv[1]]
a, b, c = (json.loads(x) for x in sys.argv[2:])
print(f"| {cond} | {a['tokens_per_s']:,.0f} | {b['tokens_per_s']:,.0f} | {c['threads']} | {c['tokens_per_s']:,.0f} |")
PY
)
  echo "$row"; thread_rows+=("$row")
done

# ---- 3. two trainers side by side ----
pair_rows=()
pair() { # threads env…
  local t=$1; shift
  env "$@" "${bench[@]}" --demo default-small --dtype float32 --threads "$t" --steps 60 --max-seconds 20 > "$out/a" &
  local pa=$!
  env "$@" "${bench[@]}" --demo default-small --dtype float32 --threads "$t" --steps 60 --max-seconds 20 > "$out/b" &
  local pb=$!
  wait "$pa" "$pb"
  python3 - "$(cat "$out/a")" "$(cat "$out/b")" "$t" "$*" <<'PY'
import json, sys
a, b = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(f"| 2 × {sys.argv[3]} thread(s) | {sys.argv[4] or 'CptLab default'} ({a['omp_wait_policy']}) | {a['tokens_per_s']:,.0f} + {b['tokens_per_s']:,.0f} = {a['tokens_per_s'] + b['tokens_per_s']:,.0f} |")
PY
}
for t in 1 2; do
  for e in "CPTLAB_BENCH=1" "GOMP_SPINCOUNT=300000"; do
    row=$(pair "$t" "$e" | sed 's/CPTLAB_BENCH=1/CptLab default/')
    echo "$row"; pair_rows+=("$row")
  done
done

# ---- 4. the quick demo ----
demo_rows=()
if [ "${QUICK_DEMO:-1}" != 0 ]; then
  start=$(date +%s)
  dotnet src/CptLab.Cli/bin/Release/net10.0/cptlab.dll demo --quick --out "$out/demo" > "$out/demo.log" 2>&1
  wall=$(( $(date +%s) - start ))
  while IFS= read -r line; do demo_rows+=("$line"); done < <(python3 - "$out/demo/stages.json" "$wall" <<'PY'
import json, sys
stages = json.load(open(sys.argv[1]))["stages"]
for name, s in stages.items():
    print(f"| {name} | {s['seconds']:.1f} |")
print(f"| **whole demo (wall)** | {float(sys.argv[2]):.0f} |")
PY
)
  printf '%s\n' "${demo_rows[@]}"
fi

load_end=$(cut -d' ' -f1-3 /proc/loadavg)
{
  echo
  echo "## Precision and threads ($(date -u '+%Y-%m-%d %H:%M UTC'))"
  echo
  echo "Command: \`bench/precision-bench.sh\`. CPU: **$cpu** [$flags], $cores cores. Load average $load_start at the start, $load_end at the end."
  echo "Training steps of random tokens (AdamW, clipping), median step after 2 warm-up steps, up to 80 steps or 12 s per run; fp32 and auto"
  echo "ran three times each, interleaved, the best kept; bf16 once (1 warm-up step, at least 1 measured, 20 s); the demo's own"
  echo "batch (16 × 128 default, 16 × 64 quick), cpu-20m at 2 × 256. \`auto\` ran the trainer's own choice ($why)."
  echo
  echo "| model (batch) | fp32 tok/s | bf16 tok/s | bf16/fp32 | auto chose | auto tok/s | auto / faster |"
  echo "|---|---|---|---|---|---|---|"
  printf '%s\n' "${prec_rows[@]}"
  echo
  echo "Threads, demo default small base (fp32, 16 × 128): tokens/s."
  echo
  echo "| machine | 1 thread | 2 threads | threads 0 chose | its tok/s |"
  echo "|---|---|---|---|---|"
  printf '%s\n' "${thread_rows[@]}"
  echo
  echo "Two trainers at once (a sweep's two workers), demo default small base, fp32: tokens/s of each and together."
  echo
  echo "| threads | OpenMP | tok/s |"
  echo "|---|---|---|"
  printf '%s\n' "${pair_rows[@]}"
  if [ ${#demo_rows[@]} -gt 0 ]; then
    echo
    echo "\`cptlab demo --quick\` stage times (s):"
    echo
    echo "| stage | seconds |"
    echo "|---|---|"
    printf '%s\n' "${demo_rows[@]}"
  fi
} >> bench/CptLab.Train.Bench/RESULTS.md
echo "appended to bench/CptLab.Train.Bench/RESULTS.md"
