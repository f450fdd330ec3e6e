#!/usr/bin/env bash
# What the Secret Service test needs (tests/support/secret_service.py): Debian's
# gnome-keyring and a D-Bus daemon to give it a private session bus. Idempotent:
# installs only what is missing, and nothing at all when both programs are there.
set -euo pipefail

if command -v gnome-keyring-daemon >/dev/null && command -v dbus-daemon >/dev/null; then
    exit 0
fi
if ! command -v apt-get >/dev/null; then
    echo "install-keyring: no apt-get here; install gnome-keyring and dbus by hand" >&2
    exit 1
fi
sudo=()
if [ "$(id -u)" != 0 ]; then
    sudo=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends gnome-keyring dbus
