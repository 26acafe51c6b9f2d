#!/usr/bin/python3
"""test_proxyproto.py -- the PROXY protocol through baton: send_proxy v1/v2
to a PROXY-aware backend (real client address, frontend as destination),
accept_proxy v1/v2/any (declared addresses adopted and passed on, payload
after the header intact), bad or missing headers closed and counted, split
headers, and `source` balancing on the declared address.

The PROXY-aware backend is this file itself, run as
`test_proxyproto.py --pp-backend NAME`: it prints "READY <port>", and for
each connection reads the PROXY header, replies one line

    NAME v1|v2 TCP4|TCP6 SRC SPORT DST DPORT      (or ... UNKNOWN / LOCAL)

(or "NAME BAD <why>" and closes), then echoes every following byte.
"""

import hashlib
import http.client
import ipaddress
import json
import os
import random
import socket
import struct
import subprocess
import sys
import threading
import time

SIG = b'\r\n\r\n\x00\r\nQUIT\n'


# ------------------------------------------------------- PROXY backend

def pp_read_header(conn, buf):
    """Read one PROXY header from CONN (BUF: bytes already read).

    Returns (description, rest of buffer); raises ValueError if invalid.
    """
    def more():
        d = conn.recv(65536)
        if not d:
            raise ValueError('EOF in header after %r' % buf[:120])
        return d

    while True:
        if not buf or (len(buf) < 12 and SIG.startswith(buf)) or \
                (len(buf) < 6 and b'PROXY '.startswith(buf)):
            buf += more()
        else:
            break
    if buf.startswith(SIG):
        while len(buf) < 16:
            buf += more()
        ver_cmd, fam, length = struct.unpack('!BBH', buf[12:16])
        if ver_cmd >> 4 != 2 or ver_cmd & 15 > 1:
            raise ValueError('v2 ver_cmd %#x' % ver_cmd)
        while len(buf) < 16 + length:
            buf += more()
        body, rest = buf[16:16 + length], buf[16 + length:]
        if ver_cmd & 15 == 0:
            desc = 'v2 LOCAL'
        elif fam == 0x11 and length >= 12:
            s, d = socket.inet_ntop(socket.AF_INET, body[0:4]), \
                socket.inet_ntop(socket.AF_INET, body[4:8])
            sp, dp = struct.unpack('!HH', body[8:12])
            desc = 'v2 TCP4 %s %d %s %d' % (s, sp, d, dp)
            if length > 12:
                desc += ' +%d' % (length - 12)
        elif fam == 0x21 and length >= 36:
            s, d = socket.inet_ntop(socket.AF_INET6, body[0:16]), \
                socket.inet_ntop(socket.AF_INET6, body[16:32])
            sp, dp = struct.unpack('!HH', body[32:36])
            desc = 'v2 TCP6 %s %d %s %d' % (s, sp, d, dp)
            if length > 36:
                desc += ' +%d' % (length - 36)
        else:
            desc = 'v2 FAM%#x LEN%d' % (fam, length)
        return desc, rest
    if buf.startswith(b'PROXY '):
        while b'\r\n' not in buf[:107]:
            if len(buf) >= 107:
                raise ValueError('v1 line without CRLF: %r' % buf[:120])
            buf += more()
        i = buf.index(b'\r\n')
        line, rest = buf[:i].decode('ascii'), buf[i + 2:]
        f = line.split(' ')
        if len(f) >= 2 and f[1] == 'UNKNOWN':
            return 'v1 UNKNOWN', rest
        if len(f) != 6 or f[1] not in ('TCP4', 'TCP6'):
            raise ValueError('v1 line %r' % line)
        fam = socket.AF_INET if f[1] == 'TCP4' else socket.AF_INET6
        for a in f[2:4]:
            socket.inet_pton(fam, a)        # raises on a bad address
        for p in f[4:6]:
            if not p.isdigit() or (p != '0' and p[0] == '0') or \
                    int(p) > 65535:
                raise ValueError('v1 port %r' % p)
        return 'v1 %s %s %s %s %s' % (f[1], f[2], f[4], f[3], f[5]), rest
    raise ValueError('no PROXY header: %r' % buf[:40])


def pp_serve(conn, name):
    try:
        try:
            desc, rest = pp_read_header(conn, b'')
        except (ValueError, OSError, UnicodeError) as e:
            conn.sendall(('%s BAD %s\n' % (name, e)).encode())
            return
        conn.sendall(('%s %s\n' % (name, desc)).encode() + rest)
        while True:
            d = conn.recv(1 << 18)
            if not d:
                conn.shutdown(socket.SHUT_WR)
                while conn.recv(65536):
                    pass
                return
            conn.sendall(d)
    except OSError:
        pass
    finally:
        conn.close()


