#!/usr/bin/env bash
# Runs bench/deepgemm/run.sh longer than one device call (10 min): the run
# goes on in its own process session, which the device tool leaves running
# while the machine is held, and each later call waits for it a while and
# copies what it has so far to $OUT.
#   bash bench/deepgemm/background.sh start [run.sh args...]  (then waits)
#   bash bench/deepgemm/background.sh wait [SECONDS]
# Waits at most SECONDS (default 560); exits with run.sh's status once it
# ended, 0 while it still runs (the output says which), 1 when none started.
set -uo pipefail
cd "$(dirname "$0")/../.."
dir=/tmp/dgbench-bg
what="${1:-wait}"
shift || true
limit="${BG_WAIT:-560}"  # start: how long to wait before returning
if [[ "$what" == start ]]; then
  rm -rf "$dir" && mkdir -p "$dir"
  setsid bash -c 'OUT="$0/out" bash bench/deepgemm/run.sh "$@" >"$0/log" 2>&1
                  echo $? >"$0/rc"' "$dir" "$@" </dev/null >/dev/null 2>&1 &
  echo "started: run.sh $*"
else
  limit="${1:-560}"
fi
[[ -d "$dir" ]] || { echo "no run started" >&2; exit 1; }
end=$((SECONDS + limit))
while [[ ! -f "$dir/rc" && $SECONDS -lt $end ]]; do sleep 5; done
out="${OUT:-$dir/copy}"
mkdir -p "$out"
cp "$dir/log" "$out/run.log" 2>/dev/null
for f in raw.json table.md machine.txt python.txt logs.tar.gz; do
  cp "$dir/out/$f" "$out/" 2>/dev/null
done
if [[ ! -f "$dir/rc" && -d "$dir/out/logs" ]]; then
  tar czf "$out/logs.tar.gz" -C "$dir/out" logs 2>/dev/null
fi
tail -25 "$dir/log"
if [[ -f "$dir/rc" ]]; then
  echo "run.sh ended with status $(cat "$dir/rc")"
  exit "$(cat "$dir/rc")"
fi
echo "run.sh still running"
