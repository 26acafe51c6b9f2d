#!/usr/bin/python3
"""test_tls_upstream.py -- TLS to the servers (server ... tls [verify=CAFILE]
[sni=NAME]): a TLS test server with a certificate of a test CA; bytes
relayed intact both ways (16 MiB at once, by digest) from plain and from
TLS clients; the SNI sent (sni=, or none for an IP address) as the server
records it; verification failing (another CA, a wrong sni name, the
system's CA store by default, a server that does not speak TLS, one that
never answers the handshake within connect_timeout) counted as
a connect failure and the connection retried on another server;
verify=none; a missing CA file and options without tls refused with
FILE:LINE; send_proxy before the handshake.
"""

import hashlib
import os
import re
import select
import socket
import ssl
import struct
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True  # the source tree may be read-only
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402
from harness import check  # noqa: E402
import tlsca  # noqa: E402

h = H.Harness('test_tls_upstream', file_timeout=180)
MiB = 1 << 20
_cd = []


def certs():
    """upca: the servers' CA; backend: its leaf (localhost, backend.test,
    127.0.0.1); evilca: another CA; front: the TLS frontend's leaf."""
    if not _cd:
        cd = tlsca.CertDir(os.path.join(h.tmp, 'certs'))
        cd.ca('upca', 'baton test upstream CA')
        cd.leaf('backend', 'upca', 'backend.test')
        cd.ca('evilca', 'baton test other CA')
        cd.leaf('front', 'evilca', 'localhost')
        _cd.append(cd)
    return _cd[0]


class TlsServer:
    """A TLS echo server (cert: backend of upca) that records the SNI of
    each handshake in .snis. PROXY=True: a v1/v2 PROXY header is read in
    clear text before the handshake and kept in .headers."""

    def __init__(self, proxy=False):
        cd = certs()
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(*cd.path('backend'))
        self.ctx.sni_callback = self.on_sni
        self.snis, self.headers, self.handshakes = [], [], 0
        self.proxy = proxy
        self.lst = socket.socket()
        self.lst.bind((H.LOCALHOST, 0))
        self.lst.listen(64)
        self.lst.settimeout(0.2)
        self.port = self.lst.getsockname()[1]
        self.stop = False
        self.lock = threading.Lock()
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def on_sni(self, sslobj, name, ctx):
        with self.lock:
            self.snis.append(name)

    def run(self):
        while not self.stop:
            try:
                c, _ = self.lst.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            threading.Thread(target=self.serve, args=(c,), daemon=True).start()

    def serve(self, c):
        c.settimeout(20)
        try:
            if self.proxy:
                hdr = H.recv_exact(c, 16, 5)
                n = struct.unpack('!H', hdr[14:16])[0]
                hdr += H.recv_exact(c, n, 5)
                with self.lock:
                    self.headers.append(hdr)
            s = self.ctx.wrap_socket(c, server_side=True)
            with self.lock:
                self.handshakes += 1
            while True:
                d = s.recv(65536)
                if not d:
                    break
                s.sendall(d)
            s.close()
        except (OSError, ssl.SSLError, H.Failure):
            pass
        finally:
            c.close()

    def close(self):
        self.stop = True
        self.t.join(2)
        self.lst.close()


def conf(port, sport, servers, retries=0, front_tls=False, extra=''):
    lines = ['[global]', 'workers = 2', 'log_level = info', '',
             '[stats]', 'listen = 127.0.0.1:%d' % sport, '',
             '[frontend web]', 'listen = 127.0.0.1:%d' % port,
             'backend = app']
    if front_tls:
        c, k = certs().path('front')
        lines += ['tls_cert = %s' % c, 'tls_key = %s' % k]
    lines += ['', '[backend app]', 'balance = roundrobin']
    lines += ['server = %s' % s for s in servers]
    lines += ['connect_timeout = 2s', 'retries = %d' % retries, extra, '']
    return '\n'.join(lines)


def server_stats(sport, name):
    for s in H.get_stats(sport)['backends'][0]['servers']:
        if s['name'] == name:
            return s
    raise H.Failure('no server %s in /stats' % name)


