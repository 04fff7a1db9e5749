/** Host tools the project uses, the Debian package that provides each, and checks for them. */
import { existsSync } from 'node:fs';
import { LabError, MissingToolError } from './errors.ts';
import { commandExists } from './exec.ts';

export interface HostTool {
  /** A command on PATH, or an absolute path for files that are not commands. */
  command: string;
  aptPackage: string;
  purpose: string;
}

export const HOST_TOOLS: HostTool[] = [
  { command: 'qemu-system-x86_64', aptPackage: 'qemu-system-x86', purpose: 'boots labs' },
  { command: 'qemu-img', aptPackage: 'qemu-utils', purpose: 'overlay disks' },
  { command: 'qemu-io', aptPackage: 'qemu-utils', purpose: "writes a lab overlay's grown partition table and kernel options" },
  { command: 'grub-editenv', aptPackage: 'grub-common', purpose: "checks the GRUB environment block and grub.cfg files against GRUB's own tools (tests)" },
  { command: '/usr/share/OVMF/OVMF_CODE_4M.fd', aptPackage: 'ovmf', purpose: 'UEFI firmware for labs' },
  { command: 'mmdebstrap', aptPackage: 'mmdebstrap', purpose: 'builds the OS layers' },
  { command: 'sgdisk', aptPackage: 'gdisk', purpose: 'partition tables (tools layer has its own)' },
  { command: 'mkfs.vfat', aptPackage: 'dosfstools', purpose: 'ESP (tools layer has its own)' },
  { command: 'mcopy', aptPackage: 'mtools', purpose: 'ESP files (tools layer has its own)' },
  { command: '/usr/lib/grub/x86_64-efi/linux.mod', aptPackage: 'grub-efi-amd64-bin', purpose: 'GRUB modules (tools layer has its own)' },
  { command: 'mke2fs', aptPackage: 'e2fsprogs', purpose: 'ext4 (tools layer has its own)' },
  { command: 'unshare', aptPackage: 'util-linux', purpose: 'runs the disk tools in the tools layer with a private work mount' },
  { command: 'xorriso', aptPackage: 'xorriso', purpose: 'writes the cloud-init seed ISO' },
  { command: 'ssh', aptPackage: 'openssh-client', purpose: 'talks to labs' },
  { command: 'ssh-keygen', aptPackage: 'openssh-client', purpose: 'per-lab SSH keys' },
  { command: 'openssl', aptPackage: 'openssl', purpose: 'per-lab CA and certificates' },
  { command: 'cloud-init', aptPackage: 'cloud-init', purpose: 'validates rendered cloud-config (tests)' },
  { command: 'rsyslogd', aptPackage: 'rsyslog', purpose: 'validates rendered log forwarding (tests)' },
  { command: '/usr/sbin/nft', aptPackage: 'nftables', purpose: 'host port forwarding for libvirt labs' },
  { command: 'ip', aptPackage: 'iproute2', purpose: 'reads host routes for overlap checks' },
  { command: 'virsh', aptPackage: 'libvirt-clients', purpose: 'talks to libvirtd for --driver libvirt' },
  { command: 'gpg', aptPackage: 'gpg', purpose: 'checks the Kubernetes repository key fingerprint' },
  { command: 'gpgv', aptPackage: 'gpgv', purpose: 'verifies the Kubernetes repository signature' },
  { command: 'dpkg-deb', aptPackage: 'dpkg', purpose: "runs the locked kubeadm to list its images" },
  { command: 'xz', aptPackage: 'xz-utils', purpose: "reads the security suite's Packages.xz for the nightly report" },
  { command: 'skopeo', aptPackage: 'skopeo', purpose: 'resolves image digests and copies images into OCI archives' },
  { command: 'apt-ftparchive', aptPackage: 'apt-utils', purpose: 'builds the signed test apt repository (tests)' },
  { command: 'shellcheck', aptPackage: 'shellcheck', purpose: 'checks every guest script: cloud-init/guest/, lab/upgrade/guest/, lab/workloads/guest/, the build hooks (tests)' },
  { command: 'containerd', aptPackage: 'containerd', purpose: 'imports OCI archives in the image-import test (tests)' },
  { command: 'docker-registry', aptPackage: 'docker-registry', purpose: 'a registry on loopback for the digest and archive tests (tests)' },
  { command: 'htpasswd', aptPackage: 'apache2-utils', purpose: 'bcrypt htpasswd for the authenticated test registry of the registries: test (tests)' },
  { command: 'exim4', aptPackage: 'exim4-daemon-light', purpose: 'a real SMTP server (STARTTLS) for the user-check tests, run with a private config (tests)' },
  { command: 'dnsmasq', aptPackage: 'dnsmasq-base', purpose: 'a real DNS server (UDP and TCP) for the user-check tests; -base: no system service (tests)' },
  { command: 'dig', aptPackage: 'bind9-dnsutils', purpose: 'the reproduce command of dns user checks' },
  { command: 'debian-archive-keyring', aptPackage: 'debian-archive-keyring', purpose: 'verifies the Debian mirror' },
  // Restore (issue 11): Debian 12's etcd is 3.4, so lab/backup/etcd-tools.ts fetches trixie's 3.5 where the host's is older.
  { command: 'etcd', aptPackage: 'etcd-server', purpose: 'etcd for the snapshot and restore tests (tests)' },
  { command: 'etcdctl', aptPackage: 'etcd-client', purpose: 'etcd snapshots of a cluster backup' },
  { command: 'age', aptPackage: 'age', purpose: 'encrypts backups to age recipients' },
];

// The keyring is a file, not a command.
const FILE_CHECKS: Record<string, string> = {
  'debian-archive-keyring': '/usr/share/keyrings/debian-archive-keyring.gpg',
};

export async function isToolPresent(tool: HostTool): Promise<boolean> {
  const file = FILE_CHECKS[tool.command] ?? (tool.command.startsWith('/') ? tool.command : undefined);
  return file ? existsSync(file) : commandExists(tool.command);
}

export async function findMissingTools(tools: HostTool[] = HOST_TOOLS): Promise<HostTool[]> {
  const missing: HostTool[] = [];
  for (const tool of tools) if (!(await isToolPresent(tool))) missing.push(tool);
  return missing;
}

/** Throws MissingToolError naming every missing command and the apt-get line. */
export async function requireHostTools(commands: string[]): Promise<void> {
  const tools = commands.map((c) => HOST_TOOLS.find((t) => t.command === c) ?? { command: c, aptPackage: c, purpose: '' });
  const missing = await findMissingTools(tools);
  if (missing.length) throw new MissingToolError(missing);
}

export function requireRoot(why: string): void {
  if (process.getuid?.() !== 0) throw new LabError(`${why}, which needs root`, 'run it as root (for example with sudo -E npm run ...)');
}

export function renderAptInstallArgs(tools: HostTool[]): string[] {
  return ['install', '-y', '--no-install-recommends', ...[...new Set(tools.map((t) => t.aptPackage))].sort()];
}
