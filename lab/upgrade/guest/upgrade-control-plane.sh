#!/bin/sh
# The control-plane step of a kubeadm minor upgrade on the single node, in the order of kubeadm's
# upgrade guide. Values come from the rendered params file (shell-quoted assignments).
set -eu

PARAMS=${1:?usage: upgrade-control-plane.sh PARAMS_FILE}
# shellcheck source=/dev/null
. "$PARAMS"
: "${TARGET_MINOR:?} ${KUBERNETES_VERSION:?} ${PACKAGE_VERSION:?} ${APT_REPO_URI:?} ${APT_SOURCE_FILE:?}"
: "${APT_KEYRING:?} ${UPGRADE_CONFIG:?} ${NODE_NAME:?} ${DRAIN_TIMEOUT:?} ${READY_TIMEOUT:?}"
export KUBECONFIG="${KUBECONFIG:-/etc/kubernetes/admin.conf}"
export DEBIAN_FRONTEND=noninteractive

step() { printf '==> %s\n' "$*"; }
fail() { printf 'upgrade-control-plane: %s\n' "$1" >&2; [ -z "${2:-}" ] || printf 'hint: %s\n' "$2" >&2; exit 1; }

# The staged payload is a local file repository verified at build time: APT_SOURCE_OPTIONS=trusted=yes.
APT_SOURCE_OPTIONS=${APT_SOURCE_OPTIONS:-signed-by=$APT_KEYRING}

step "apt source: Kubernetes v$TARGET_MINOR"
printf 'deb [%s] %s /\n' "$APT_SOURCE_OPTIONS" "$APT_REPO_URI" > "$APT_SOURCE_FILE.new"
mv "$APT_SOURCE_FILE.new" "$APT_SOURCE_FILE"
apt-get update -q || fail "apt-get update failed for $APT_REPO_URI" "the target's repository must be reachable or staged in the image"

step "kubeadm $PACKAGE_VERSION"
apt-mark unhold kubeadm
apt-get install -y -q "kubeadm=$PACKAGE_VERSION" || fail "kubeadm $PACKAGE_VERSION did not install" "is it in the target's lock section?"
apt-mark hold kubeadm
installed=$(kubeadm version -o short)
[ "$installed" = "$KUBERNETES_VERSION" ] || fail "kubeadm reports $installed, expected $KUBERNETES_VERSION"

step "kubeadm upgrade plan"
kubeadm upgrade plan --config "$UPGRADE_CONFIG" || fail "kubeadm upgrade plan refused the upgrade" "read its output above; nothing has changed yet"
step "kubeadm upgrade diff"
kubeadm upgrade diff --config "$UPGRADE_CONFIG" || fail "kubeadm upgrade diff failed" "nothing has changed yet"
step "kubeadm upgrade apply $KUBERNETES_VERSION"
kubeadm upgrade apply --config "$UPGRADE_CONFIG" --yes \
  || fail "kubeadm upgrade apply failed" "imagePullPolicy is Never: every image of 'kubeadm config images list' for $KUBERNETES_VERSION must be in containerd's k8s.io namespace; roll back to the snapshot if the control plane is half-upgraded"

# One node: nothing can take the pods, so the drain is bounded and best-effort.
step "drain $NODE_NAME"
kubectl drain "$NODE_NAME" --ignore-daemonsets --delete-emptydir-data --timeout="$DRAIN_TIMEOUT" \
  || printf 'warning: drain of %s did not finish within %s (single node: continuing)\n' "$NODE_NAME" "$DRAIN_TIMEOUT" >&2

step "kubelet and kubectl $PACKAGE_VERSION"
apt-mark unhold kubelet kubectl
apt-get install -y -q "kubelet=$PACKAGE_VERSION" "kubectl=$PACKAGE_VERSION" || fail "kubelet/kubectl $PACKAGE_VERSION did not install" "the node is still cordoned: kubectl uncordon $NODE_NAME"
apt-mark hold kubelet kubectl
systemctl daemon-reload
systemctl restart kubelet

step "uncordon $NODE_NAME"
kubectl uncordon "$NODE_NAME"
step "wait for $NODE_NAME Ready"
kubectl wait --for=condition=Ready "node/$NODE_NAME" --timeout="$READY_TIMEOUT" \
  || fail "$NODE_NAME is not Ready after $READY_TIMEOUT" "journalctl -u kubelet on the node; containerd must be ≥ the target's minimum"
step "control plane at $KUBERNETES_VERSION"
