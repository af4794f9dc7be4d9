#!/usr/bin/env bash
# Set up (scripts/setup.sh) and run the test suite: everything but the `slow` marker.
# Extra arguments go to pytest, e.g. scripts/test.sh -k golden. worksteal: a worker that runs out
# of tests takes queued ones from the other, so the long trainings at the end do not leave a core idle.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/python -m pytest -m "not slow" -n 2 --dist worksteal -q "$@"
