/**
 * A placeholder for the ingress controller in an OS-only lab (pure renderers): answers 404 on the
 * ingress NodePorts (plain HTTP and TLS with the lab CA's certificate), so the host forwards can
 * be proven end to end. It names itself in every response. The server is
 * cloud-init/guest/placeholder-ingress.py, shipped as it is; its ports go in its parameter file.
 */
import { GUEST_PARAM_FILES, GUEST_PATHS } from '../core/paths.ts';
import { renderParamFile } from './guest-params.ts';
import { guestScript } from './guest-scripts.ts';

export const PLACEHOLDER_SERVER_HEADER = 'labsmith-placeholder-ingress';
/** Seconds a client may take to finish the TLS handshake before its connection is dropped. */
export const PLACEHOLDER_HANDSHAKE_TIMEOUT = 10;

export interface PlaceholderOptions {
  httpPort: number;
  httpsPort: number;
  /** Every address in the guest; a test binds loopback. */
  listenAddress?: string;
  handshakeTimeout?: number;
}

export function renderPlaceholderParams(opts: PlaceholderOptions): string {
  return renderParamFile('placeholder-ingress.py', {
    LISTEN_ADDRESS: opts.listenAddress ?? '0.0.0.0',
    HTTP_PORT: opts.httpPort,
    HTTPS_PORT: opts.httpsPort,
    SERVER_NAME: PLACEHOLDER_SERVER_HEADER,
    HANDSHAKE_TIMEOUT: opts.handshakeTimeout ?? PLACEHOLDER_HANDSHAKE_TIMEOUT,
  });
}

/** The server itself: the repository's file, unchanged (the ports are parameters). */
export function placeholderScript(): string {
  return guestScript('placeholderIngress');
}

/** @deprecated the ports moved to the parameter file; kept so older callers still get the script. */
export function renderPlaceholderScript(_opts?: { httpPort: number; httpsPort: number }): string {
  return placeholderScript();
}

export function renderPlaceholderUnit(opts: { scriptPath?: string; certFile: string; keyFile: string }): string {
  return `[Unit]
Description=labsmith placeholder ingress (404 on the ingress NodePorts until the cluster has an ingress controller)
After=network-online.target

[Service]
ExecStart=${opts.scriptPath ?? GUEST_PATHS.placeholderScript} ${GUEST_PARAM_FILES.placeholderIngress}
Restart=on-failure
DynamicUser=yes
LoadCredential=tls.crt:${opts.certFile}
LoadCredential=tls.key:${opts.keyFile}

[Install]
WantedBy=multi-user.target
`;
}
