#!/usr/bin/python3
# labsmith placeholder ingress: answers 404, naming itself, on the ingress NodePorts (plain HTTP
# and TLS with the lab CA's certificate) until the cluster has an ingress controller.
# Usage: placeholder-ingress.py PARAMS_FILE (shell-quoted KEY='value' lines rendered by labsmith).
# The certificate and key come from systemd's LoadCredential ($CREDENTIALS_DIRECTORY): the key
# stays root-only on disk while the service runs as a dynamic user.
import http.server
import os
import shlex
import socket
import ssl
import sys
import threading


def read_params(path):
    """KEY='value' lines, quoted for the shell: shlex undoes exactly that quoting."""
    params = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            key, _, quoted = line.partition("=")
            words = shlex.split(quoted)
            params[key] = words[0] if words else ""
    return params


class Handler(http.server.BaseHTTPRequestHandler):
    sys_version = ""
    # A client that connects and then says nothing is dropped after this many seconds.
    timeout = 10

    def do_GET(self):
        body = b"404 page not found (labsmith placeholder ingress)\n"
        self.send_response(404)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_HEAD = do_POST = do_PUT = do_DELETE = do_GET

    def log_message(self, *args):
        pass


class TlsServer(http.server.ThreadingHTTPServer):
    """The TLS handshake runs in the connection's own thread, with a timeout, never in accept():
    one client that connects and stays silent cannot stall the listener."""

    def __init__(self, address, handler, context, handshake_timeout):
        super().__init__(address, handler)
        self.context = context
        self.handshake_timeout = handshake_timeout

    def finish_request(self, request, client_address):
        request.settimeout(self.handshake_timeout)
        try:
            tls = self.context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            request.close()
            return
        try:
            self.RequestHandlerClass(tls, client_address, self)
        finally:
            try:
                tls.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            tls.close()


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: placeholder-ingress.py PARAMS_FILE")
    params = read_params(sys.argv[1])
    Handler.server_version = params["SERVER_NAME"]
    address = params["LISTEN_ADDRESS"]
    http_server = http.server.ThreadingHTTPServer((address, int(params["HTTP_PORT"])), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    credentials = os.environ["CREDENTIALS_DIRECTORY"]
    context.load_cert_chain(os.path.join(credentials, "tls.crt"), os.path.join(credentials, "tls.key"))
    tls_server = TlsServer((address, int(params["HTTPS_PORT"])), Handler, context, float(params["HANDSHAKE_TIMEOUT"]))
    threading.Thread(target=tls_server.serve_forever, daemon=True).start()
    http_server.serve_forever()


if __name__ == "__main__":
    main()
