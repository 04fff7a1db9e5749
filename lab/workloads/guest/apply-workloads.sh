#!/bin/sh
# Applies the lab's workload sources in order with server-side apply, as planned on the host
# (lab/workloads/plan.ts). lab/workloads/apply.ts streams this directory on stdin into a fresh
# 0700 directory (Secrets only ever live there, 0600, removed after) and reads the @@labsmith
# markers this prints. Per source, in sources/NN-name/: first.yaml (Namespaces, CRDs), crds.txt
# (CRDs to wait Established for), secrets.yaml, then objects.yaml, or kustomization/ (holding
# the kustomization at SOURCE_KUSTOMIZATION and its bases) rendered here with the image's own
# kubectl. Usage: apply-workloads.sh PARAMS_FILE
set -eu

params=$1
work=$(dirname "$params")
# shellcheck source=/dev/null
. "$params"
export KUBECONFIG="$WORKLOADS_KUBECONFIG"

say() {
  printf '@@labsmith %s\n' "$*"
}

# apply_file PHASE FILE: with WORKLOADS_DIFF=yes, first what the apply would change (kubectl diff
# exits 1 when there are differences, above 1 on an error, reported and left to the apply).
apply_file() {
  phase=$1
  file=$2
  [ -s "$file" ] || return 0
  if [ "$WORKLOADS_DIFF" = yes ]; then
    say "diff-begin $phase"
    rc=0
    kubectl diff --server-side --field-manager="$WORKLOADS_FIELD_MANAGER" -f "$file" || rc=$?
    say "diff-end $phase $rc"
  fi
  say "apply-begin $phase"
  rc=0
  kubectl apply --server-side --field-manager="$WORKLOADS_FIELD_MANAGER" -f "$file" || rc=$?
  say "apply-end $phase $rc"
  return "$rc"
}

for dir in $WORKLOADS_SOURCES; do
  src="$work/sources/$dir"
  # shellcheck source=/dev/null
  . "$src/source.env"
  say "source-begin $SOURCE_NAME"
  apply_file first "$src/first.yaml"
  if [ -s "$src/crds.txt" ]; then
    while IFS= read -r crd; do
      kubectl wait --for=condition=Established --timeout="${WORKLOADS_CRD_TIMEOUT_SECONDS}s" "customresourcedefinition/$crd"
    done <"$src/crds.txt"
  fi
  apply_file secrets "$src/secrets.yaml"
  if [ "$SOURCE_FORMAT" = kustomization ]; then
    say "render-begin"
    kubectl kustomize "$src/kustomization/$SOURCE_KUSTOMIZATION" >"$src/objects.yaml"
    say "render-end"
  fi
  apply_file objects "$src/objects.yaml"
  say "source-end $SOURCE_NAME"
done