def pp_backend_main(name):
    lst = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lst.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lst.bind(('127.0.0.1', 0))
    lst.listen(128)
    sys.stdout.write('READY %d\n' % lst.getsockname()[1])
    sys.stdout.flush()
    while True:
        conn, _ = lst.accept()
        threading.Thread(target=pp_serve, args=(conn, name),
                         daemon=True).start()


if __name__ == '__main__' and len(sys.argv) == 3 and \
        sys.argv[1] == '--pp-backend':
    pp_backend_main(sys.argv[2])
    sys.exit(0)


# ----------------------------------------------------------- the tests

sys.dont_write_bytecode = True  # the source tree may be read-only
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402
from harness import check  # noqa: E402

h = H.Harness('test_proxyproto', file_timeout=90)
MiB = 1 << 20
HEADER_WAIT = 5.0       # how long baton waits for a client's header
SELF = os.path.abspath(__file__)

DECL_SRC, DECL_SPORT = '203.0.113.7', 4242
DECL_DST, DECL_DPORT = '198.51.100.1', 80


def start_pp_backend(name, timeout=10.0):
    """Run this file as a PROXY-aware backend; a harness Backend."""
    import select
    errlog = open(h.path('ppbackend-%s.err' % name), 'ab')
    try:
        p = h._spawn([H.PYTHON, SELF, '--pp-backend', name],
                     stdout=subprocess.PIPE, stderr=errlog)
    finally:
        errlog.close()
    deadline = time.monotonic() + timeout
    line = b''
    while not line.endswith(b'\n'):
        left = deadline - time.monotonic()
        check(left > 0 and p.poll() is None,
              'PROXY backend %s not ready (rc %r, got %r)'
              % (name, p.poll(), line))
        r, _, _ = select.select([p.stdout], [], [], left)
        if r:
            c = os.read(p.stdout.fileno(), 1)
            if c:
                line += c
    check(line.startswith(b'READY '), 'PROXY backend said %r' % line)
    return H.Backend(p, int(line.split()[1]), name, 'pp')


def conf(port, servers, sport, accept=None, balance='roundrobin',
         backend_send=None, idle='30s', workers=2, listens=()):
    lines = ['[global]', 'workers = %d' % workers, 'drain_timeout = 2s',
             'log_level = info', '',
             '[stats]', 'listen = 127.0.0.1:%d' % sport, '',
             '[frontend web]', 'listen = 127.0.0.1:%d' % port]
    lines += ['listen = %s' % x for x in listens]
    lines += ['backend = app', 'timeout_idle = %s' % idle]
    if accept:
        lines.append('accept_proxy = %s' % accept)
    lines += ['', '[backend app]', 'balance = %s' % balance]
    lines += ['server = %s' % s for s in servers]
    lines += ['connect_timeout = 1s', 'retries = 1']
    if backend_send:
        lines.append('send_proxy = %s' % backend_send)
    return '\n'.join(lines) + '\n'


def two_ports():
    port, sport = H.free_port(), H.free_port()
    while sport == port:
        sport = H.free_port()
    return port, sport


def start(servers_opts, accept=None, balance='roundrobin', backend_send=None,
          idle='30s', workers=2, listens=()):
    """PROXY backends (name, server options), then baton: (b, port, sport).

    b.backends holds the backends."""
    backends = [start_pp_backend(n) for n, _ in servers_opts]
    port, sport = two_ports()
    servers = ['%s 127.0.0.1:%d %s' % (be.name, be.port, opts)
               for be, (_, opts) in zip(backends, servers_opts)]
    b = h.start_baton(conf(port, servers, sport, accept, balance,
                           backend_send, idle, workers, listens))
    b.backends = backends
    return b, port, sport


def get_stats(sport):
    c = http.client.HTTPConnection(H.LOCALHOST, sport, timeout=3)
    try:
        c.request('GET', '/stats')
        r = c.getresponse()
        body = r.read()
        check(r.status == 200, 'GET /stats: %d %r' % (r.status, body[:200]))
        return json.loads(body.decode())
    finally:
        c.close()


def frontend_stats(sport):
    return get_stats(sport)['frontends'][0]


def server_totals(sport):
    return {s['name']: s['total']
            for s in get_stats(sport)['backends'][0]['servers']}


