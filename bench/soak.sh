#!/usr/bin/env bash
# The 10-minute soak (issue 16): mixed traffic through the full chain with reloads and chain
# edits every 2 s; fails on an unexpected answer, RSS growth >= 2 % or file-descriptor growth.
# What it sends and checks: bench/soak/soak.py. The release test suite runs it for 60 s
# without the RSS check (ctest: soak; RSS is noise in 60 s).
#   bash bench/soak.sh [build/sluice]        SOAK_SECONDS=600
set -euo pipefail
cd "$(dirname "$0")/.."
exec python3 bench/soak/soak.py --binary "${1:-build/sluice}" --seconds "${SOAK_SECONDS:-600}"
