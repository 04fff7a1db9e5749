/**
 * A placeholder for the ingress controller until the cluster carries one: answers 404 on the
 * ingress NodePorts (plain HTTP and TLS with the lab CA's certificate), so the host
 * forwards can be proven end to end. It names itself in every response.
 */

export const PLACEHOLDER_SERVER_HEADER = 'labsmith-placeholder-ingress';

export function renderPlaceholderScript(opts: { httpPort: number; httpsPort: number }): string {
  return `#!/usr/bin/python3
# labsmith placeholder ingress: 404 for every request until a real ingress controller exists.
import http.server, os, ssl, threading

class Handler(http.server.BaseHTTPRequestHandler):
    server_version = "${PLACEHOLDER_SERVER_HEADER}"
    sys_version = ""
    def do_GET(self):
        body = b"404 page not found (labsmith placeholder ingress)\\n"
        self.send_response(404)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    do_HEAD = do_POST = do_PUT = do_DELETE = do_GET
    def log_message(self, *args):
        pass

def serve(port, tls):
    httpd = http.server.ThreadingHTTPServer(("0.0.0.0", port), Handler)
    if tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        creds = os.environ["CREDENTIALS_DIRECTORY"]  # systemd LoadCredential: the key stays root-only on disk
        ctx.load_cert_chain(os.path.join(creds, "tls.crt"), os.path.join(creds, "tls.key"))
        httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    httpd.serve_forever()

threading.Thread(target=serve, args=(${opts.httpsPort}, True), daemon=True).start()
serve(${opts.httpPort}, False)
`;
}

export function renderPlaceholderUnit(opts: { scriptPath: string; certFile: string; keyFile: string }): string {
  return `[Unit]
Description=labsmith placeholder ingress (404 on the ingress NodePorts until the cluster has an ingress controller)
After=network-online.target

[Service]
ExecStart=${opts.scriptPath}
Restart=on-failure
DynamicUser=yes
LoadCredential=tls.crt:${opts.certFile}
LoadCredential=tls.key:${opts.keyFile}

[Install]
WantedBy=multi-user.target
`;
}
