#!/bin/sh
# mmdebstrap customize hook ($1 = the new root): writes a Packages index beside the staged upgrade
# .debs, so the rehearsal's apt source can be `deb [trusted=yes] file:DIR ./` with no network.
# The .debs were verified against the lock's sha256 before the build placed them; the index
# records the same sums. Each directory under the staged upgrade dir is one target minor.
set -eu

ROOT=${1:?usage: index-staged-upgrade.sh ROOT}
STAGED="$ROOT/var/lib/labsmith/upgrade"
[ -d "$STAGED" ] || exit 0

for debs in "$STAGED"/*/debs; do
  [ -d "$debs" ] || continue
  index="$debs/Packages"
  : > "$index.new"
  for deb in "$debs"/*.deb; do
    [ -f "$deb" ] || continue
    name=$(basename "$deb")
    {
      dpkg-deb -f "$deb"
      printf 'Filename: ./%s\n' "$name"
      printf 'Size: %s\n' "$(wc -c < "$deb" | tr -d ' ')"
      printf 'SHA256: %s\n' "$(sha256sum "$deb" | cut -d' ' -f1)"
      printf '\n'
    } >> "$index.new"
  done
  mv "$index.new" "$index"
done
