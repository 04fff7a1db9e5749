#!/bin/sh
# labsmith: the image archives baked into the Kubernetes layer -> containerd's k8s.io namespace,
# each imported once, then every listed image pinned so the kubelet's image GC keeps it.
# Usage: import-images.sh PARAMS_FILE (shell-quoted KEY='value' lines rendered by labsmith).
set -eu

if [ "$#" -ne 1 ] || [ ! -r "$1" ]; then
  echo "usage: $0 PARAMS_FILE (a readable labsmith parameter file)" >&2
  exit 2
fi
# shellcheck source=/dev/null
. "$1"
: "${IMAGES_DIR:?} ${IMAGE_LIST:?} ${STATE_DIR:?} ${CONTAINERD_ADDRESS:?} ${NAMESPACE:?} ${PINNED_LABEL:?}"

ctr() { command ctr --address "$CONTAINERD_ADDRESS" --namespace "$NAMESPACE" "$@"; }

mkdir -p "$STATE_DIR"
for archive in "$IMAGES_DIR"/*.oci.tar; do
  [ -e "$archive" ] || continue
  name=$(basename "$archive")
  if [ -e "$STATE_DIR/$name" ]; then continue; fi
  echo "labsmith: importing $name"
  ctr images import "$archive"
  touch "$STATE_DIR/$name"
done
present=$(ctr images ls -q)
while read -r ref; do
  [ -n "$ref" ] || continue
  if ! printf '%s\n' "$present" | grep -qxF "$ref"; then
    echo "labsmith: $ref is not in containerd after the import" >&2
    exit 1
  fi
  ctr images label "$ref" "$PINNED_LABEL" >/dev/null
done <"$IMAGE_LIST"
echo "labsmith: $(grep -c . "$IMAGE_LIST") images present and pinned"
