/** Files the recipe writes into the root filesystem and the ESP (pure renderers). */
import { renderContainerdConfig } from '../cloud-init/containerd-config.ts';
import { GUEST_PATHS } from '../core/paths.ts';

// One serial console (the lab's serial.log, the first thing to read when a boot stalls) and the
// screen for a server on hardware. `quiet`: every console line is emulated I/O under TCG; systemd
// still reports failed and slow units there. `no_timer_check`: on a loaded host an emulated CPU
// misses the IO-APIC timer test's window and the kernel panics ("IO-APIC + timer doesn't work").
// `panic=10`: a server (or a lab VM) that panics reboots after 10 s instead of hanging until someone
// notices; seen under TCG as a rare early "Oops: int3" in sched_clock_cpu while the kernel patches itself.
export const KERNEL_CMDLINE = 'ro console=tty0 console=ttyS0,115200n8 quiet no_timer_check panic=10';

/** The whole kernel command line, as GRUB passes it and as a lab's direct kernel boot passes it. */
export function renderKernelCommandLine(rootUuid: string): string {
  return `root=UUID=${rootUuid} ${KERNEL_CMDLINE}`;
}

/**
 * A lab's direct kernel boot: no initramfs. The Debian cloud kernel has NVMe and ext4 built in
 * (virtio-blk is a module only the initramfs would load), so the lab's disks are NVMe and the
 * kernel mounts root itself by partition GUID (it cannot read filesystem UUIDs): under TCG this
 * skips about 8 s of unpacking and running the initramfs. `rootwait=30`: a missing disk panics
 * (and `panic=10` stops the lab with its console) instead of waiting forever. No root fsck:
 * without the initramfs's, systemd would run one, 2-4 s under TCG on the way to SSH, on a lab's
 * fresh overlay; the kernel still replays ext4's journal after a crash. `cryptomgr.notests`: the kernel self-tests every crypto driver it
 * registers (at boot, then each CPU-accelerated module udev loads): ~1 s of emulated CPU in a
 * lab; a user's server, booted by GRUB, keeps them.
 */
export function renderDirectBootCommandLine(rootPartGuid: string): string {
  return `root=PARTUUID=${rootPartGuid} rootfstype=ext4 rootwait=30 systemd.mask=systemd-fsck-root.service modprobe.blacklist=${DIRECT_BOOT_BLACKLIST.join(',')} cryptomgr.notests=1 ${KERNEL_CMDLINE}`;
}

/**
 * Modules a lab's udev would load at the same moment as cloud-init's start, for hardware no lab
 * uses: q35's SATA controller (its driver stack is a second of the emulated CPU and 31 more devices
 * for udev, and holds no lab disk), and KVM for the SVM/VMX that TCG's CPU model advertises (1.8 s
 * of the emulated CPU for kvm_amd alone). A lab runs no nested VMs.
 */
export const DIRECT_BOOT_BLACKLIST = ['ahci', 'kvm_amd', 'kvm_intel'] as const;

export const SSH_SERVICE_DROP_IN = '[Service]\nExecStartPre=\nCPUWeight=500\n';
export const CONTAINERD_SERVICE_DROP_IN = '[Service]\nExecStartPre=\n';

/** Sorts before cloud-init's own 50-cloud-init.conf: sshd keeps the first value it reads. */
export const SSHD_CONFIG_FILE = '/etc/ssh/sshd_config.d/10-labsmith.conf';

/** kubeadm's preflight needs these; baked, so the first boot loads and applies them itself (no runcmd). */
export const KUBERNETES_MODULES = ['overlay', 'br_netfilter'] as const;
export const KUBERNETES_SYSCTL_FILE = '/etc/sysctl.d/90-labsmith-kubernetes.conf';
export const KUBERNETES_SYSCTLS: Record<string, string> = {
  'net.bridge.bridge-nf-call-iptables': '1',
  'net.bridge.bridge-nf-call-ip6tables': '1',
  'net.ipv4.ip_forward': '1',
};

export interface FileSpec {
  content: string;
  mode: number;
}

/** "1A2B3C4D" → "1A2B-3C4D", the way FAT volume ids appear in /dev/disk/by-uuid and fstab. */
export function fatUuid(volumeId: string): string {
  return `${volumeId.slice(0, 4)}-${volumeId.slice(4, 8)}`;
}

/** An initramfs-tools hook (after udev's) that leaves udev's hardware database out of the initramfs. */
export const INITRAMFS_NO_HWDB_HOOK = `#!/bin/sh
# initramfs-tools hook: after udev's, which copies hwdb.bin.
set -e
PREREQ="udev"
prereqs() { echo "$PREREQ"; }
case "\${1:-}" in prereqs) prereqs; exit 0 ;; esac
rm -f "\${DESTDIR:?}/usr/lib/udev/hwdb.bin"
`;

