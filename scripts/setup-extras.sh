#!/usr/bin/env bash
# What the project needs beyond its Python packages. Idempotent: quick when already done.
set -euo pipefail
cd "$(dirname "$0")/.."
# Nothing yet beyond requirements-dev.txt; the devshop issue adds Chromium and the Node oracle.
exit 0
