#!/bin/sh
# containerd 1.7 → 2.x on the node, one step per call (the host times each step and reads its
# output): record, verify-debs, install, configure, restart, check, ctr-run, docker.
# Values come from the rendered params file (shell-quoted assignments). Reads print sections
# "@@name" followed by the tool's own output, and "@@name.exit" with its exit status; the host
# parses and judges them. Effectful steps stop at the first failure with a message and a hint.
set -eu

PARAMS=${1:?usage: migrate-containerd.sh PARAMS_FILE STEP}
STEP=${2:?usage: migrate-containerd.sh PARAMS_FILE STEP}
# shellcheck source=/dev/null
. "$PARAMS"
: "${DEB_DIR:?} ${DEB_SUMS:?} ${PINS:?} ${CONTAINERD_PACKAGE:?} ${CONTAINERD_VERSION:?}"
: "${APT_PREFERENCES_FILE:?} ${CONTAINERD_CONFIG:?} ${NEW_CONFIG:?} ${MIGRATE_OUTPUT:?} ${BACKUP_DIR:?}"
: "${RESTART_TIMEOUT_SECONDS:?} ${DOCKER_SOCKET:?} ${CTR_RUN_IMAGE:-} ${CTR_RUN_COMMAND:-} ${DOCKER_RUN_IMAGE:-}"
export DEBIAN_FRONTEND=noninteractive

fail() { printf 'migrate-containerd: %s\n' "$1" >&2; [ -z "${2:-}" ] || printf 'hint: %s\n' "$2" >&2; exit 1; }
section() { printf '@@%s\n' "$1"; }
# dpkg-query's own ${Version} field syntax, not a shell expansion.
# shellcheck disable=SC2016
package_version() { dpkg-query -W -f '${Version}\n' "$1"; }
# Runs a read: its stdout under a section, its stderr under NAME.stderr, its exit status under
# NAME.exit; never fails the script (the host judges).
read_section() {
  name=$1; shift
  err=$(mktemp)
  section "$name"
  set +e
  "$@" 2> "$err"
  rc=$?
  set -e
  section "$name.stderr"
  cat "$err"
  rm -f "$err"
  section "$name.exit"
  printf '%s\n' "$rc"
}

# A node just booted may answer SSH before containerd (or dockerd) is up: wait, bounded.
wait_until() {
  i=0
  until "$@" > /dev/null 2>&1; do
    i=$((i + 1))
    [ "$i" -le "$RESTART_TIMEOUT_SECONDS" ] || return 1
    sleep 1
  done
}

step_record() {
  wait_until ctr version || true
  read_section containerd-version containerd --version
  read_section package-version package_version "$CONTAINERD_PACKAGE"
  read_section images ctr -n k8s.io images ls
  read_section active systemctl is-active containerd
}

# Every .deb matches SHA256SUMS, and every pin package=version is one of them.
step_verify_debs() {
  [ -d "$DEB_DIR" ] || fail "no directory $DEB_DIR" "the host copies the pinned .debs there first"
  (cd "$DEB_DIR" && sha256sum --check --strict --quiet "$DEB_SUMS") \
    || fail "a .deb in $DEB_DIR does not match its pinned sha256" "fetch the .debs again from the lock; never install a file that differs from the lock"
  for pin in $PINS; do
    want_package=${pin%%=*}
    want_version=${pin#*=}
    found=
    for deb in "$DEB_DIR"/*.deb; do
      [ -e "$deb" ] || continue
      if [ "$(dpkg-deb -f "$deb" Package)" = "$want_package" ] && [ "$(dpkg-deb -f "$deb" Version)" = "$want_version" ]; then found=$deb; fi
    done
    [ -n "$found" ] || fail "no .deb in $DEB_DIR is $want_package $want_version" "the lock pins $want_package $want_version: fetch exactly that"
    printf 'verified %s %s (%s)\n' "$want_package" "$want_version" "${found##*/}"
  done
}

