#!/usr/bin/env bash
# A Kubernetes client-go credential plugin stand-in: an ExecCredential whose
# token lives $LIFETIME seconds, numbered by how often it ran. Every run after
# the first waits $DELAY seconds (default 0) before answering: a slow refresh.
set -eu
n=$(( $(cat "$COUNT" 2>/dev/null || echo 0) + 1 ))
echo "$n" > "$COUNT"
if [ "$n" -gt 1 ]; then sleep "${DELAY:-0}"; fi
exp=$(date -u -d "+${LIFETIME} seconds" +%Y-%m-%dT%H:%M:%SZ)
cat <<JSON
{
  "apiVersion": "client.authentication.k8s.io/v1",
  "kind": "ExecCredential",
  "status": { "token": "k8s-exec-token-$n", "expirationTimestamp": "$exp" }
}
JSON
