/**
 * Container log forwarding, as on the production server (pure): rsyslog imfile follows
 * /var/log/containers/*.log, takes namespace and pod from the file name
 * (<pod>_<namespace>_<container>-<id>.log), unwraps the CRI line (or Docker's JSON with
 * mmjsonparse) and forwards it to the configured syslog target tagged "<namespace>/<pod>".
 */

export interface LogTarget {
  host: string;
  port: number;
  protocol: 'udp' | 'tcp';
}

export interface RsyslogOptions {
  target: LogTarget;
  /** The files to follow (the kubelet's symlinks). */
  glob?: string;
  /** Where imfile keeps its read positions. */
  workDirectory?: string;
}

export const CONTAINER_LOG_GLOB = '/var/log/containers/*.log';

/** A RainerScript string literal: backslash, quote and dollar are escaped. */
function quote(value: string): string {
  return `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\$/g, '\\$')}"`;
}

export function renderRsyslogForwarding(opts: RsyslogOptions): string {
  const glob = opts.glob ?? CONTAINER_LOG_GLOB;
  const dir = glob.slice(0, glob.lastIndexOf('/') + 1).replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const { target } = opts;
  return `# Written by labsmith: container logs to ${target.protocol}://${target.host}:${target.port}
${opts.workDirectory ? `global(workDirectory=${quote(opts.workDirectory)})\n` : ''}module(load="imfile")
module(load="mmjsonparse")

input(type="imfile" File=${quote(glob)} Tag="k8s" addMetadata="on" reopenOnTruncate="on" Ruleset="labsmith-containers")

template(name="labsmith-container" type="list") {
  constant(value="<") property(name="pri") constant(value=">")
  property(name="timereported" dateFormat="rfc3339")
  constant(value=" ") property(name="hostname")
  constant(value=" ") property(name="$!namespace") constant(value="/") property(name="$!pod")
  constant(value=": ") property(name="$!line")
}

ruleset(name="labsmith-containers") {
  set $!pod = re_extract($!metadata!filename, ${quote(`^${dir}([^_]+)_`)}, 0, 1, "unknown");
  set $!namespace = re_extract($!metadata!filename, ${quote(`^${dir}[^_]+_([^_]+)_`)}, 0, 1, "unknown");
  action(type="mmjsonparse" cookie="")
  if $parsesuccess == "OK" then {
    set $!line = $!log;
  } else {
    # CRI format: <time> <stream> <P|F> <message>
    set $!line = re_extract($msg, ${quote('^[^ ]+ (stdout|stderr) [FP] (.*)$')}, 0, 2, $msg);
  }
  action(type="omfwd" target=${quote(target.host)} port=${quote(String(target.port))} protocol=${quote(target.protocol)} template="labsmith-container")
  stop
}
`;
}
