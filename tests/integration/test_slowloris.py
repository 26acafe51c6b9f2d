#!/usr/bin/python3
"""test_slowloris.py -- slow and half-open clients are bounded on every
kind of frontend port: plain TCP (timeout_idle), accept_proxy (the PROXY
header, trickled or endless) and TLS (a trickled ClientHello, a silent
client; after a PROXY header too).

Each case opens SLOW connections that keep sending a byte every TRICKLE
seconds (or nothing), and checks that
  (a) baton closes each within its deadline (timeout_idle, or the header
      and handshake bound, min(timeout_idle, 5 s)) plus a margin: the
      deadline is for the whole header or handshake, so a timer reset by
      every byte would never fire;
  (b) while they are held, normal clients of the same frontend are served
      (their bytes echoed and compared);
  (c) afterwards the master's and every worker's descriptors are back to
      what they were before.

The TLS certificate is made per run with the openssl command (SKIP
without it).
"""

import os
import selectors
import ssl
import struct
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # the source tree may be read-only
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402
from harness import check  # noqa: E402

h = H.Harness('test_slowloris', file_timeout=150)
SLOW = 100          # slow connections per case
DEADLINE = 2.0      # timeout_idle, so also the header and handshake bound
EARLY = 0.3         # how much sooner than DEADLINE baton may close
MARGIN = 1.5        # how much later (sanitizer builds, shared cores)
TRICKLE = 0.3       # seconds between two bytes of a slow client
HELD = 0.6          # when, while the slow ones are held, to serve others

V1 = b'PROXY TCP4 192.0.2.10 198.51.100.20 40000 443\r\n'
SIG = b'\r\n\r\n\x00\r\nQUIT\n'


def v2_endless():
    """A v2 header whose fixed part declares the longest body baton takes
    (216 bytes): (first bytes, body) for the body to be trickled."""
    return SIG + struct.pack('!BBH', 0x21, 0x11, 216), bytes(range(216))


# ------------------------------------------------------------ baton

