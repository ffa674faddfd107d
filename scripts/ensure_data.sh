#!/bin/sh
# Make sure the real Fashion-MNIST is where gluon_resnet looks for it (docs/DESIGN.md section 4).
# Usage: scripts/ensure_data.sh VENV_PYTHON
set -eu
py="$1"
find_it() { "$py" -c 'from gluon_resnet.data import find_data_dir; print(find_data_dir())' 2>/dev/null; }
if dir=$(find_it); then
    echo "Fashion-MNIST: $dir"
    exit 0
fi
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "Fashion-MNIST not found: installing Debian's dataset-fashion-mnist package"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist >/dev/null
    if dir=$(find_it); then
        echo "Fashion-MNIST: $dir"
        exit 0
    fi
fi
# Let the library print its own message: it lists every place searched and both cures.
"$py" - <<'PY' >&2
from gluon_resnet.data import DatasetError, find_data_dir
try:
    find_data_dir()
except DatasetError as e:
    print(f"error: {e}")
PY
exit 1
