#!/usr/bin/env bash
# `cptlab data prepare` on a corpus much larger than the demo's: wall time, MB/s and peak RSS at --threads 1 and
# --threads 2 (the peer), and a byte-for-byte check that both runs wrote the same shards, manifest and rejects.
#
#   bench/prepare-scale.sh [SIZE_MB=2048] [WORK_DIR=/tmp/cptlab-prepare-scale]
#
# The corpus: SIZE_MB of JSONL in 16 files, documents of 200–1,500 words drawn from the Brown corpus's word
# stream (.cache/corpora/brown; unigram sampling keeps English word frequencies, so the tokenizer sees realistic
# text, and every document is unique), with 0.5% exact repeats of an earlier document so that dedup has work.
# Tokenizer: Meta's Llama-3 tokenizer.json (.cache/llama3-tokenizer, scripts/fetch-test-peers.sh).
# Everything generated is deleted at the end (KEEP=1 keeps it).
set -euo pipefail
cd "$(dirname "$0")/.."
size_mb=${1:-2048}
work=${2:-/tmp/cptlab-prepare-scale}
files=16
brown=.cache/corpora/brown/brown.jsonl
tokenizer=.cache/llama3-tokenizer
[ -f "$brown" ] && [ -f "$tokenizer/tokenizer.json" ] || { echo "missing $brown or $tokenizer: run scripts/fetch-test-peers.sh" >&2; exit 1; }
if ! /usr/bin/time -v true >/dev/null 2>&1; then
  echo "installing GNU time (for peak RSS)"; (apt-get install -y time >/dev/null 2>&1 || (apt-get update >/dev/null && apt-get install -y time >/dev/null))
fi
cli=src/CptLab.Cli/bin/Release/net10.0/cptlab.dll
dotnet build src/CptLab.Cli -c Release --nologo -v quiet >/dev/null

rm -rf "$work"; mkdir -p "$work/in"
trap '[ "${KEEP:-0}" = 1 ] || rm -rf "$work"' EXIT
echo "generating ${size_mb} MB in $files files under $work/in"
python3 - "$brown" "$work/in" "$size_mb" "$files" <<'EOF'
import json, random, sys
from multiprocessing import Pool
brown, out, size_mb, files = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
words = [w for line in open(brown, encoding="utf-8") for w in json.loads(line)["text"].split()]
def make(f):
    rng = random.Random(1234 + f)
    target = size_mb * 1_000_000 // files
    written, recent = 0, []
    with open(f"{out}/web-{f:02d}.jsonl", "w", encoding="utf-8") as o:
        while written < target:
            if recent and rng.random() < 0.005:
                text = rng.choice(recent)                                  # an exact repeat
            else:
                text = " ".join(rng.choices(words, k=rng.randint(200, 1500)))
                recent = (recent + [text])[-100:]
            line = json.dumps({"text": text}, ensure_ascii=False) + "\n"
            o.write(line)
            written += len(line.encode("utf-8"))
    return written
with Pool(2) as p: total = sum(p.map(make, range(files)))
print(f"{total} bytes")
EOF
bytes=$(cat "$work"/in/*.jsonl | wc -c)

run() {
  local t=$1
  /usr/bin/time -v -o "$work/time$t.txt" dotnet "$cli" data prepare --source "web=en:$work/in/*.jsonl" --tokenizer "$tokenizer" \
    --out "$work/out$t" --threads "$t" > "$work/log$t.txt" 2>&1 || { cat "$work/log$t.txt" >&2; exit 1; }
  local wall rss
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ { n = split($2, p, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + p[i]; print s }' "$work/time$t.txt")
  rss=$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$work/time$t.txt")
  printf 'threads %d: %.1f s, %.2f MB/s, peak RSS %.0f MiB\n' "$t" "$wall" "$(echo "$bytes / 1000000 / $wall" | bc -l)" "$(echo "$rss / 1024" | bc -l)"
  grep '^time:' "$work/log$t.txt" | sed 's/^/  /'
  echo "$wall" > "$work/wall$t"
}

echo "date: $(date -u)"
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores; flags: $(grep -m1 flags /proc/cpuinfo | tr ' ' '\n' | grep -E '^(avx2|avx512f|avx512_bf16|amx_bf16)$' | xargs)"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "input: $bytes bytes ($(echo "$bytes / 1000000" | bc) MB) in $files files"
run 1
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
run 2
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
printf 'ratio threads 2 / threads 1 (MB/s): %.2f\n' "$(echo "$(cat "$work/wall1") / $(cat "$work/wall2")" | bc -l)"
grep -A3 '^source' "$work/log1.txt"
diff <(ls -A "$work/out1") <(ls -A "$work/out2")
for f in "$work"/out1/*; do cmp "$f" "$work/out2/$(basename "$f")"; done
echo "byte-identical: $(ls "$work/out1" | xargs) ($(du -sb "$work/out1" | cut -f1) bytes)"
