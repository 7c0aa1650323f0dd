#!/usr/bin/env bash
# Fetches the Debian packages of the modern Chinese + English documentation corpora (`cptlab data extract-docs`)
# and the tool that renders man pages:
#   DIR/debs/*.deb        the packages, as `apt-get download` fetched them (Debian 12 bookworm's current versions)
#   DIR/root/usr/share/…  their files, unpacked with `dpkg-deb -x` (nothing is installed: dpkg's path-exclude rules
#                         for /usr/share/man and /usr/share/doc, which Debian's slim images have, do not apply)
#   DIR/packages.tsv      package, version and .deb of each, for docs/data.md and the extraction's summary
# Packages: manpages-zh (zh_CN/zh_TW man pages), manpages + manpages-dev (English man pages of the same commands and
# calls), debian-reference-zh-cn + debian-reference-en (HTML), and packages whose zh_CN gettext catalogs give the
# (English msgid, Chinese msgstr) pairs. Licences and what was checked and left out: docs/data.md.
# Tools installed with apt when missing: mandoc (renders the man pages) and, through ensure-gettext.sh, GNU gettext
# (msgunfmt/msgfmt, the tests' reference for the .mo reader).
# Idempotent: with DIR/.done naming the same package list, nothing is fetched. DIR defaults to .cache/debian-pkgs;
# CPTLAB_DEBIAN overrides it (the tests read the same variable).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir="${CPTLAB_DEBIAN:-$root/.cache/debian-pkgs}"
packages=(manpages-zh manpages manpages-dev debian-reference-zh-cn debian-reference-en
  coreutils findutils grep sed tar diffutils wget dpkg apt gettext util-linux-locales e2fsprogs-l10n gnupg-l10n libc-l10n)

sudo=""
[[ $(id -u) -ne 0 ]] && sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
updated=""
apt_update() { [[ -n $updated ]] || { $sudo apt-get update -qq; updated=1; }; }

"$root/scripts/ensure-gettext.sh"
if ! command -v mandoc >/dev/null; then
  echo "fetch-debian-corpora: installing mandoc (renders the man pages)…" >&2
  apt_update
  $sudo apt-get install -y -qq --no-install-recommends mandoc >/dev/null
fi

if [[ -f $dir/.done && $(cat "$dir/.done") == "${packages[*]}" ]]; then
  echo "debian corpora in $dir"
  exit 0
fi
rm -rf "$dir/debs" "$dir/root" "$dir/.done"
mkdir -p "$dir/debs" "$dir/root"
echo "fetching ${#packages[@]} Debian packages into $dir"
# apt-get download writes into the current folder; its _apt sandbox cannot write to a root-owned one, hence the
# chmod (otherwise apt warns and downloads unsandboxed).
chmod 777 "$dir/debs"
download() { (cd "$dir/debs" && apt-get download -qq "${packages[@]}" 2>&1 | grep -v '^W: Download is performed unsandboxed' || true); }
download
if [[ $(ls "$dir/debs"/*.deb 2>/dev/null | wc -l) -lt ${#packages[@]} ]]; then apt_update; download; fi
printf 'package\tversion\tdeb\n' >"$dir/packages.tsv.tmp"
for p in "${packages[@]}"; do
  deb=$(ls "$dir/debs/${p}"_*.deb 2>/dev/null | head -1)
  [[ -n $deb ]] || { echo "fetch-debian-corpora: apt-get download $p gave no .deb" >&2; exit 1; }
  dpkg-deb -x "$deb" "$dir/root"
  printf '%s\t%s\t%s\n' "$p" "$(dpkg-deb -f "$deb" Version)" "$(basename "$deb")" >>"$dir/packages.tsv.tmp"
done
mv "$dir/packages.tsv.tmp" "$dir/packages.tsv"
echo "debian: $(find "$dir/root/usr/share/man/zh_CN" -type f | wc -l) zh_CN man pages, $(find "$dir/root/usr/share/man" -path '*/man/man*' -type f | wc -l) English, $(ls "$dir/root/usr/share/debian-reference"/*.html | wc -l) Debian Reference pages, $(ls "$dir/root/usr/share/locale/zh_CN/LC_MESSAGES"/*.mo | wc -l) zh_CN catalogs"
echo "${packages[*]}" >"$dir/.done"
echo "debian corpora in $dir"
