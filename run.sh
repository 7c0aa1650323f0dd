#!/usr/bin/env bash
# The main job (for now): build, create a small Llama model in Hugging Face layout, show it, generate from it.
# Later issues turn this into the end-to-end demo of the method.
set -euo pipefail
cd "$(dirname "$0")"
dotnet build src/CptLab.Cli -c Release --nologo -v quiet
cptlab() { dotnet src/CptLab.Cli/bin/Release/net10.0/cptlab.dll "$@"; }
out="${1:-out/demo-model}"
cptlab model init --flavor cpu-7m --out "$out" --seed 0
cptlab model info "$out" --seq-len 512
echo "greedy continuation of token ids 1,100,200:"
cptlab generate --model "$out" --prompt-ids 1,100,200 --max-new-tokens 16
echo "sampled (temperature 0.8, top-p 0.95, seed 1):"
cptlab generate --model "$out" --prompt-ids 1,100,200 --max-new-tokens 16 --temperature 0.8 --top-p 0.95 --seed 1
