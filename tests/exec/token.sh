#!/usr/bin/env bash
# Prints a raw token, numbered by how often it ran (counted in $COUNT).
set -eu
n=$(( $(cat "$COUNT" 2>/dev/null || echo 0) + 1 ))
echo "$n" > "$COUNT"
echo "exec-raw-${PREFIX:-t}-$n"
