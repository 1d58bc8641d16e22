#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder's image (Ubuntu, no GPU): a
# virtual environment with the CPU build of torch where the platform has one (about 200 MB, where
# PyPI's default build brings several GB of CUDA libraries), then the repository's requirements.
# run_autograder then grades with $AUTOGRADER_ROOT/venv/bin/python.
set -eu
root=${AUTOGRADER_ROOT:-/autograder}
cd "$root/source"
command -v python3 >/dev/null || { apt-get update && apt-get install -y python3; }
python3 -m venv "$root/venv" || { apt-get update && apt-get install -y python3-venv && python3 -m venv "$root/venv"; }
"$root/venv/bin/pip" install --upgrade pip
if [ "$(uname -s)-$(uname -m)" = Linux-x86_64 ]; then
  "$root/venv/bin/pip" install torch torchvision --index-url https://download.pytorch.org/whl/cpu
fi
"$root/venv/bin/pip" install -r requirements.txt
