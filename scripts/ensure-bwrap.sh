#!/usr/bin/env bash
# Makes sure Debian's bubblewrap (/usr/bin/bwrap) is installed: the HumanEval sandbox (src/CptLab.Eval/Execution/CodeSandbox.cs)
# runs every generated program inside it (no network, read-only system, private /tmp, its own pid/user namespaces).
# Idempotent: does nothing when it is already there. Then checks that bwrap can actually create namespaces here.
set -euo pipefail
if [[ ! -x /usr/bin/bwrap ]]; then
  if ! command -v apt-get >/dev/null; then
    echo "ensure-bwrap: /usr/bin/bwrap is missing and there is no apt-get; install bubblewrap so that /usr/bin/bwrap exists" >&2
    exit 1
  fi
  sudo=""
  [[ $(id -u) -ne 0 ]] && sudo="sudo"
  echo "ensure-bwrap: installing Debian's bubblewrap (sandbox for HumanEval code execution)…" >&2
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends bubblewrap >/dev/null
  [[ -x /usr/bin/bwrap ]] || { echo "ensure-bwrap: apt-get installed bubblewrap but /usr/bin/bwrap is still missing" >&2; exit 1; }
fi
# A kernel or container that forbids user namespaces makes every sandboxed run fail; say so here, with the fix.
err=$(mktemp)
trap 'rm -f "$err"' EXIT
if ! /usr/bin/bwrap --unshare-all --unshare-user --uid 65534 --gid 65534 --ro-bind /usr /usr --symlink usr/bin /bin \
     --symlink usr/lib /lib --symlink usr/lib64 /lib64 --proc /proc --dev /dev /usr/bin/true 2>"$err"; then
  echo "ensure-bwrap: bwrap cannot create namespaces here: $(cat "$err")" >&2
  echo "ensure-bwrap: enable user namespaces (sysctl user.max_user_namespaces=15000; on older kernels kernel.unprivileged_userns_clone=1)," >&2
  echo "ensure-bwrap: or run in a container started with --security-opt seccomp=unconfined / --privileged" >&2
  exit 1
fi