def v1_header(src=DECL_SRC, sport=DECL_SPORT, dst=DECL_DST, dport=DECL_DPORT):
    fam = 'TCP6' if ':' in src else 'TCP4'
    return ('PROXY %s %s %s %d %d\r\n' % (fam, src, dst, sport,
                                          dport)).encode()


def v2_header(src=DECL_SRC, sport=DECL_SPORT, dst=DECL_DST, dport=DECL_DPORT,
              tlvs=b''):
    s, d = ipaddress.ip_address(src), ipaddress.ip_address(dst)
    fam = 0x11 if s.version == 4 else 0x21
    body = s.packed + d.packed + struct.pack('!HH', sport, dport) + tlvs
    return SIG + struct.pack('!BBH', 0x21, fam, len(body)) + body


def expect_line(sock, want, what):
    got = H.recv_line(sock, timeout=5).decode(errors='replace').rstrip('\n')
    check(got == want, '%s: backend saw %r, expected %r' % (what, got, want))


def client(port, nodelay=True):
    s = H.connect(port)
    if nodelay:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def echo_big(sock, n=MiB, seed=1):
    """Send N random bytes from a thread, read the echo: same bytes."""
    data = random.Random(seed).randbytes(n)
    err = []

    def sender():
        try:
            sock.sendall(data)
        except OSError as e:
            err.append(e)
    t = threading.Thread(target=sender, daemon=True)
    t.start()
    got = H.recv_exact(sock, n, timeout=15)
    t.join(5)
    check(not err, 'sending %d bytes failed: %r' % (n, err))
    check(hashlib.sha256(got).digest() == hashlib.sha256(data).digest(),
          'echo of %d bytes differs (first difference at %d)'
          % (n, next((i for i in range(n) if got[i] != data[i]), -1)))


def expect_closed(sock, within, what):
    how, dt = H.wait_closed(sock, within)
    check(how in ('eof', 'reset'), '%s: not closed within %.1fs'
          % (what, within))
    return dt


# A payload that itself looks like PROXY headers: it must reach the server
# as data, once, after baton's own header.
TRICKY = (b'PROXY TCP4 10.9.8.7 10.6.5.4 1 2\r\n' + v2_header('10.1.1.1', 7,
          '10.2.2.2', 8) + b'GET / HTTP/1.0\r\n\r\n' + bytes(range(256)))


# ------------------------------------------------------------ send_proxy

def send_proxy_case(version, server_opt, backend_key):
    b, port, sport = start([('s1', server_opt)], backend_send=backend_key)
    s = client(port)
    try:
        cport = s.getsockname()[1]
        expect_line(s, 's1 %s TCP4 127.0.0.1 %d 127.0.0.1 %d'
                    % (version, cport, port), 'send_proxy=%s' % version)
        H.echo_ok(s, TRICKY)
        echo_big(s)
    finally:
        s.close()


@h.case
def send_proxy_v1_server_option():
    send_proxy_case('v1', 'send_proxy=v1', None)


@h.case
def send_proxy_v2_backend_key():
    send_proxy_case('v2', '', 'v2')


@h.case
def send_proxy_server_option_overrides_backend_key():
    b, port, sport = start([('s1', 'send_proxy=v1')], backend_send='v2')
    s = client(port)
    try:
        expect_line(s, 's1 v1 TCP4 127.0.0.1 %d 127.0.0.1 %d'
                    % (s.getsockname()[1], port), 'server send_proxy=v1')
        H.echo_ok(s, b'hello\n')
    finally:
        s.close()


@h.case
def send_proxy_v2_ipv6_frontend():
    try:
        t = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        t.bind(('::1', 0))
        port6 = t.getsockname()[1]
        t.close()
    except OSError as e:
        raise H.Skip('no IPv6 loopback: %s' % e)
    b, port, sport = start([('s1', 'send_proxy=v2')],
                           listens=['[::1]:%d' % port6])
    s = H.connect(port6, host='::1')
    try:
        expect_line(s, 's1 v2 TCP6 ::1 %d ::1 %d'
                    % (s.getsockname()[1], port6), 'IPv6 frontend')
        H.echo_ok(s, TRICKY)
    finally:
        s.close()


# ---------------------------------------------------------- accept_proxy

