#!/usr/bin/python3
"""demo-backend.py -- a tiny HTTP server that says which backend answered.

usage: demo-backend.py NAME PORT   (binds 127.0.0.1 only)
"""
import http.server
import sys


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        body = ("hello from backend %s (port %d), path %s\n" % (
            NAME, PORT, self.path)).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        pass


if __name__ == "__main__":
    NAME, PORT = sys.argv[1], int(sys.argv[2])
    http.server.ThreadingHTTPServer.allow_reuse_address = True
    server = http.server.ThreadingHTTPServer(("127.0.0.1", PORT), Handler)
    server.serve_forever()