/** Written before packages are installed (the initramfs is built during installation). */
export function renderEarlyRootfsFiles(): Record<string, FileSpec> {
  return {
    // Inside a chroot initramfs-tools cannot detect the root filesystem type.
    'etc/initramfs-tools/conf.d/labsmith.conf': { content: 'FSTYPE=ext4\n', mode: 0o644 },
    // udev's hook copies its hardware database (13 MiB, a third of the initramfs) into it; finding
    // and mounting the root filesystem needs none of it, and the real root has its own.
    'etc/initramfs-tools/hooks/labsmith-no-hwdb': { content: INITRAMFS_NO_HWDB_HOOK, mode: 0o755 },
  };
}

/** Written after packages are installed. */
export function renderLateRootfsFiles(opts: { rootUuid: string; espVolumeId: string }): Record<string, FileSpec> {
  return {
    // The ESP on first access (automount): under TCG udev names it only after a plain mount's
    // device wait has given up, which left /boot/efi unmounted on every lab; nofail and the
    // device timeout keep a machine without it booting, and a grub or shim update still finds it.
    'etc/fstab': {
      content:
        `UUID=${opts.rootUuid} / ext4 defaults,errors=remount-ro 0 1\n` +
        `UUID=${fatUuid(opts.espVolumeId)} /boot/efi vfat umask=0077,nofail,x-systemd.automount,x-systemd.device-timeout=10s 0 2\n`,
      mode: 0o644,
    },
    // Kernel upgrades move the /vmlinuz and /initrd.img links, so this file never needs regenerating.
    'boot/grub/grub.cfg': {
      content: [
        'set timeout=0',
        'serial --unit=0 --speed=115200',
        'terminal_input serial console',
        'terminal_output serial console',
        `search --no-floppy --fs-uuid --set=root ${opts.rootUuid}`,
        'menuentry "Debian" {',
        `  linux /vmlinuz ${renderKernelCommandLine(opts.rootUuid)}`,
        '  initrd /initrd.img',
        '}',
        '',
      ].join('\n'),
      mode: 0o644,
    },
    // The build host's name must not leak into the image; cloud-init sets the real one.
    'etc/hostname': { content: 'localhost\n', mode: 0o644 },
    'etc/cloud/cloud.cfg.d/90-labsmith.cfg': {
      content: [
        '# Only the NoCloud seed is offered; skip probing cloud metadata services.',
        'datasource_list: [NoCloud, None]',
        '# The image has neither ifupdown nor netplan: render straight for systemd-networkd.',
        'system_info:',
        '  network:',
        '    renderers: [networkd]',
        '    activators: [networkd]',
        '',
      ].join('\n'),
      mode: 0o644,
    },
    // systemd-modules-load runs before systemd-sysctl, so the bridge sysctls exist when applied.
    'etc/modules-load.d/labsmith-kubernetes.conf': { content: KUBERNETES_MODULES.join('\n') + '\n', mode: 0o644 },
    [KUBERNETES_SYSCTL_FILE.slice(1)]: {
      content: Object.entries(KUBERNETES_SYSCTLS).map(([k, v]) => `${k} = ${v}`).join('\n') + '\n',
      mode: 0o644,
    },
    // Nothing in it is per lab: baked, so containerd starts configured and nobody restarts it.
    // The Kubernetes layer writes it again with the locked pause image.
    [GUEST_PATHS.containerdConfig.slice(1)]: { content: renderContainerdConfig({}), mode: 0o644 },
    // Fallback when no seed configures the network (cloud-init's own file sorts first and wins).
    'etc/systemd/network/90-labsmith-dhcp.network': {
      content: '[Match]\nName=en* eth*\n\n[Network]\nDHCP=ipv4\n',
      mode: 0o644,
    },
    'boot/efi/.keep': { content: '', mode: 0o644 },
    // What cloud-init's locale, timezone and set_passwords modules would set at every first boot
    // (~7 s under TCG, and a restart of sshd): the image is born with it. /etc/localtime is
    // already Etc/UTC. Keys only, for the lab and a user's server alike; sshd takes the first value.
    'etc/default/locale': { content: 'LANG=C.UTF-8\n', mode: 0o644 },
    [SSHD_CONFIG_FILE.slice(1)]: { content: 'PasswordAuthentication no\nKbdInteractiveAuthentication no\n', mode: 0o644 },
    // sshd -D refuses a bad configuration itself; the separate `sshd -t` first is a second start of
    // sshd (seconds under emulation) on the way to SSH. A reload still tests first.
    // CPUWeight: the first login's handshake competed with containerd's, rsyslog's and cloud-init's
    // start and took 5 s under TCG; an operator's SSH (whose sessions stay in this unit: the image
    // has no pam_systemd) stays responsive on a loaded machine. Workloads (kubepods.slice) are
    // not its siblings, so they keep their share.
    'etc/systemd/system/ssh.service.d/10-labsmith.conf': { content: SSH_SERVICE_DROP_IN, mode: 0o644 },
    // Its `modprobe overlay` first is a process on the way to cloud-init's final stage; the module
    // is loaded at boot (modules-load.d above).
    'etc/systemd/system/containerd.service.d/10-labsmith.conf': { content: CONTAINERD_SERVICE_DROP_IN, mode: 0o644 },
  };
}