def declared_case(accept, headers, send):
    """Each header in HEADERS, sent with a payload in one write, must
    reach the server as the declared addresses (in SEND's version)."""
    b, port, sport = start([('s1', 'send_proxy=%s' % send)], accept=accept)
    for hdr, want in headers:
        s = client(port)
        try:
            first = TRICKY + b'same packet as the header\n'
            s.sendall(hdr + first)
            expect_line(s, 's1 %s %s' % (send, want),
                        'accept_proxy=%s, header %r' % (accept, hdr[:60]))
            got = H.recv_exact(s, len(first))
            check(got == first, 'payload sent with the header came back '
                  'as %r' % got[:80])
            echo_big(s, 256 * 1024)
        finally:
            s.close()
    st = frontend_stats(sport)
    check(st['errors'] == 0, 'frontend errors %r' % st)
    return b, port, sport


DECL4 = 'TCP4 %s %d %s %d' % (DECL_SRC, DECL_SPORT, DECL_DST, DECL_DPORT)


@h.case
def accept_v1_declared_addresses():
    declared_case('v1', [(v1_header(), DECL4)], 'v2')


@h.case
def accept_v2_declared_addresses():
    declared_case('v2', [
        (v2_header(), DECL4),
        # TLVs after the address block are skipped, not passed on.
        (v2_header(tlvs=b'\x04\x00\x03abc\x02\x00\x0bexample.com'), DECL4),
    ], 'v1')


@h.case
def accept_any_declared_addresses():
    decl6 = 'TCP6 2001:db8::7 4242 2001:db8::1 443'
    declared_case('any', [
        (v1_header(), DECL4),
        (v2_header(), DECL4),
        (v1_header('2001:db8::7', 4242, '2001:db8::1', 443), decl6),
        (v2_header('2001:db8::7', 4242, '2001:db8::1', 443), decl6),
    ], 'v2')


@h.case
def accept_unknown_or_local_keeps_real_addresses():
    b, port, sport = start([('s1', 'send_proxy=v1')], accept='any')
    local = SIG + b'\x20\x00\x00\x00'
    for hdr in (b'PROXY UNKNOWN\r\n', local):
        s = client(port)
        try:
            s.sendall(hdr + b'data\n')
            expect_line(s, 's1 v1 TCP4 127.0.0.1 %d 127.0.0.1 %d'
                        % (s.getsockname()[1], port), 'header %r' % hdr)
            check(H.recv_exact(s, 5) == b'data\n', 'payload lost')
        finally:
            s.close()


@h.case
def accept_split_header_writes():
    b, port, sport = start([('s1', 'send_proxy=v1')], accept='any')
    for hdr in (v1_header(), v2_header()):
        s = client(port)
        try:
            cuts = [0, 3, 5, 6, 17, len(hdr) - 1, len(hdr)]
            for a, z in zip(cuts, cuts[1:]):
                s.sendall(hdr[a:z])
                time.sleep(0.05)
            s.sendall(b'after the split header\n')
            expect_line(s, 's1 v1 ' + DECL4, 'split header %r' % hdr)
            got = H.recv_exact(s, 23)
            check(got == b'after the split header\n', 'got %r' % got)
        finally:
            s.close()


@h.case
def accept_bad_header_closed_and_counted():
    b, port, sport = start([('s1', 'send_proxy=v1')], accept='v1',
                           workers=1)
    bads = [
        b'GET / HTTP/1.1\r\nHost: x\r\n\r\n',
        v2_header() + b'data',                  # v2 on a v1 frontend
        b'PROXY TCP4 1.2.3.4 5.6.7.8 65536 80\r\ndata',
        b'PROXY TCP4 ::1 ::2 1 2\r\ndata',
        b'PROXY ' + b'x' * 150 + b'\r\n',       # no CRLF within 107
    ]
    for bad in bads:
        s = client(port)
        try:
            s.sendall(bad)
            dt = expect_closed(s, 2.0, 'bad header %r' % bad[:40])
            check(dt < 1.5, 'bad header %r: closed only after %.1fs'
                  % (bad[:40], dt))
        finally:
            s.close()
    H.poll_until(lambda: frontend_stats(sport)['errors'] == len(bads), 3.0,
                 'frontend errors == %d (now %r)'
                 % (len(bads), frontend_stats(sport)))
    check(server_totals(sport) == {'s1': 0},
          'a server got a connection: %r' % server_totals(sport))
    b.check_running()
    s = client(port)
    try:
        s.sendall(v1_header() + b'ok\n')
        expect_line(s, 's1 v1 ' + DECL4, 'after bad headers')
        check(H.recv_exact(s, 3) == b'ok\n', 'payload lost')
    finally:
        s.close()


