#!/bin/bash
# labsmith first-boot bootstrap: brings the single-node cluster up from the files the seed
# delivered. Usage: bootstrap.sh PARAMS_FILE (shell-quoted KEY='value' lines rendered by labsmith).
# Each step logs its start and end, waits on readiness (never a fixed sleep) and leaves a marker,
# so a restart resumes after the last finished step and a finished bootstrap does nothing.
set -euo pipefail

if [ "$#" -ne 1 ] || [ ! -r "$1" ]; then
  echo "usage: $0 PARAMS_FILE (a readable labsmith parameter file)" >&2
  exit 2
fi
# shellcheck source=/dev/null
. "$1"
: "${BOOTSTRAP_DIR:?} ${KUBEADM_CONFIG:?} ${ADMIN_KUBECONFIG:?} ${STATE_DIR:?} ${CRI_SOCKET:?}"
: "${ADDONS?} ${IMPORT_UNIT:?} ${DNS_PROBE:?} ${DNS_NAME:?} ${POLL_SECONDS:?}"
: "${CERT_MANAGER_NAMESPACE:?} ${TRAEFIK_NAMESPACE:?} ${WILDCARD_CERTIFICATE:?}"
: "${WAIT_API:?} ${WAIT_NODE:?} ${WAIT_ROLLOUT:?} ${WAIT_CERTIFICATE:?} ${WAIT_DNS:?}"

export KUBECONFIG="$ADMIN_KUBECONFIG"
mkdir -p "$STATE_DIR"

log() { echo "labsmith-bootstrap: $*"; }

# A failed step is named in the journal after its own output (one stream), so whoever reads
# the journal sees which step failed and why, in that order.
CURRENT_STEP=''
on_exit() {
  local status=$?
  if [ "$status" -ne 0 ] && [ -n "$CURRENT_STEP" ]; then
    log "$CURRENT_STEP: failed (exit $status)"
  fi
}
trap on_exit EXIT

# step NAME COMMAND...: runs once; a marker records it, so restarts resume after the last finished step.
step() {
  local name=$1
  shift
  if [ -e "$STATE_DIR/$name.done" ]; then
    log "$name: already done"
    return 0
  fi
  log "$name: start"
  local started=$SECONDS
  CURRENT_STEP=$name
  "$@"
  CURRENT_STEP=''
  touch "$STATE_DIR/$name.done"
  log "$name: done in $((SECONDS - started))s"
}

# wait_for WHAT SECONDS COMMAND...: polls until COMMAND succeeds; fails the unit with its last output.
wait_for() {
  local what=$1 timeout=$2
  shift 2
  local deadline=$((SECONDS + timeout)) out
  log "waiting: $what"
  until out=$("$@" 2>&1); do
    if [ "$SECONDS" -ge "$deadline" ]; then
      log "$what: not ready after ${timeout}s: $(printf '%s\n' "$out" | tail -n 3)"
      return 1
    fi
    sleep "$POLL_SECONDS"
  done
  log "ready: $what"
}

# The webhook may still be starting when its deployment reports ready: apply retries.
apply_with_retry() {
  local file=$1 deadline=$((SECONDS + WAIT_ROLLOUT))
  until kubectl apply --server-side --force-conflicts --field-manager=labsmith -f "$file"; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      log "apply $file: still failing after ${WAIT_ROLLOUT}s"
      return 1
    fi
    sleep "$POLL_SECONDS"
  done
}

rollout() {
  local namespace=$1 object=$2
  wait_for "$object ready" "$WAIT_ROLLOUT" kubectl -n "$namespace" rollout status "$object" --timeout=10s
}

# What must be ready after an add-on is applied, before the next one goes in.
ready_after() {
  case "$1" in
    calico)
      rollout kube-system daemonset/calico-node
      wait_for "node Ready" "$WAIT_NODE" kubectl wait --for=condition=Ready node --all --timeout=10s
      rollout kube-system deployment/coredns
      ;;
    cert-manager)
      for deployment in cert-manager cert-manager-cainjector cert-manager-webhook; do
        rollout "$CERT_MANAGER_NAMESPACE" "deployment/$deployment"
      done
      ;;
    lab-tls)
      wait_for "wildcard certificate Ready" "$WAIT_CERTIFICATE" \
        kubectl -n "$TRAEFIK_NAMESPACE" wait --for=condition=Ready "certificate/$WILDCARD_CERTIFICATE" --timeout=10s
      ;;
    local-path) rollout local-path-storage deployment/local-path-provisioner ;;
    traefik) rollout "$TRAEFIK_NAMESPACE" deployment/traefik ;;
    *) ;;
  esac
}

# Only the step marker says init finished. kubeadm writes admin.conf, the certificates and the
# static pod manifests before wait-control-plane, so an earlier attempt that stopped there leaves
# them behind; init then fails its preflight (manifests exist, ports in use) and the later phases
# (upload-config, bootstrap-token, the CoreDNS and kube-proxy add-ons) never run. kubeadm's
# documented way back is `kubeadm reset`, then init again.
kubeadm_init() {
  if [ -e "$STATE_DIR/kubeadm-init.attempted" ]; then
    log "kubeadm: an earlier init did not finish; resetting the node first"
    kubeadm reset --force --cri-socket "$CRI_SOCKET"
  fi
  touch "$STATE_DIR/kubeadm-init.attempted"
  kubeadm init --config "$KUBEADM_CONFIG" --skip-token-print
}

# The Service address is read on every try: kube-dns may not exist yet, or be recreated.
dns_answers() {
  local address
  address=$(kubectl -n kube-system get service kube-dns -o jsonpath='{.spec.clusterIP}')
  if [ -z "$address" ]; then
    echo "the kube-dns Service has no address yet"
    return 1
  fi
  python3 "$DNS_PROBE" "$address" "$DNS_NAME"
}

if [ -e "$STATE_DIR/complete" ]; then
  log "bootstrap complete before; nothing to do"
  exit 0
fi
step images systemctl start "$IMPORT_UNIT"
step kubeadm-init kubeadm_init
wait_for "API server" "$WAIT_API" kubectl get --raw /readyz
read -r -a addons <<<"$ADDONS"
for file in "${addons[@]}"; do
  name=${file#[0-9]*-}
  name=${name%.yaml}
  step "$name" apply_with_retry "$BOOTSTRAP_DIR/$file"
  ready_after "$name"
done
wait_for "CoreDNS answers $DNS_NAME" "$WAIT_DNS" dns_answers
touch "$STATE_DIR/complete"
log "complete"
