/**
 * The first-boot bootstrap (pure renderers): one systemd unit runs one script that brings the
 * cluster up from the files the seed delivered. Each step logs its start and end, waits on
 * readiness (never a fixed sleep), and leaves a marker, so a reboot mid-way resumes where it
 * stopped and a finished bootstrap does nothing.
 */
import { BOOTSTRAP_PATHS } from '../core/paths.ts';
import type { AddonManifest } from './addons/bundle.ts';
import { CERT_MANAGER } from './addons/cert-manager.ts';
import { TRAEFIK_NAMESPACE } from './addons/traefik.ts';


export const BOOTSTRAP_UNIT = 'labsmith-bootstrap.service';

export interface BootstrapPlan {
  /** The add-on manifests in apply order (file names sort into it). */
  addons: AddonManifest[];
  dnsDomain: string;
}

/** Seconds each wait may take under emulation (TCG): generous, since a wait ends as soon as the thing is ready. */
const WAIT = { api: 600, node: 900, rollout: 900, certificate: 600, dns: 300 } as const;

function stepName(file: string): string {
  return file.replace(/^\d+-/, '').replace(/\.yaml$/, '');
}

/** What must be ready after an add-on is applied, before the next one goes in. */
function readinessAfter(file: string): string[] {
  switch (stepName(file)) {
    case 'calico':
      return [
        `wait_for "calico-node ready" ${WAIT.rollout} kubectl -n kube-system rollout status daemonset/calico-node --timeout=10s`,
        `wait_for "node Ready" ${WAIT.node} kubectl wait --for=condition=Ready node --all --timeout=10s`,
        `wait_for "CoreDNS ready" ${WAIT.rollout} kubectl -n kube-system rollout status deployment/coredns --timeout=10s`,
      ];
    case 'cert-manager':
      return ['cert-manager', 'cert-manager-cainjector', 'cert-manager-webhook'].map(
        (d) => `wait_for "${d} ready" ${WAIT.rollout} kubectl -n ${CERT_MANAGER.namespace} rollout status deployment/${d} --timeout=10s`,
      );
    case 'lab-tls':
      return [`wait_for "wildcard certificate Ready" ${WAIT.certificate} kubectl -n ${TRAEFIK_NAMESPACE} wait --for=condition=Ready certificate/lab-wildcard --timeout=10s`];
    case 'local-path':
      return [`wait_for "local-path-provisioner ready" ${WAIT.rollout} kubectl -n local-path-storage rollout status deployment/local-path-provisioner --timeout=10s`];
    case 'traefik':
      return [`wait_for "traefik ready" ${WAIT.rollout} kubectl -n ${TRAEFIK_NAMESPACE} rollout status deployment/traefik --timeout=10s`];
    default:
      return [];
  }
}

