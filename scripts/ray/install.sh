#!/usr/bin/env bash
# Installs what the Ray placer needs: ray==2.60.0 through pip, only when `import ray` does not already
# give that version. Prints one line. Exit 0 installed or already there, 1 the install failed.
#   scripts/ray/install.sh            PYTHON=python3 by default
set -uo pipefail
python=${PYTHON:-python3}
want=2.60.0
have=$("$python" -c 'import ray; print(ray.__version__)' 2>/dev/null || true)
if [ "$have" = "$want" ]; then
    echo "ray-install: ray $have already installed ($("$python" -c 'import sys; print(sys.executable)'))"
    exit 0
fi
echo "ray-install: installing ray==$want with $python -m pip (found: ${have:-none}; ~1-2 min)"
if ! "$python" -m pip install --quiet "ray==$want"; then
    echo "ray-install: pip install ray==$want failed" >&2
    exit 1
fi
have=$("$python" -c 'import ray; print(ray.__version__)' 2>/dev/null || true)
[ "$have" = "$want" ] || { echo "ray-install: import ray gives '${have:-nothing}' after the install" >&2; exit 1; }
echo "ray-install: ray $have installed"
