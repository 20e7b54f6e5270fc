#!/usr/bin/env bash
# One benchmark run from cron. Crontab line (every 15 minutes):
#
#     */15 * * * * /full/path/to/benchmark-engine/cron_example.sh
#
# Works from any current directory (cron's is $HOME): it moves to its own directory, where main.py reads .env.
# Uses ./venv or ./.venv if present. A lock keeps a slow run and the next tick from overlapping: the skipped tick
# leaves a line in the log. Output goes to logs/benchmark.log, a UTC timestamp on each line. Extra arguments are
# passed to main.py. Exits with main.py's status (0 when the tick was skipped).
set -uo pipefail

here="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)" || exit 1
cd "$here" || exit 1
mkdir -p logs
log="logs/benchmark.log"

stamp() {
    while IFS= read -r line; do
        printf '%s %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$line"
    done
}

if [ -x venv/bin/python ]; then
    python=venv/bin/python
elif [ -x .venv/bin/python ]; then
    python=.venv/bin/python
else
    python=python3
fi

# The lock is held by file descriptor 9 for as long as this script (and main.py under it) runs.
exec 9>"logs/benchmark.lock"
if ! flock -n 9; then
    echo "skipped: the previous run still holds logs/benchmark.lock" | stamp >>"$log"
    exit 0
fi

# main.py loads .env from this directory itself (the real environment wins over it, as in a shell).
"$python" main.py --triggered-by cron "$@" 2>&1 | stamp >>"$log"
status=${PIPESTATUS[0]}
echo "main.py exited with status $status" | stamp >>"$log"
exit "$status"
