#!/usr/bin/python3
"""test_sni.py -- TLS at the edge: several sites on one port, each with its
certificate (checked by the client's own verification against a CA made
here); routing by server name and ALPN, TLS terminated (route to plain
backends that say their name) and passed through (to TLS servers run by
this test, which record every byte they received: the client's exact
ClientHello must be their first bytes); a ClientHello byte by byte, after
a PROXY header, without SNI; garbage, a too large and a too slow
ClientHello; a passed-through server behind send_proxy; routes changed by
reload (and kept by a failed one); the TLS and route counters in /stats
and /metrics.

Certificates are made per run with the openssl command (SKIP without it).
"""

import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.request

sys.dont_write_bytecode = True  # the source tree may be read-only
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402
from harness import check  # noqa: E402

h = H.Harness('test_sni', file_timeout=180)
NAMES = ('a.test', 'www.b.test')
_certs = {}


# --------------------------------------------------------- certificates

LEAF_EXT = """\
[leaf]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = %s
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"""
EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1']


def openssl(*args):
    try:
        r = subprocess.run(['openssl'] + list(args), cwd=certdir(),
                           stdin=subprocess.DEVNULL, capture_output=True,
                           timeout=30)
    except FileNotFoundError:
        raise H.Skip('no openssl command to make test certificates')
    check(r.returncode == 0, 'openssl %s: exit %d: %s'
          % (' '.join(args), r.returncode, r.stderr.decode()[-400:]))


def certdir():
    return os.path.join(h.tmp, 'certs')


def certs():
    """A CA (ca.pem) and leaf certificates it signed: 'a' for a.test,
    'b' for *.b.test, 'dflt' for default.test, 'srv' for the test's own
    TLS servers; {name: (cert, key)} plus 'ca': the CA file."""
    if _certs:
        return _certs
    d = certdir()
    os.makedirs(d, exist_ok=True)
    openssl('req', '-x509', *EC, '-nodes', '-keyout', 'ca.key', '-out',
            'ca.pem', '-days', '2', '-subj', '/CN=baton sni test CA',
            '-addext', 'basicConstraints=critical,CA:TRUE',
            '-addext', 'keyUsage=critical,keyCertSign,cRLSign')
    leaves = {'a': 'DNS:a.test', 'b': 'DNS:*.b.test',
              'dflt': 'DNS:default.test', 'srv': 'DNS:a.test,DNS:*.b.test,DNS:other.test'}
    for i, (name, san) in enumerate(sorted(leaves.items())):
        with open(os.path.join(d, name + '.cnf'), 'w') as f:
            f.write(LEAF_EXT % san)
        openssl('req', '-new', *EC, '-nodes', '-keyout', name + '.key',
                '-out', name + '.csr', '-subj', '/CN=' + name)
        openssl('x509', '-req', '-in', name + '.csr', '-CA', 'ca.pem',
                '-CAkey', 'ca.key', '-set_serial', str(100 + i), '-days',
                '2', '-out', name + '.pem', '-extfile', name + '.cnf',
                '-extensions', 'leaf')
        _certs[name] = (os.path.join(d, name + '.pem'),
                        os.path.join(d, name + '.key'))
    _certs['ca'] = os.path.join(d, 'ca.pem')
    return _certs