export function renderBootstrapScript(plan: BootstrapPlan): string {
  const P = BOOTSTRAP_PATHS;
  const addons = [...plan.addons].sort((a, b) => (a.file < b.file ? -1 : 1));
  const applySteps = addons.flatMap((a) => [
    // The webhook may still be starting when its deployment reports ready: apply retries.
    `step ${stepName(a.file)} apply_with_retry ${P.dir}/${a.file}`,
    ...readinessAfter(a.file),
  ]);
  return `#!/bin/bash
# Written by labsmith: brings the single-node cluster up from ${P.dir}. Idempotent.
set -euo pipefail
# The defaults are the node's paths; tests point them elsewhere.
admin=\${LABSMITH_ADMIN_KUBECONFIG:-${P.adminKubeconfig}}
state=\${LABSMITH_BOOTSTRAP_STATE:-${P.stateDir}}
export KUBECONFIG=$admin
mkdir -p "$state"

log() { echo "labsmith-bootstrap: $*"; }

# step NAME COMMAND...: runs once; a marker records it, so reboots resume after the last finished step.
step() {
  local name=$1; shift
  if [ -e "$state/$name.done" ]; then log "$name: already done"; return 0; fi
  log "$name: start"
  local started=$SECONDS
  "$@"
  touch "$state/$name.done"
  log "$name: done in $((SECONDS - started))s"
}

# wait_for WHAT SECONDS COMMAND...: polls until COMMAND succeeds; fails the unit with the last output.
wait_for() {
  local what=$1 timeout=\${LABSMITH_MAX_WAIT:-$2}; shift 2
  local deadline=$((SECONDS + timeout)) out
  log "waiting: $what"
  until out=$("$@" 2>&1); do
    if [ "$SECONDS" -ge "$deadline" ]; then
      log "$what: not ready after \${timeout}s: $(echo "$out" | tail -n 3)"
      return 1
    fi
    sleep 3
  done
  log "ready: $what"
}

apply_with_retry() {
  local file=$1 deadline=$((SECONDS + \${LABSMITH_MAX_WAIT:-${WAIT.rollout}}))
  until kubectl apply --server-side --force-conflicts --field-manager=labsmith -f "$file"; do
    if [ "$SECONDS" -ge "$deadline" ]; then log "apply $file: still failing"; return 1; fi
    sleep 5
  done
}

kubeadm_init() {
  if [ -e "$admin" ]; then log "kubeadm: cluster exists"; return 0; fi
  kubeadm init --config ${P.kubeadmConfig} --skip-token-print
}

if [ -e "$state/complete" ]; then log "bootstrap complete before; nothing to do"; exit 0; fi
step images systemctl start labsmith-import-images.service
step kubeadm-init kubeadm_init
wait_for "API server" ${WAIT.api} kubectl get --raw /readyz
${applySteps.join('\n')}
wait_for "CoreDNS answers kubernetes.default.svc.${plan.dnsDomain}" ${WAIT.dns} python3 ${P.dnsProbe} "$(kubectl -n kube-system get service kube-dns -o jsonpath='{.spec.clusterIP}')" kubernetes.default.svc.${plan.dnsDomain}
touch "$state/complete"
log "complete"
`;
}

export function renderBootstrapUnit(): string {
  return `[Unit]
Description=labsmith: bring up the single-node Kubernetes cluster
Wants=network-online.target
After=network-online.target containerd.service labsmith-import-images.service
ConditionPathExists=!${BOOTSTRAP_PATHS.complete}

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=${BOOTSTRAP_PATHS.script}
TimeoutStartSec=infinity

[Install]
WantedBy=multi-user.target
`;
}

/**
 * A DNS A query over UDP (or TCP with --tcp) with the standard library only: the image has
 * python3 but no dig. Exit 0 when the answer has at least one address; prints them.
 */
export function renderDnsProbeScript(): string {
  return `#!/usr/bin/env python3
# Written by labsmith: dns-query.py SERVER NAME [--tcp] [--port N]
import random, socket, struct, sys

def query(server, name, tcp, port=53):
    qid = random.randrange(65536)
    packet = struct.pack('>HHHHHH', qid, 0x0100, 1, 0, 0, 0)
    packet += b''.join(bytes([len(p)]) + p.encode() for p in name.rstrip('.').split('.')) + b'\\0'
    packet += struct.pack('>HH', 1, 1)
    if tcp:
        with socket.create_connection((server, port), timeout=3) as s:
            s.sendall(struct.pack('>H', len(packet)) + packet)
            size = struct.unpack('>H', s.recv(2))[0]
            data = b''
            while len(data) < size:
                data += s.recv(size - len(data))
    else:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(3)
        s.sendto(packet, (server, port))
        data = s.recv(4096)
    rid, flags, _, ancount = struct.unpack('>HHHH', data[:8])
    if rid != qid:
        raise SystemExit('answer id mismatch')
    if flags & 0xF:
        raise SystemExit('rcode %d' % (flags & 0xF))
    pos, addresses = 12, []
    while data[pos] != 0:
        pos += data[pos] + 1
    pos += 5
    for _ in range(ancount):
        pos += 2 if data[pos] & 0xC0 == 0xC0 else len(data[pos:].split(b'\\0', 1)[0]) + 1
        rtype, _, _, rdlength = struct.unpack('>HHIH', data[pos:pos + 10])
        pos += 10
        if rtype == 1:
            addresses.append(socket.inet_ntoa(data[pos:pos + rdlength]))
        pos += rdlength
    return addresses

if __name__ == '__main__':
    extra = sys.argv[3:]
    port = int(extra[extra.index('--port') + 1]) if '--port' in extra else 53
    found = query(sys.argv[1], sys.argv[2], '--tcp' in extra, port)
    if not found:
        raise SystemExit('no A record for ' + sys.argv[2])
    print(' '.join(found))
`;
}
