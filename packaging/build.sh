#!/usr/bin/env bash
# Build the one-folder bundle and its tarball:
#
#     packaging/build.sh [DIST]        (DIST defaults to ./dist)
#
# gives DIST/outbox/ (run DIST/outbox/outbox) and
# DIST/outbox-<version>-linux-<arch>.tar.gz. Needs the dev environment
# (uv sync), which has PyInstaller. Prints the sizes it measured.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dist="$(mkdir -p "${1:-$root/dist}" && cd "${1:-$root/dist}" && pwd)"
work="$dist/.build"
cd "$root"

version="$(uv run --frozen python -c 'import relay; print(relay.__version__)')"
arch="$(uname -m)"

uv run --frozen pyinstaller --noconfirm --clean --log-level WARN \
    --distpath "$dist" --workpath "$work" packaging/outbox.spec
rm -rf "$work"

tarball="$dist/outbox-$version-linux-$arch.tar.gz"
tar -C "$dist" -czf "$tarball" outbox
echo "bundle:  $dist/outbox ($(du -sh "$dist/outbox" | cut -f1))"
echo "tarball: $tarball ($(du -sh "$tarball" | cut -f1))"