def duplex(sock, total, timeout=60):
    """Send TOTAL random bytes while reading the echo, in one thread (an
    SSLSocket must not be read and written from two threads at once);
    check the digest."""
    data = os.urandom(total)
    want = hashlib.sha256(data).hexdigest()
    got = hashlib.sha256()
    sent = n = 0
    sock.setblocking(False)
    deadline = time.monotonic() + timeout
    while n < total:
        check(time.monotonic() < deadline, 'duplex: %d of %d sent, %d '
              'echoed within %ds' % (sent, total, n, timeout))
        moved = False
        if sent < total:
            try:
                k = sock.send(data[sent:sent + 65536])
            except (ssl.SSLWantWriteError, ssl.SSLWantReadError,
                    BlockingIOError):
                k = 0
            sent += k
            moved = k > 0
        while True:
            try:
                d = sock.recv(1 << 17)
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError,
                    BlockingIOError):
                break
            check(d, 'closed after %d of %d echoed bytes' % (n, total))
            got.update(d)
            n += len(d)
            moved = True
        pending = getattr(sock, 'pending', lambda: 0)()
        if not moved and not pending:
            select.select([sock], [sock] if sent < total else [], [], 0.2)
    sock.settimeout(10)
    check(got.hexdigest() == want, 'the echo of %d bytes differs' % total)


def ca(name):
    return certs().path(name)[0]


@h.case(timeout=90)
def verified_by_ca_bytes_intact_both_ways():
    srv = TlsServer()
    try:
        port, sport = H.free_port(), H.free_port()
        b = h.start_baton(conf(port, sport, [
            's1 127.0.0.1:%d tls verify=%s' % (srv.port, ca('upca'))]))
        s = H.connect(port, 5)
        try:
            s.sendall(b'hello over TLS\n')
            check(H.recv_line(s, 5) == b'hello over TLS\n', 'no echo')
            duplex(s, 16 * MiB)
        finally:
            s.close()
        check(srv.snis == [None], 'an IP address server got SNI %r'
              % srv.snis)
        st = server_stats(sport, 's1')
        check(st['failures'] == 0, 'failures %r' % st['failures'])
        print('  16 MiB echoed through a verified TLS server; SNI %r'
              % srv.snis)
        b.check_running()
    finally:
        srv.close()


@h.case(timeout=90)
def terminated_client_to_tls_server_with_sni():
    srv = TlsServer()
    try:
        port, sport = H.free_port(), H.free_port()
        h.start_baton(conf(port, sport, [
            's1 127.0.0.1:%d tls verify=%s sni=backend.test'
            % (srv.port, ca('upca'))], front_tls=True))
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(ca('evilca'))
        raw = H.connect(port, 5)
        try:
            s = ctx.wrap_socket(raw, server_hostname='localhost')
            s.sendall(b'through two TLS sessions\n')
            check(H.recv_line(s, 5) == b'through two TLS sessions\n',
                  'no echo')
            duplex(s, 8 * MiB)
        finally:
            raw.close()
        check(srv.snis == ['backend.test'], 'the server saw SNI %r, want '
              "['backend.test']" % srv.snis)
        print('  TLS client -> baton -> TLS server: 8 MiB echoed, SNI %r'
              % srv.snis)
    finally:
        srv.close()


@h.case(timeout=90)
def verification_failures_retried_on_another_server():
    good, other = TlsServer(), TlsServer()
    plain = h.start_backend('echo', name='plain-echo')
    try:
        port, sport = H.free_port(), H.free_port()
        b = h.start_baton(conf(port, sport, [
            'wrongca 127.0.0.1:%d tls verify=%s' % (other.port, ca('evilca')),
            'wrongsni 127.0.0.1:%d tls verify=%s sni=other.test'
            % (other.port, ca('upca')),
            'systemca 127.0.0.1:%d tls' % other.port,
            'notls 127.0.0.1:%d tls verify=%s' % (plain.port, ca('upca')),
            'good 127.0.0.1:%d tls verify=%s' % (good.port, ca('upca'))],
            retries=4))
        for i in range(8):
            s = H.connect(port, 5)
            try:
                msg = b'connection %d\n' % i
                s.sendall(msg)
                check(H.recv_line(s, 10) == msg, 'connection %d: no echo'
                      % i)
            finally:
                s.close()
        H.poll_until(lambda: server_stats(sport, 'good')['total'] >= 8, 3,
                     'the 8 connections on the good server')
        for name in ('wrongca', 'wrongsni', 'systemca', 'notls'):
            st = server_stats(sport, name)
            check(st['total'] == 0 and st['failures'] >= 1,
                  '%s: total %r failures %r, want 0 and at least 1'
                  % (name, st['total'], st['failures']))
            print('  %s: %d failures' % (name, st['failures']))
        check(good.handshakes == 8, 'good server: %d handshakes'
              % good.handshakes)
        # Warnings are rate-limited per call site: one at least is there.
        check(re.search(r'connect to app/\w+ \([^)]*\) failed: '
                        r'certificate: ', b.log()),
              'no verification failure in the log:\n%s' % b.log_tail(20))
    finally:
        good.close()
        other.close()


