#!/usr/bin/env bash
# Records its pid, then never answers.
echo $$ > "$PIDFILE"
sleep 60
echo "too-late"
