/** Network probes the checks use: plain HTTP and verified HTTPS (no insecure flags). */
import http from 'node:http';
import https from 'node:https';
import { checkServerIdentity, type PeerCertificate, type TLSSocket } from 'node:tls';

export interface HttpAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  /** The server's certificate (HTTPS only). */
  peer?: PeerCertificate;
}

export interface HttpProbeRequest {
  address: string;
  port: number;
  /** Host header (and SNI for HTTPS). */
  host: string;
  path?: string;
  signal?: AbortSignal;
}

export function httpGet(req: HttpProbeRequest): Promise<HttpAnswer> {
  return request(http, { hostname: req.address, port: req.port, path: req.path ?? '/', headers: { Host: req.host }, signal: req.signal });
}

/**
 * HTTPS that verifies the chain against `ca` and the certificate against `host`. `skipNameCheck`
 * keeps chain verification but not the name: only for asking which certificate an unknown SNI gets.
 */
export function httpsGet(req: HttpProbeRequest & { ca: string; skipNameCheck?: boolean }): Promise<HttpAnswer> {
  return request(https, {
    hostname: req.address,
    port: req.port,
    path: req.path ?? '/',
    headers: { Host: req.host },
    servername: isIp(req.host) ? undefined : req.host,
    ca: req.ca,
    // Verify the certificate against the name the user would type, not the address we dial.
    checkServerIdentity: (_h: string, cert: PeerCertificate) => (req.skipNameCheck ? undefined : checkServerIdentity(req.host, cert)),
    rejectUnauthorized: true,
    agent: false,
    signal: req.signal,
  });
}

function isIp(host: string): boolean {
  return /^\d+\.\d+\.\d+\.\d+$/.test(host);
}

function request(mod: typeof http | typeof https, options: https.RequestOptions): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const req = mod.request({ ...options, method: 'GET', timeout: 10_000 }, (res) => {
      // Read the certificate now: the socket is released once the body ends.
      const socket = res.socket as TLSSocket | null;
      const peer = typeof socket?.getPeerCertificate === 'function' ? socket.getPeerCertificate() : undefined;
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8'), peer });
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('no answer within 10s')));
    req.on('error', reject);
    req.end();
  });
}