@h.case(timeout=60)
def silent_server_fails_at_connect_timeout():
    # Accepts, then never answers the ClientHello: the handshake is bound
    # by connect_timeout, and a failed connect of that server.
    lst = socket.socket()
    lst.bind((H.LOCALHOST, 0))
    lst.listen(8)
    try:
        port, sport = H.free_port(), H.free_port()
        h.start_baton(conf(port, sport, [
            's1 127.0.0.1:%d tls verify=%s' % (lst.getsockname()[1],
                                               ca('upca'))]))
        s = H.connect(port, 5)
        try:
            s.sendall(b'anyone?\n')
            how, dt = H.wait_closed(s, 6)
            check(how != 'timeout' and 1.5 < dt < 4, 'closed: %s after '
                  '%.1fs, want closed after connect_timeout (2s)' % (how, dt))
        finally:
            s.close()
        H.poll_until(lambda: server_stats(sport, 's1')['failures'] == 1, 3,
                     'the timeout counted as a failure of s1')
        st = server_stats(sport, 's1')
        check(st['total'] == 0, 's1 total %r, want 0' % st['total'])
        print('  closed after %.1fs; s1 failures 1, total 0' % dt)
    finally:
        lst.close()


@h.case(timeout=60)
def verify_none_accepts_any_certificate():
    srv = TlsServer()
    try:
        port, sport = H.free_port(), H.free_port()
        h.start_baton(conf(port, sport, [
            's1 127.0.0.1:%d tls verify=none sni=whatever.test' % srv.port]))
        s = H.connect(port, 5)
        try:
            s.sendall(b'unverified\n')
            check(H.recv_line(s, 5) == b'unverified\n', 'no echo')
        finally:
            s.close()
        check(srv.snis == ['whatever.test'], 'SNI %r' % srv.snis)
    finally:
        srv.close()


@h.case(timeout=60)
def send_proxy_goes_before_the_handshake():
    srv = TlsServer(proxy=True)
    try:
        port, sport = H.free_port(), H.free_port()
        h.start_baton(conf(port, sport, [
            's1 127.0.0.1:%d tls verify=%s send_proxy=v2'
            % (srv.port, ca('upca'))]))
        s = H.connect(port, 5)
        try:
            s.sendall(b'after a header\n')
            check(H.recv_line(s, 5) == b'after a header\n', 'no echo')
            local = s.getsockname()
        finally:
            s.close()
        check(len(srv.headers) == 1, 'headers %r' % srv.headers)
        hdr = srv.headers[0]
        check(hdr[12] == 0x21 and hdr[13] == 0x11 and
              struct.unpack('!H', hdr[24:26])[0] == local[1],
              'not a v2 header for the client: %r' % hdr)
    finally:
        srv.close()


def run_baton(args):
    r = subprocess.run([H.BATON] + args, cwd=h.path(''),
                       stdin=subprocess.DEVNULL, capture_output=True,
                       timeout=10)
    return r.returncode, r.stdout.decode() + r.stderr.decode()


@h.case(timeout=40)
def config_errors_name_file_and_line():
    port, sport = H.free_port(), H.free_port()
    missing = h.path('no-such-ca.pem')
    for what, server, code, words in (
            ('missing CA file', 's1 127.0.0.1:1 tls verify=%s' % missing, 2,
             ['verify', missing]),
            ('verify without tls', 's1 127.0.0.1:1 verify=%s' % ca('upca'),
             1, ['tls']),
            ('sni without tls', 's1 127.0.0.1:1 sni=a.test', 1, ['tls']),
            ('bad sni', 's1 127.0.0.1:1 tls sni=a_b!', 1, ['sni'])):
        text = conf(port, sport, [server])
        line = text.split('\n').index('server = ' + server) + 1
        name = re.sub(r'\W+', '_', what) + '.ini'
        h.write_file(name, text)
        want = '%s:%d: ' % (name, line)
        rc, out = run_baton(['-t', '-c', name])
        check(rc == 1 and want in out and all(w in out for w in words),
              '%s: -t exit %d, want 1 and %r with %r: %r'
              % (what, rc, want, words, out))
        b = h.start_baton(text, name=name, wait=False)
        rc = b.wait_exit(10)
        check(rc == code and want in b.log(), '%s: start exit %r, want %d '
              'and %r: %r' % (what, rc, code, want, b.log()[-400:]))
        print('  %s: %s' % (what, [s for s in out.split('\n')
                                   if want in s][0][-100:]))


if __name__ == '__main__':
    sys.exit(h.run())
