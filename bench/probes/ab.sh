#!/bin/bash
# bench/probes/ab.sh: alternates runs of two builds of bench/workloads/Workloads and prints each one's rates
# (min, median, mean, max), so that a change is measured against the build before it in the same phase of the
# host (docs/design/performance.md, "Session 27"). Copy each build's output folder first:
#
#   dotnet build -c Release bench/workloads/Workloads && cp -r bench/workloads/Workloads/bin/Release/net10.0 /tmp/a
#   ... change, rebuild, copy to /tmp/b ...
#   bench/probes/ab.sh /tmp/a /tmp/b 16                 # W2 (w2 1000000), 16 pairs
#   bench/probes/ab.sh /tmp/a /tmp/b 8 w2 100000        # other arguments for Workloads
#
# Only workloads that print a "rate" (W2) are summarised.
set -euo pipefail
if [ $# -lt 3 ]; then echo "usage: $0 DIR_A DIR_B PAIRS [Workloads arguments]" >&2; exit 2; fi
A=$1; B=$2; P=$3; shift 3
args=("$@"); [ ${#args[@]} -eq 0 ] && args=(w2 1000000)
rate() { "$1/Workloads" "${args[@]}" | sed -E 's/.*"rate": ([0-9]+).*/\1/'; }
ra=(); rb=()
for _ in $(seq "$P"); do ra+=("$(rate "$A")"); rb+=("$(rate "$B")"); done
stats() { printf "%s\n" "$@" | sort -n | awk '{a[NR]=$1; s+=$1} END{printf "min %d  median %d  mean %d  max %d", a[1], a[int((NR+1)/2)], s/NR, a[NR]}'; }
echo "A: $(stats "${ra[@]}")"
echo "B: $(stats "${rb[@]}")"
