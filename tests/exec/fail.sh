#!/usr/bin/env bash
# Prints something secret-looking on stdout, explains on stderr, fails.
echo "stdout-must-not-leak-4f1c"
echo "token service said: permission denied for role sidecar" >&2
exit 3
