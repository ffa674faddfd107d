#!/bin/sh
# Print the Python interpreter to build .venv with, or explain why there is none.
# MXNet 1.9.1 needs numpy < 1.24 and d2l 1.0.3 pins numpy 1.23.5, which has wheels
# up to CPython 3.11 only: other versions end in a pip resolver error, so stop here.
set -u
for py in ${PYTHON:-} python3.11 python3; do
    [ -n "$py" ] || continue
    command -v "$py" >/dev/null 2>&1 || continue
    version=$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null) || continue
    if [ "$version" = "3.11" ]; then
        command -v "$py"
        exit 0
    fi
    found="${found:-}$py is Python $version; "
done
cat >&2 <<MSG
error: Python 3.11 is required and none was found (${found:-no python3 on PATH}).
  Why: MXNet 1.9.1 (the last MXNet release) needs numpy < 1.24, and d2l 1.0.3 pins
  numpy 1.23.5, which has no wheels for Python 3.12 or newer.
  Fix: install Python 3.11 (Debian 12: apt-get install python3 python3-venv;
  elsewhere: pyenv install 3.11 or your distribution's python3.11), then run
  make again, or point at it with: make PYTHON=/path/to/python3.11 ...
MSG
exit 1
