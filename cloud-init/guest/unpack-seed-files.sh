#!/bin/sh
# A cloud-init user-data part (text/x-shellscript): scripts_user runs it in the final stage, before
# runcmd's script. It carries the seed's larger files (the placeholder ingress, or the cluster
# bootstrap and its add-ons) as a gzip'd tar in base64 after the marker line at its end:
# cloud-init parses its cloud-config YAML in pure Python several times per stage (about a second
# per parse of a cluster seed under emulation), and a part like this one it stores unparsed.
# $1: where to unpack (tests); the guest's / otherwise (scripts_user passes nothing).
set -eu
root="${1:-/}"
sed '1,/^__SEED_FILES__$/d' "$0" | base64 -d | tar -xzmf - -C "$root"
exit 0
# shellcheck disable=SC2317 # the marker line: the archive follows it, nothing here runs
__SEED_FILES__
