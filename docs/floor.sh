#!/usr/bin/env bash
# The torch floor, proven: docs/floor.py's smoke runs (every chapter's tiny run, gpt.py's
# checkpoint, resume and sampling) in a venv of its own with the lowest torch requirements.txt
# allows. Not part of CI: below 2.13 PyPI has only the CUDA build (about 0.9 GB, plus its nvidia
# packages). Run from anywhere, with names.txt and input.txt in the repository root:
#   docs/floor.sh            # the floor in requirements.txt (torch>=2.5: 2.5.0)
#   docs/floor.sh 2.5.1      # another version
# The venv is /tmp/floor-VERSION (kept, so that a second run skips the download).
set -euo pipefail
cd "$(dirname "$0")/.."
floor=$(sed -n 's/^torch>=//p' requirements.txt)
version=${1:-$floor}
case $version in *.*.*) ;; *) version=$version.0 ;; esac
venv=/tmp/floor-$version
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -m pip install -q "torch==$version" numpy
"$venv/bin/python" docs/floor.py
