#!/usr/bin/env bash
# Makes sure GNU gettext's msgfmt and msgunfmt are installed: the .mo reader's tests (tests/CptLab.Data.Tests/Chat)
# compare CptLab's reader with msgunfmt and compile their own catalogs with msgfmt. Idempotent: does nothing when
# both are there. Debian's package is `gettext` (the runtime `gettext-base` lacks them).
set -euo pipefail
command -v msgfmt >/dev/null && command -v msgunfmt >/dev/null && exit 0
if ! command -v apt-get >/dev/null; then
  echo "ensure-gettext: msgfmt/msgunfmt are missing and there is no apt-get; install GNU gettext" >&2
  exit 1
fi
sudo=""
[[ $(id -u) -ne 0 ]] && sudo="sudo"
echo "ensure-gettext: installing Debian's gettext (msgfmt, msgunfmt for the .mo reader's tests)…" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends gettext >/dev/null
command -v msgunfmt >/dev/null || { echo "ensure-gettext: apt-get installed gettext but msgunfmt is still missing" >&2; exit 1; }