/** The ESP's grub.cfg: find the root filesystem by UUID and hand over to its grub.cfg. */
export function renderEspGrubConfig(rootUuid: string): string {
  return [`search --no-floppy --fs-uuid --set=root ${rootUuid}`, 'set prefix=($root)/boot/grub', 'configfile /boot/grub/grub.cfg', ''].join('\n');
}

/** Services the image enables: cloud-init renders systemd-networkd configuration. */
export const ENABLED_UNITS = ['systemd-networkd.service', 'systemd-resolved.service'] as const;

/** Docker starts on first use of its socket: nothing at boot needs it, and starting it costs ~15 s under TCG. */
export const SOCKET_ACTIVATED_UNITS = ['docker.service'] as const;

/**
 * Periodic or boot-time jobs with nothing to do in a pinned image (it is rebuilt, not upgraded in
 * place, and has no LVM for e2scrub): each would compete with the first boot for the CPU.
 */
export const MASKED_UNITS = [
  'apt-daily.timer', 'apt-daily-upgrade.timer', 'e2scrub_all.timer', 'e2scrub_reap.service',
  // Modules loaded ahead of need for a desktop or EFI variables: each is a unit and a modprobe under
  // emulation at the same moment as the root device and cloud-init; the kernel loads them on use.
  'modprobe@drm.service', 'modprobe@efi_pstore.service', 'modprobe@fuse.service', 'modprobe@configfs.service',
  // Loads the profiles in /etc/apparmor.d, where the image's dpkg excludes every package's profile
  // (DPKG_EXCLUDES): 4-5 s of shell and apparmor_parser under emulation, loading nothing. Docker and
  // containerd load their own profiles when they start; the LSM itself is the kernel's.
  'apparmor.service',
  // Its one entry runs .pyc files as programs; a server that needs foreign binaries unmasks it.
  'systemd-binfmt.service',
] as const;

/**
 * systemd generators with nothing to find here, each a process before the first unit starts: root
 * and the ESP are in fstab (no GPT auto-discovery), no swap to resume from, no TPM, sshd has its
 * own units, no offline updates. Masked by a link to /dev/null in /etc/systemd/system-generators.
 */
export const MASKED_GENERATORS = ['systemd-gpt-auto-generator', 'systemd-hibernate-resume-generator', 'systemd-tpm2-generator', 'systemd-ssh-generator', 'systemd-system-update-generator'] as const;

/** A Python package only cloud-init's schema validation imports (see the configure hook). */
export const CLOUD_INIT_SKIPPED_MODULE = '/usr/lib/python3/dist-packages/jsonschema';

/** Shell run by mmdebstrap after installation: enables services offline. */
export function renderConfigureHook(): string {
  return `#!/bin/sh
# mmdebstrap customize hook: $1 is the root of the new system.
set -eu
chroot "$1" systemctl enable ${ENABLED_UNITS.join(' ')}
chroot "$1" systemctl disable ${SOCKET_ACTIVATED_UNITS.join(' ')}
chroot "$1" systemctl mask ${MASKED_UNITS.join(' ')}
mkdir -p "$1/etc/systemd/system-generators"
for generator in ${MASKED_GENERATORS.join(' ')}; do ln -sf /dev/null "$1/etc/systemd/system-generators/$generator"; done
# /etc and /var are as new as /usr: the ConditionNeedsUpdate units (ldconfig, the journal
# catalog, systemd-update-done) skip on first boot. Empty files, so their clamped mtime is all
# systemd compares (the layer's tar clamps /usr and these to the same second).
: > "$1/etc/.updated"
: > "$1/var/.updated"
# cloud-init imports jsonschema at start-up (a fifth of its imports: seconds under emulation) only to
# validate the seed against its schema, and skips that when the module is absent. The seeds are
# validated where they are rendered (the tests run \`cloud-init schema\` on them). Removed after
# installation, so the package's own bytecode compilation still finds its files.
rm -rf "$1${CLOUD_INIT_SKIPPED_MODULE}"
`;
}

/** Shell run by mmdebstrap after installation: removes everything per-machine or from the build host. */
export function renderHygieneHook(): string {
  return `#!/bin/sh
# mmdebstrap customize hook: $1 is the root of the new system.
set -eu
root="$1"
rm -f "$root"/etc/ssh/ssh_host_*
: > "$root/etc/machine-id"
rm -f "$root/var/lib/dbus/machine-id"
rm -rf "$root/var/lib/cloud"
find "$root/var/log" -type f -delete
find "$root/var/cache/debconf" -name '*-old' -delete
rm -f "$root/var/cache/ldconfig/aux-cache"
rm -f "$root/root/.bash_history"
# /tmp and /var/tmp are emptied by mmdebstrap itself after this hook (it still needs them).
`;
}
