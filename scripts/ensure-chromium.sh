#!/usr/bin/env bash
# Makes sure Debian's chromium is installed: the web chat page's test (tests/CptLab.Serving.Tests) drives it
# through Playwright with ExecutablePath=/usr/bin/chromium. Idempotent: does nothing when it is already there.
# Playwright's own browser download is never used (it needs the internet; apt only needs the package mirror).
set -euo pipefail
[[ -x /usr/bin/chromium ]] && exit 0
if ! command -v apt-get >/dev/null; then
  echo "ensure-chromium: /usr/bin/chromium is missing and there is no apt-get; install Chromium so that /usr/bin/chromium exists" >&2
  exit 1
fi
sudo=""
[[ $(id -u) -ne 0 ]] && sudo="sudo"
echo "ensure-chromium: installing Debian's chromium (for the web chat page test)…" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends chromium >/dev/null
[[ -x /usr/bin/chromium ]] || { echo "ensure-chromium: apt-get installed chromium but /usr/bin/chromium is still missing" >&2; exit 1; }
