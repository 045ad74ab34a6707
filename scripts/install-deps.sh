#!/usr/bin/env bash
# Installs the C libraries ActorGraph links (liburing, libnuma) and pkg-config, only when missing.
set -euo pipefail
if command -v pkg-config >/dev/null 2>&1 && pkg-config --exists liburing numa 2>/dev/null; then
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "installing liburing-dev libnuma-dev pkg-config (apt-get)..." >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq liburing-dev libnuma-dev pkg-config >/dev/null