def verifying_ctx(alpn=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(certs()['ca'])
    if alpn:
        ctx.set_alpn_protocols(alpn)
    return ctx


# ------------------------------------------------------------- configs

def conf(port, front, backends, sport=None, idle='30s'):
    """One frontend 'web' on PORT with the lines FRONT; BACKENDS:
    {name: port or (port, server options)}."""
    lines = ['[global]', 'workers = 2', 'drain_timeout = 2s',
             'log_level = info', '']
    if sport:
        lines += ['[stats]', 'listen = 127.0.0.1:%d' % sport, '']
    lines += ['[frontend web]', 'listen = 127.0.0.1:%d' % port,
              'timeout_idle = %s' % idle] + front + ['']
    for name, bport in backends.items():
        bport, opts = bport if isinstance(bport, tuple) else (bport, '')
        lines += ['[backend %s]' % name,
                  'server = s1 127.0.0.1:%d %s' % (bport, opts),
                  'connect_timeout = 1s', 'retries = 0', '']
    return '\n'.join(lines)


def tls_pairs(*names):
    c = certs()
    out = []
    for n in names:
        out += ['tls_cert = %s' % c[n][0], 'tls_key = %s' % c[n][1]]
    return out


# ------------------------------------------------- the test's TLS servers

class TlsServer:
    """A TLS server on a thread: per connection it records every byte it
    received, terminates TLS with the 'srv' certificate (ALPN h2 or
    http/1.1 when offered), notes the server name the client sent, writes
    'NAME sni=SNI alpn=PROTO' and a newline, then echoes."""

    def __init__(self, name, proxy=False):
        self.name = name
        self.proxy = proxy        # a PROXY v1 line comes first
        self.conns = []           # [{'raw': bytes, 'sni': str}]
        self.lock = threading.Lock()
        self.sock = socket.socket()
        self.sock.bind((H.LOCALHOST if hasattr(H, 'LOCALHOST')
                        else '127.0.0.1', 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        c, k = certs()['srv']
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(c, k)
        self.ctx.set_alpn_protocols(['h2', 'http/1.1'])
        self.ctx.sni_callback = self._sni
        self.stop = False
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _sni(self, obj, name, ctx):
        obj.sni_seen = name

    def _accept(self):
        self.sock.settimeout(0.2)
        while not self.stop:
            try:
                s, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(s,),
                             daemon=True).start()

    def _serve(self, s):
        rec = {'raw': b'', 'sni': None, 'proxy': None}
        with self.lock:
            self.conns.append(rec)
        inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
        obj = self.ctx.wrap_bio(inc, out, server_side=True)
        obj.sni_seen = None
        s.settimeout(10)
        try:
            if self.proxy:
                line = b''
                while not line.endswith(b'\r\n') and len(line) < 108:
                    c = s.recv(1)
                    if not c:
                        return
                    line += c
                rec['proxy'] = line
            while True:
                try:
                    obj.do_handshake()
                    break
                except ssl.SSLWantReadError:
                    pass
                s.sendall(out.read())
                data = s.recv(65536)
                if not data:
                    return
                rec['raw'] += data
                inc.write(data)
            rec['sni'] = obj.sni_seen
            obj.write(b'%s sni=%s alpn=%s\n' % (
                self.name.encode(), str(obj.sni_seen).encode(),
                str(obj.selected_alpn_protocol()).encode()))
            s.sendall(out.read())
            while True:
                try:
                    data = obj.read(65536)
                    if not data:
                        return
                    obj.write(data)
                    s.sendall(out.read())
                    continue
                except ssl.SSLWantReadError:
                    pass
                except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                    return
                data = s.recv(65536)
                if not data:
                    return
                rec['raw'] += data
                inc.write(data)
        except (OSError, ssl.SSLError):
            return
        finally:
            s.close()

    def close(self):
        self.stop = True
        self.sock.close()


_servers = []


def tls_server(name, proxy=False):
    s = TlsServer(name, proxy)
    _servers.append(s)
    return s


def close_servers():
    while _servers:
        _servers.pop().close()


# ------------------------------------------------------------- clients

class MemClient:
    """A TLS client over a plain socket through memory BIOs, so the test
    knows every byte it sent: hello is its ClientHello."""

    def __init__(self, port, sni, alpn=None, ca=True, raw=None):
        ctx = verifying_ctx(alpn) if ca else ssl.create_default_context()
        if not ca:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            if alpn:
                ctx.set_alpn_protocols(alpn)
        self.inc, self.out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.obj = ctx.wrap_bio(self.inc, self.out, server_hostname=sni)
        try:
            self.obj.do_handshake()
        except ssl.SSLWantReadError:
            pass
        self.hello = self.out.read()
        self.sock = raw if raw is not None else H.connect(port)

    def handshake(self, timeout=5.0, first=None):
        """Send the ClientHello (FIRST: how; default all at once) and
        complete the handshake."""
        if first is None:
            self.sock.sendall(self.hello)
        else:
            first(self.sock, self.hello)
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                pass
            self.sock.sendall(self.out.read())
            self._feed(deadline, 'handshake')
        self.sock.sendall(self.out.read())

    def _feed(self, deadline, what):
        left = deadline - time.monotonic()
        check(left > 0, 'timed out in the %s' % what)
        self.sock.settimeout(left)
        data = self.sock.recv(65536)
        check(data, 'connection closed in the %s' % what)
        self.inc.write(data)

    def line(self, timeout=5.0):
        deadline = time.monotonic() + timeout
        got = b''
        while not got.endswith(b'\n'):
            try:
                got += self.obj.read(4096)
                continue
            except ssl.SSLWantReadError:
                pass
            self._feed(deadline, 'read')
        return got

    def echo(self, payload):
        self.obj.write(payload)
        self.sock.sendall(self.out.read())
        got = self.line()
        check(got == payload, 'echo %r, got %r' % (payload, got))

    def close(self):
        self.sock.close()


def plain_name(sock, timeout=5.0):
    """What a terminated session's backend (backend.py name) says."""
    got = b''
    sock.settimeout(timeout)
    while not got.endswith(b'\n'):
        d = sock.recv(100)
        check(d, 'closed before the backend said its name')
        got += d
    return got.strip().decode()


def closed_without_data(sock, timeout):
    sock.settimeout(timeout)
    try:
        d = sock.recv(100)
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False
    return d == b''


def frontend(sport):
    for f in H.get_stats(sport)['frontends']:
        if f['name'] == 'web':
            return f
    raise H.Failure('no frontend web in /stats')


def metrics(sport):
    with urllib.request.urlopen('http://127.0.0.1:%d/metrics' % sport,
                                timeout=5) as r:
        return r.read().decode()


# ---------------------------------------------------------------- cases

@h.case(timeout=60)
def two_names_own_certificates_and_routes_terminated():
    """Two sites and a default on one port: each client verifies the
    certificate it gets against the CA for the name it asked; routes send
    a.test and *.b.test to their backends, the rest to the default."""
    c = certs()
    ba = h.start_backend('name', name='A')
    bb = h.start_backend('name', name='B')
    bd = h.start_backend('name', name='D')
    port = H.free_port()
    h.start_baton(conf(port, ['backend = dflt'] + tls_pairs('dflt', 'a', 'b')
                       + ['route = a.test ba', 'route = *.B.test bb'],
                       {'dflt': bd.port, 'ba': ba.port, 'bb': bb.port}))
    want = {'a.test': 'A', 'www.b.test': 'B', 'x.y.b.test': 'B',
            'A.TEST': 'A', 'default.test': 'D'}
    loose = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    loose.check_hostname = False
    loose.verify_mode = ssl.CERT_NONE
    for sni, name in want.items():
        # x.y.b.test: routed by *.b.test, though no certificate names it
        # (a certificate's wildcard covers one label).
        ctx = loose if sni == 'x.y.b.test' else verifying_ctx()
        raw = H.connect(port)
        s = ctx.wrap_socket(raw, server_hostname=sni)
        try:
            got = plain_name(s)
            check(got == name, 'SNI %s went to %s, want %s'
                  % (sni, got, name))
        finally:
            s.close()
    # The wrong certificate fails the client's own verification: b.test
    # is in no certificate, so the default one is served.
    raw = H.connect(port)
    try:
        verifying_ctx().wrap_socket(raw, server_hostname='b.test')
        raise H.Failure('b.test verified against a certificate not for it')
    except ssl.SSLCertVerificationError:
        pass
    finally:
        raw.close()
    # No SNI at all: the default backend.
    s = loose.wrap_socket(H.connect(port))
    try:
        check(plain_name(s) == 'D', 'no SNI did not go to the default')
    finally:
        s.close()


@h.case(timeout=60)
def alpn_negotiated_and_routed():
    """tls_alpn in the server's order: a client offering http/1.1 then h2
    gets h2 and the h2 route; http/1.1 alone or no ALPN: the default."""
    bh = h.start_backend('name', name='H2')
    bd = h.start_backend('name', name='D')
    port = H.free_port()
    h.start_baton(conf(port, ['backend = dflt'] + tls_pairs('a')
                       + ['tls_alpn = h2, http/1.1',
                          'route = a.test alpn:h2 h2'],
                       {'dflt': bd.port, 'h2': bh.port}))
    for offer, want_proto, want in ((['http/1.1', 'h2'], 'h2', 'H2'),
                                    (['http/1.1'], 'http/1.1', 'D'),
                                    (['spdy/1'], None, 'D'),
                                    (None, None, 'D')):
        s = verifying_ctx(offer).wrap_socket(H.connect(port),
                                             server_hostname='a.test')
        try:
            check(s.selected_alpn_protocol() == want_proto,
                  'offered %r: negotiated %r, want %r'
                  % (offer, s.selected_alpn_protocol(), want_proto))
            got = plain_name(s)
            check(got == want, 'offered %r: went to %s, want %s'
                  % (offer, got, want))
        finally:
            s.close()


def passthrough_setup(extra=(), sport=None, idle='30s'):
    sa, sb, sd = tls_server('A'), tls_server('B'), tls_server('D')
    sh = tls_server('H')
    port = H.free_port()
    b = h.start_baton(conf(port, ['backend = dflt', 'tls_passthrough = on',
                                  'route = a.test pa', 'route = *.b.test pb',
                                  'route = alpn:h2 ph']
                           + list(extra),
                           {'dflt': sd.port, 'pa': sa.port, 'pb': sb.port,
                            'ph': sh.port}, sport=sport, idle=idle))
    return port, b, {'A': sa, 'B': sb, 'D': sd, 'H': sh}


@h.case(timeout=60)
def passthrough_routes_by_sni_untouched():
    """Passed through: each name reaches its server, which terminates TLS
    itself (the client verifies the server's certificate, sees the SNI it
    sent) and received exactly the client's ClientHello first; without
    SNI the default server."""
    try:
        port, _, srv = passthrough_setup()
        for sni, want in (('a.test', 'A'), ('www.b.test', 'B'),
                          (None, 'D')):
            c = MemClient(port, sni, ca=sni is not None)
            try:
                c.handshake()
                line = c.line().decode()
                check(line == '%s sni=%s alpn=None\n' % (want, sni),
                      'SNI %s: server said %r' % (sni, line))
                c.echo(b'through %s\n' % str(sni).encode())
            finally:
                c.close()
            rec = srv[want].conns[-1]
            check(rec['raw'].startswith(c.hello),
                  'server %s did not get the exact ClientHello first (%d '
                  'bytes sent, got %r...)' % (want, len(c.hello),
                                              rec['raw'][:16]))
    finally:
        close_servers()


@h.case(timeout=60)
def passthrough_byte_by_byte_and_alpn():
    """A ClientHello one byte per segment still routes by its SNI; an
    offered h2 routes (alpn:h2) when no name route matched first."""
    try:
        port, _, srv = passthrough_setup()

        def dribble(sock, data):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for i in range(len(data)):
                sock.send(data[i:i + 1])
                if i % 64 == 0:
                    time.sleep(0.002)

        c = MemClient(port, 'www.b.test')
        try:
            c.handshake(timeout=10, first=dribble)
            check(c.line().startswith(b'B sni=www.b.test'), 'byte by byte: '
                  'not routed to B')
        finally:
            c.close()
        check(srv['B'].conns[-1]['raw'].startswith(c.hello),
              'byte by byte: B did not get the exact ClientHello')
        c = MemClient(port, 'other.test', alpn=['h2'])
        try:
            c.handshake()
            line = c.line()
            check(line == b'H sni=other.test alpn=h2\n', 'alpn: %r' % line)
        finally:
            c.close()
    finally:
        close_servers()


@h.case(timeout=60)
def passthrough_after_proxy_header():
    """accept_proxy and tls_passthrough: the PROXY header first (apart or
    in one segment with the ClientHello), then the ClientHello routes."""
    try:
        port, _, srv = passthrough_setup(['accept_proxy = v1'])
        hdr = b'PROXY TCP4 192.0.2.7 127.0.0.1 40000 %d\r\n' % port
        for together in (False, True):
            c = MemClient(port, 'a.test')
            try:
                if together:
                    c.handshake(first=lambda s, d: s.sendall(hdr + d))
                else:
                    c.sock.sendall(hdr)
                    time.sleep(0.1)
                    c.handshake()
                check(c.line().startswith(b'A sni=a.test'),
                      'after a PROXY header (together=%r): not A' % together)
            finally:
                c.close()
            check(srv['A'].conns[-1]['raw'].startswith(c.hello),
                  'after a PROXY header: A got other bytes first')
    finally:
        close_servers()


@h.case(timeout=60)
def passthrough_to_a_send_proxy_server():
    """A server with send_proxy = v1 gets the PROXY header (the client's
    address) first, then the client's exact ClientHello."""
    try:
        sp = tls_server('P', proxy=True)
        port = H.free_port()
        h.start_baton(conf(port, ['backend = p', 'tls_passthrough = on'],
                           {'p': (sp.port, 'send_proxy=v1')}))
        c = MemClient(port, 'a.test')
        try:
            c.handshake()
            check(c.line() == b'P sni=a.test alpn=None\n', 'not through P')
            c.echo(b'behind a PROXY header\n')
        finally:
            c.close()
        rec = sp.conns[-1]
        check(rec['proxy'] is not None and
              rec['proxy'].startswith(b'PROXY TCP4 127.0.0.1 127.0.0.1 '),
              'PROXY line %r' % rec['proxy'])
        check(rec['raw'].startswith(c.hello), 'P did not get the exact '
              'ClientHello after the PROXY header')
    finally:
        close_servers()


@h.case(timeout=60)
def passthrough_garbage_big_slow_closed_and_counted():
    """Not TLS, a ClientHello claiming more than 16 KiB, and one that stops
    halfway: each closed with no server contacted, counted as an error
    and a handshake failure, logged (rate-limited)."""
    sport = H.free_port()
    try:
        port, b, srv = passthrough_setup(sport=sport, idle='2s')
        before = frontend(sport)
        s = H.connect(port)
        s.sendall(b'GET / HTTP/1.1\r\nHost: a.test\r\n\r\n')
        check(closed_without_data(s, 3), 'garbage: not closed at once')
        s.close()
        big = (b'\x16\x03\x01\x40\x00' + b'\x01\x01\x00\x00'
               + b'\x03\x03' + b'\x00' * 200)
        s = H.connect(port)
        s.sendall(big)
        check(closed_without_data(s, 3), 'too big: not closed at once')
        s.close()
        hello = MemClient(port, 'a.test').hello
        s = H.connect(port)
        s.sendall(hello[:len(hello) // 2])
        t0 = time.monotonic()
        check(closed_without_data(s, 6), 'half a ClientHello: not closed')
        took = time.monotonic() - t0
        check(1.5 <= took <= 4.5, 'half a ClientHello closed after %.1fs, '
              'want the 2s bound' % took)
        s.close()
        for name, server in srv.items():
            check(not server.conns, 'server %s contacted' % name)

        def counted():
            f = frontend(sport)
            return (f['errors'] - before['errors'] >= 3 and
                    f['tls']['handshake_failures'] -
                    before['tls']['handshake_failures'] >= 3)
        H.poll_until(counted, 5, 'errors and handshake failures counted')
        b.wait_log(r'not a TLS ClientHello', 5)
        b.wait_log(r'ClientHello too large', 5)
    finally:
        close_servers()


@h.case(timeout=60)
def reload_changes_routes_bad_route_keeps_them():
    """SIGHUP with a route to another backend: new connections follow it,
    and the route's count stays with the same route line; a route to no
    backend fails the reload, the running routes stay."""
    sport = H.free_port()
    ba = h.start_backend('name', name='A')
    bb = h.start_backend('name', name='B')
    port = H.free_port()

    def text(target):
        return conf(port, ['backend = ba'] + tls_pairs('a')
                    + ['route = a.test %s' % target, 'route = x.test bb'],
                    {'ba': ba.port, 'bb': bb.port}, sport=sport)

    def where():
        s = verifying_ctx().wrap_socket(H.connect(port),
                                        server_hostname='a.test')
        try:
            return plain_name(s)
        finally:
            s.close()

    def reload_and_wait(t, field, want):
        with open(b.config, 'w') as f:
            f.write(t)
        b.signal(signal.SIGHUP)
        H.poll_until(lambda: H.get_stats(sport)[field] >= want, 5,
                     '/stats %s to reach %d' % (field, want))

    b = h.start_baton(text('ba'))
    check(where() == 'A', 'a.test not routed to A at start')
    reload_and_wait(text('bb'), 'generation', 2)
    check(where() == 'B', 'a.test not routed to B after the reload')
    reload_and_wait(text('nope'), 'reload_failures', 1)
    check(where() == 'B', 'a failed reload changed the routes')
    b.wait_log(r"route: no backend named 'nope'", 5)

    def counted():
        rs = {(r['route'], r['backend']): r['total']
              for r in frontend(sport)['routes']}
        return rs.get(('a.test', 'bb')) == 2 and \
            rs.get(('x.test', 'bb')) == 0
    H.poll_until(counted, 5, 'route counts after reloads')


@h.case(timeout=60)
def stats_count_handshakes_versions_routes():
    """Terminated: handshakes, failures, versions per frontend, and the
    routes taken, in /stats and /metrics."""
    sport = H.free_port()
    ba = h.start_backend('name', name='A')
    bd = h.start_backend('name', name='D')
    port = H.free_port()
    h.start_baton(conf(port, ['backend = dflt'] + tls_pairs('dflt', 'a')
                       + ['route = a.test ba'],
                       {'dflt': bd.port, 'ba': ba.port}, sport=sport))
    for sni, v in (('a.test', ssl.TLSVersion.TLSv1_3),
                   ('a.test', ssl.TLSVersion.TLSv1_2),
                   ('default.test', ssl.TLSVersion.TLSv1_3)):
        ctx = verifying_ctx()
        ctx.minimum_version = ctx.maximum_version = v
        s = ctx.wrap_socket(H.connect(port), server_hostname=sni)
        plain_name(s)
        s.close()
    s = H.connect(port)
    s.sendall(b'\x16\x03\x01\x00\x05hello')     # a broken handshake
    closed_without_data(s, 3)
    s.close()

    def settled():
        t = frontend(sport).get('tls', {})
        return t.get('handshakes') == 3 and t.get('handshake_failures') == 1
    H.poll_until(settled, 5, 'TLS counters in /stats')
    f = frontend(sport)
    check(f['tls']['versions'] == {'TLSv1.2': 1, 'TLSv1.3': 2, 'other': 0},
          'versions %r' % f['tls']['versions'])
    routes = {(r['route'], r['backend']): r['total'] for r in f['routes']}
    check(routes == {('a.test', 'ba'): 2, ('default', 'dflt'): 1},
          'routes %r' % routes)
    m = metrics(sport)
    for line in ('baton_frontend_tls_handshakes_total{frontend="web"} 3',
                 'baton_frontend_tls_handshake_failures_total'
                 '{frontend="web"} 1',
                 'baton_frontend_tls_versions_total{frontend="web",'
                 'version="TLSv1.3"} 2',
                 'baton_frontend_routes_total{frontend="web",'
                 'route="a.test",backend="ba"} 2'):
        check(line in m, 'no %r in /metrics' % line)


if __name__ == '__main__':
    try:
        sys.exit(h.run())
    finally:
        close_servers()
