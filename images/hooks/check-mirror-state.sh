#!/bin/sh
# mmdebstrap hook, run on the build host: $1 is the new root. apt has just downloaded each
# suite's InRelease into the root's lists; each must be the one the layer is planned (and will
# be stored) under, else the mirror moved between planning and download and nothing is cached.
# Parameters: mirror-state beside this script, one "suite list-file sha256" line per suite.
set -eu
root="$1"
params="$(dirname "$0")/mirror-state"
lists="$root/var/lib/apt/lists"
status=0
while read -r suite file expected; do
  [ -n "$suite" ] || continue
  if [ ! -f "$lists/$file" ]; then
    echo "labsmith: apt downloaded no InRelease for $suite (expected $lists/$file)" >&2
    status=1
    continue
  fi
  actual=$(sha256sum "$lists/$file" | cut -d ' ' -f 1)
  if [ "$actual" != "$expected" ]; then
    echo "labsmith: the Debian mirror moved during the build: $suite InRelease is $actual, the plan has $expected" >&2
    status=1
  fi
done < "$params"
exit "$status"