step_install() {
  set --
  for deb in "$DEB_DIR"/*.deb; do set -- "$@" "$deb"; done
  # apt's plan first: it may install or upgrade only the pinned packages (from these files) and
  # remove nothing, so nothing is downloaded and no other package moves.
  pinned=" "
  for pin in $PINS; do pinned="$pinned${pin%%=*} "; done
  plan=$(apt-get -s install -q -o Dpkg::Options::=--force-confold "$@" 2>&1) \
    || fail "apt-get cannot install $*: $(printf '%s' "$plan" | tail -n 5)" "on trixie containerd 2 needs only runc and libc6 ≥ 2.34, both in the image"
  extra=$(printf '%s\n' "$plan" | awk -v pinned="$pinned" '($1 == "Inst" || $1 == "Remv") && index(pinned, " " $2 " ") == 0 { printf "%s %s; ", $1, $2 }')
  [ -z "$extra" ] || fail "installing the pinned .debs would also change other packages: $extra" "pin those in the lock too, or find why apt wants them (apt-get -s install the .debs)"
  # Only this package, only this version: nothing else changes suite, and no later apt run moves it.
  printf 'Package: %s\nPin: version %s\nPin-Priority: 1001\n' "$CONTAINERD_PACKAGE" "$CONTAINERD_VERSION" > "$APT_PREFERENCES_FILE.new"
  mv "$APT_PREFERENCES_FILE.new" "$APT_PREFERENCES_FILE"
  mkdir -p "$BACKUP_DIR"
  cp -p "$CONTAINERD_CONFIG" "$BACKUP_DIR/config.toml"
  # confold: our config file stays until `configure` replaces it with the migrated one.
  apt-get install -y -q -o Acquire::Retries=0 -o Dpkg::Options::=--force-confold -o Dpkg::Options::=--force-confdef "$@" \
    || fail "apt-get could not install $*" "its output above says why; the old config is kept in $BACKUP_DIR"
  installed=$(package_version "$CONTAINERD_PACKAGE")
  [ "$installed" = "$CONTAINERD_VERSION" ] || fail "$CONTAINERD_PACKAGE is $installed after the install, expected $CONTAINERD_VERSION" "apt-cache policy $CONTAINERD_PACKAGE shows which source won"
  printf 'installed %s %s\n' "$CONTAINERD_PACKAGE" "$installed"
}

step_configure() {
  # containerd 2's own migration of the old file, kept for the host to compare with ours.
  containerd --config "$BACKUP_DIR/config.toml" config migrate > "$MIGRATE_OUTPUT.new" \
    || fail "containerd config migrate failed on $BACKUP_DIR/config.toml" "the old config is kept there; containerd 2 reads version 2 files too"
  mv "$MIGRATE_OUTPUT.new" "$MIGRATE_OUTPUT"
  install -m 0644 "$NEW_CONFIG" "$CONTAINERD_CONFIG.new"
  mv "$CONTAINERD_CONFIG.new" "$CONTAINERD_CONFIG"
  section migrated
  cat "$MIGRATE_OUTPUT"
}

step_restart() {
  systemctl restart containerd || fail "containerd did not restart" "journalctl -u containerd -n 50"
  wait_until ctr version || fail "containerd did not answer on its socket within ${RESTART_TIMEOUT_SECONDS}s" "journalctl -u containerd -n 50"
  read_section ctr-version ctr version
}

step_check() {
  read_section config-dump containerd config dump
  read_section plugins ctr plugins ls
  step_record
}

step_ctr_run() {
  [ -n "$CTR_RUN_IMAGE" ] || { section ctr-run; printf 'no image to run\n'; section ctr-run.exit; printf 'skipped\n'; return 0; }
  # CTR_RUN_COMMAND is argv words without spaces (the host checks): split on purpose.
  # shellcheck disable=SC2086
  read_section ctr-run timeout 120 ctr -n k8s.io run --rm "$CTR_RUN_IMAGE" labsmith-upgrade-probe $CTR_RUN_COMMAND
}

# Docker through its Engine API on the socket (the image has dockerd but not the docker CLI, which
# trixie packages apart as docker-cli): what breaks or works is the daemon against containerd 2.
docker_api() { curl -sS --fail-with-body --max-time 120 --unix-socket "$DOCKER_SOCKET" "$@"; }

# create (with a TTY, so the log is plain text), start, wait, logs, remove; exit status: the container's.
docker_run_api() {
  created=$(docker_api -X POST -H 'Content-Type: application/json' -d "{\"Image\":\"$DOCKER_RUN_IMAGE\",\"Tty\":true}" http://localhost/containers/create) || { printf '%s\n' "$created"; return 1; }
  id=$(printf '%s' "$created" | sed -n 's/.*"Id":"\([0-9a-f]*\)".*/\1/p')
  [ -n "$id" ] || { printf 'no container id in: %s\n' "$created"; return 1; }
  rc=0
  docker_api -X POST "http://localhost/containers/$id/start" || rc=1
  waited=$(docker_api -X POST "http://localhost/containers/$id/wait") || rc=1
  docker_api "http://localhost/containers/$id/logs?stdout=1&stderr=1" || rc=1
  docker_api -X DELETE "http://localhost/containers/$id?force=1" > /dev/null || true
  code=$(printf '%s' "$waited" | sed -n 's/.*"StatusCode":\([0-9]*\).*/\1/p')
  if [ "$rc" != 0 ] || [ "$code" != 0 ]; then
    printf '\nwait: %s\n' "$waited"
    return 1
  fi
}

step_docker() {
  [ -S "$DOCKER_SOCKET" ] || { section docker-info; printf 'docker: not installed\n'; section docker-info.exit; printf '127\n'; return 0; }
  # Socket-activated: the first request starts dockerd.
  wait_until docker_api http://localhost/_ping || true
  read_section docker-info docker_api http://localhost/info
  read_section docker-version docker_api http://localhost/version
  if [ -n "$DOCKER_RUN_IMAGE" ]; then
    read_section docker-run docker_run_api
  fi
}

case "$STEP" in
  record) step_record ;;
  verify-debs) step_verify_debs ;;
  install) step_install ;;
  configure) step_configure ;;
  restart) step_restart ;;
  check) step_check ;;
  ctr-run) step_ctr_run ;;
  docker) step_docker ;;
  *) fail "unknown step $STEP" "steps: record verify-debs install configure restart check ctr-run docker" ;;
esac
