#!/bin/sh
# Build Echo Stream's wheel into $1 (default dist/). The Dockerfile and CI both run this script,
# so CI builds the wheel exactly as the image does.
set -eu
out="${1:-dist}"
python -m pip wheel --no-deps --no-cache-dir --wheel-dir "$out" .