@h.case
def accept_v2_bad_headers_closed():
    b, port, sport = start([('s1', 'send_proxy=v1')], accept='v2',
                           workers=1)
    bads = [
        v1_header() + b'data',                  # v1 on a v2 frontend
        SIG + b'\x11\x11\x00\x0c' + bytes(12),  # version 1
        SIG + b'\x22\x11\x00\x0c' + bytes(12),  # command 2
        SIG + b'\x21\x11\x00\x08' + bytes(8),   # TCP4 block too short
        SIG + b'\x21\x11\xff\xff' + bytes(64),  # length over the limit
        b'\r\n\r\n\x00\r\nQUIX\n' + bytes(16),  # signature
    ]
    for bad in bads:
        s = client(port)
        try:
            s.sendall(bad)
            dt = expect_closed(s, 2.0, 'bad header %r' % bad[:40])
            check(dt < 1.5, 'bad header %r: closed only after %.1fs'
                  % (bad[:40], dt))
        finally:
            s.close()
    H.poll_until(lambda: frontend_stats(sport)['errors'] == len(bads), 3.0,
                 'frontend errors == %d' % len(bads))
    check(server_totals(sport) == {'s1': 0},
          'a server got a connection: %r' % server_totals(sport))


@h.case
def accept_no_header_closed_after_a_few_seconds():
    b, port, sport = start([('s1', 'send_proxy=v1')], accept='any',
                           workers=2)
    silent = client(port)
    partial = client(port)          # half a header, then nothing
    partial.sendall(v1_header()[:20])
    partial2 = client(port)
    partial2.sendall(v2_header()[:14])
    t0 = time.monotonic()
    try:
        res = []
        for s in (silent, partial, partial2):
            how, _ = H.wait_closed(s, HEADER_WAIT + 3.0 -
                                   (time.monotonic() - t0))
            res.append((how, time.monotonic() - t0))
        for (how, dt), what in zip(res, ('no header', 'partial v1',
                                         'partial v2')):
            check(how in ('eof', 'reset'), '%s: still open after %.1fs'
                  % (what, dt))
            check(dt >= 2.0, '%s: closed after only %.1fs' % (what, dt))
    finally:
        for s in (silent, partial, partial2):
            s.close()
    b.check_running()
    H.poll_until(lambda: frontend_stats(sport)['errors'] == 3, 3.0,
                 'frontend errors == 3 (now %r)' % frontend_stats(sport))
    check(server_totals(sport) == {'s1': 0},
          'a server got a connection: %r' % server_totals(sport))
    s = client(port)
    try:
        s.sendall(v2_header() + b'still up\n')
        expect_line(s, 's1 v1 ' + DECL4, 'after timeouts')
        check(H.recv_exact(s, 9) == b'still up\n', 'payload lost')
    finally:
        s.close()


@h.case
def accept_header_wait_bounded_by_timeout_idle():
    b, port, sport = start([('s1', 'send_proxy=v1')], accept='v1',
                           idle='1s', workers=1)
    s = client(port)
    try:
        dt = expect_closed(s, 4.0, 'no header, timeout_idle 1s')
        check(0.5 <= dt <= 3.0, 'closed after %.1fs with timeout_idle 1s'
              % dt)
    finally:
        s.close()


@h.case
def source_balance_uses_declared_address():
    b, port, sport = start([('a1', 'send_proxy=v1'), ('a2', 'send_proxy=v1'),
                            ('a3', 'send_proxy=v1')],
                           accept='v1', balance='source', workers=2)
    seen = {}
    for rnd in range(3):
        for i in range(12):
            src = '198.18.%d.%d' % (i, 10 + i)
            s = client(port)
            try:
                s.sendall(v1_header(src, 1000 + rnd * 100 + i) + b'hi\n')
                line = H.recv_line(s).decode().split()
                check(line[1:4] == ['v1', 'TCP4', src],
                      'declared %s: backend saw %r' % (src, line))
                check(H.recv_exact(s, 3) == b'hi\n', 'payload lost')
            finally:
                s.close()
            seen.setdefault(src, []).append(line[0])
    for src, names in seen.items():
        check(len(set(names)) == 1, 'declared client %s went to %r'
              % (src, names))
    used = {names[0] for names in seen.values()}
    # Every connection comes from 127.0.0.1: hashing the real address
    # would send all twelve to one server.
    check(len(used) >= 2, 'all 12 declared clients on %r: source balancing '
          'ignores the declared address' % used)


if __name__ == '__main__':
    sys.exit(h.run())
