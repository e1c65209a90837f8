#!/bin/bash
# The idle spin's cost and gain (Program.cs): for each pace of the client, the echo server with the default
# adaptive spin and with none (IdleSpin = 0), the server pinned to core 0 and the client to core 1.
#   bench/probes/IdleSpin/run.sh [INTERVAL_US ...]     default: 0 50 100 200 500 1000
set -e
here=$(cd "$(dirname "$0")" && pwd)
dotnet build -c Release -m:1 "$here" > /dev/null
exe=$here/bin/Release/net10.0/IdleSpin
out=$(mktemp)
trap 'rm -f "$out"' EXIT
intervals=${*:-0 50 100 200 500 1000}
printf '%-12s %-9s %s\n' interval spin measured
for iv in $intervals; do
  for spin in adaptive 0; do
    extra=(); [ "$spin" = 0 ] && extra=(0)
    taskset -c 0 "$exe" serve 4 "${extra[@]}" > "$out" &
    pid=$!
    for _ in $(seq 100); do grep -q LISTENING "$out" && break; sleep 0.05; done
    port=$(awk '/LISTENING/ {print $2}' "$out")
    client=$(taskset -c 1 "$exe" client "$port" "$iv" 3)
    wait $pid
    printf '%-12s %-9s %s, %s\n' "${iv} us" "$spin" "$client" "$(tail -1 "$out")"
  done
done