def cert():
    """(cert, key) paths of a self-signed EC certificate for localhost."""
    c, k = h.path('cert.pem'), h.path('key.pem')
    try:
        r = subprocess.run(
            ['openssl', 'req', '-x509', '-newkey', 'ec', '-pkeyopt',
             'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', k, '-out',
             c, '-days', '2', '-subj', '/CN=localhost'],
            stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
    except FileNotFoundError:
        raise H.Skip('no openssl command to make a test certificate')
    check(r.returncode == 0, 'openssl: %s' % r.stderr.decode()[-300:])
    return c, k


def start(accept_proxy=None, tls=False):
    """An echo backend and baton with one frontend 'web' (timeout_idle
    DEADLINE) of the given kind; (port, Baton)."""
    echo = h.start_backend('echo', name='echo')
    port = H.free_port()
    extra = ''
    if accept_proxy:
        extra += 'accept_proxy = %s\n' % accept_proxy
    if tls:
        c, k = cert()
        extra += 'tls_cert = %s\ntls_key = %s\n' % (c, k)
    text = H.config(port, ['s1 127.0.0.1:%d' % echo.port], workers=2,
                    idle='%dms' % int(DEADLINE * 1000))
    text = text.replace('timeout_idle = ', extra + 'timeout_idle = ', 1)
    return port, h.start_baton(text)


def client_ctx():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def tls_handshaken(port):
    """A TCP socket to PORT on which a TLS handshake (through memory BIOs)
    is done: what is sent on it next, baton reads as TLS records."""
    raw = H.connect(port, timeout=3)
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = client_ctx().wrap_bio(inc, out, server_hostname='localhost')
    try:
        while True:
            try:
                obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                pass
            raw.sendall(out.read())
            data = raw.recv(65536)
            check(data, 'closed during a TLS handshake')
            inc.write(data)
        raw.sendall(out.read())
    except BaseException:
        raw.close()
        raise
    return raw


def normal_client(port, header=b'', tls=False):
    """A client that behaves: HEADER, then TLS if asked, a line echoed."""
    def serve(i):
        s = H.connect(port, timeout=3)
        try:
            s.sendall(header)
            if tls:
                s = client_ctx().wrap_socket(s, server_hostname='localhost')
            H.echo_ok(s, b'normal client %d\n' % i, timeout=3)
        finally:
            s.close()
    return serve


def fd_counts(b):
    """{pid: open descriptors} of the master and its workers."""
    return {p: H.fd_count(p) for p in [b.pid] + b.workers()}


def settled_fds(b):
    """fd_counts(b) once it reads the same three times 100 ms apart."""
    seen = []

    def stable():
        seen.append(fd_counts(b))
        return seen[-1] if len(seen) >= 3 and seen[-1] == seen[-2] == \
            seen[-3] else None
    return H.poll_until(stable, 5, 'descriptor counts to settle',
                        interval=0.1)


# ------------------------------------------------------------ slowloris

class Slow:
    """One slow client: on a socket from OPEN(), FIRST sent at once, then,
    WAIT s later, TRICKLE one byte every TRICKLE seconds while it lasts."""

    def __init__(self, k):
        self.sock = k['open']()
        self.t0 = time.monotonic()
        if k['first']:
            self.sock.sendall(k['first'])
        self.sock.setblocking(False)
        self.trickle = k['trickle']
        self.wait = k['wait']
        self.sent = 0
        self.closed = None      # seconds after t0 when baton closed it
        self.how = None

    def close_seen(self, how):
        self.closed, self.how = time.monotonic() - self.t0, how

    def send_one(self):
        if self.closed is not None or self.sent >= len(self.trickle) or \
                time.monotonic() - self.t0 < self.wait:
            return
        try:
            self.sock.send(self.trickle[self.sent:self.sent + 1])
            self.sent += 1
        except BlockingIOError:
            pass
        except OSError as e:        # EPIPE, ECONNRESET: baton closed it
            self.close_seen(type(e).__name__)

    def readable(self):
        try:
            data = self.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError as e:
            self.close_seen(type(e).__name__)
            return
        if not data:
            self.close_seen('eof')


def kind(what, first=b'', trickle=b'', wait=0.0, opener=None):
    """A kind of slow client (see Slow); OPENER(port) gives its socket
    (default: a TCP connection)."""
    return {'what': what, 'first': first, 'trickle': trickle, 'wait': wait,
            'opener': opener or (lambda port: H.connect(port, timeout=3))}


def slowloris(port, k, serve):
    """SLOW slow clients of kind K held on PORT; SERVE(i) meanwhile, HELD s
    in. Checks (a) and (b) of the docstring."""
    what = k['what']
    k = dict(k, open=lambda: k['opener'](port))
    slows = [Slow(k) for _ in range(SLOW)]
    sel = selectors.DefaultSelector()
    try:
        for s in slows:
            sel.register(s.sock, selectors.EVENT_READ, s)
        t_start = time.monotonic()
        limit = t_start + DEADLINE + MARGIN + 1.0
        next_byte = t_start + TRICKLE
        served = False
        while time.monotonic() < limit:
            now = time.monotonic()
            if not served and now >= t_start + HELD:
                early = [s.closed for s in slows if s.closed is not None]
                check(not early, '%s: %d of %d slow clients closed after '
                      'only %.2fs' % (what, len(early), SLOW, min(early or
                                                                  [0])))
                t = time.monotonic()
                for i in range(5):
                    serve(i)
                print('  %s: 5 normal clients served in %.2fs while %d '
                      'slow ones were held' % (what, time.monotonic() - t,
                                               SLOW))
                served = True
                continue
            if now >= next_byte:
                for s in slows:
                    s.send_one()
                next_byte += TRICKLE
            for key, _ in sel.select(max(0.0, min(next_byte, limit) - now)):
                key.data.readable()
                if key.data.closed is not None:
                    sel.unregister(key.fileobj)
            if served and all(s.closed is not None for s in slows):
                break
    finally:
        sel.close()
        for s in slows:
            s.sock.close()
    check(served, '%s: normal clients never tried' % what)
    still = [s for s in slows if s.closed is None]
    check(not still, '%s: %d of %d slow clients still open after %.1fs '
          '(deadline %.1fs; they sent up to %d bytes each)'
          % (what, len(still), SLOW, DEADLINE + MARGIN + 1.0, DEADLINE,
             max(s.sent for s in slows)))
    times = sorted(s.closed for s in slows)
    print('  %s: %d slow clients closed after %.2f..%.2fs (%s)'
          % (what, SLOW, times[0], times[-1],
             ', '.join(sorted({s.how for s in slows}))))
    check(DEADLINE - EARLY <= times[0] and times[-1] <= DEADLINE + MARGIN,
          '%s: slow clients closed after %.2f..%.2fs, want %.1f..%.1fs'
          % (what, times[0], times[-1], DEADLINE - EARLY, DEADLINE + MARGIN))


def run(port, b, serve, kinds):
    """Each of KINDS (see kind()) as a slowloris on PORT, then check (c):
    descriptors back to where they were."""
    serve(0)                            # warm up: the pools, TLS
    base = settled_fds(b)
    for k in kinds:
        what = k['what']
        slowloris(port, k, serve)
        b.check_running()
        got = {}

        def back():
            got.update(fd_counts(b))
            return got == base
        try:
            H.poll_until(back, 5, 'descriptors back to %r' % base)
        except H.Failure:
            raise H.Failure('%s: descriptors %r, were %r before'
                            % (what, got, base))
    b.check_clean_exits()


# ------------------------------------------------------------ cases

@h.case(timeout=40)
def plain_tcp_stalled_and_silent():
    # Plain TCP: bytes that move are activity, so the slow clients here
    # are the ones that stop: half a request, or nothing at all.
    port, b = start()
    run(port, b, normal_client(port),
        [kind('plain, half a request then nothing',
              b'GET / HTTP/1.1\r\nHost: exa'),
         kind('plain, nothing at all')])


@h.case(timeout=40)
def proxy_header_trickled():
    port, b = start(accept_proxy='v1')
    run(port, b, normal_client(port, V1),
        [kind('PROXY v1 header, a byte every %.1fs' % TRICKLE,
              trickle=V1[:-2])])


@h.case(timeout=40)
def proxy_header_never_ends():
    port, b = start(accept_proxy='any')
    first, body = v2_endless()
    run(port, b, normal_client(port, V1),
        [kind('PROXY v2 header declaring 216 bytes, trickled', first, body),
         kind('PROXY v1 line that never ends', b'PROXY TCP4 ', b'1' * 95),
         kind('accept_proxy, nothing at all')])


@h.case(timeout=40)
def tls_hello_trickled_and_silent():
    port, b = start(tls=True)
    run(port, b, normal_client(port, tls=True),
        [kind('TLS ClientHello, a byte every %.1fs' % TRICKLE,
              trickle=H.tls_client_hello()),
         kind('TLS, nothing at all'),
         # After the handshake, a record that never completes moves no
         # byte: the connection is idle.
         kind('TLS record trickled after the handshake',
              b'\x17\x03\x03\x40\x00', os.urandom(200),
              opener=tls_handshaken)])


@h.case(timeout=40)
def proxy_then_tls_trickled():
    port, b = start(accept_proxy='v1', tls=True)
    run(port, b, normal_client(port, V1, tls=True),
        [kind('PROXY header, then a ClientHello trickled', V1,
              H.tls_client_hello()),
         kind('PROXY header trickled, TLS frontend', trickle=V1[:-2]),
         # One deadline for both: a header that ends late leaves the
         # handshake only what is left of it.
         kind('PROXY header ending at %.1fs, then a ClientHello trickled'
              % (DEADLINE - 0.2), V1[:-2], b'\r\n' + H.tls_client_hello(),
              wait=DEADLINE - 0.2 - TRICKLE)])


if __name__ == '__main__':
    sys.exit(h.run())
