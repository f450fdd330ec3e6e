#!/usr/bin/env bash
# What the packaging tests need (tests/packaging): Debian's desktop-file-validate
# (desktop-file-utils) and appstreamcli (appstream) to check resources/. Idempotent:
# installs only what is missing, and nothing at all when both programs are there.
set -euo pipefail

if command -v desktop-file-validate >/dev/null && command -v appstreamcli >/dev/null; then
    exit 0
fi
if ! command -v apt-get >/dev/null; then
    echo "install-packaging: no apt-get here; install desktop-file-utils and appstream by hand" >&2
    exit 1
fi
sudo=()
if [ "$(id -u)" != 0 ]; then
    sudo=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends desktop-file-utils appstream
