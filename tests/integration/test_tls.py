#!/usr/bin/python3
"""test_tls.py -- TLS termination: TLS 1.2 and 1.3 clients (RSA and EC
certificates, a served chain) through baton to plain backends, bulk data
both ways with close_notify as the half-close, plain-TCP and silent
clients cut before any server is contacted, the handshake bound, no server
reachable after the handshake, certificate errors at start (exit 2) and on
reload (old certificate kept), certificate renewal by reload, 200
concurrent TLS clients, and the memory an idle TLS connection costs.

Certificates are made per run with the openssl command (SKIP without it).
"""

import hashlib
import os
import re
import select
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True  # the source tree may be read-only
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402
from harness import check  # noqa: E402
import backend as B  # noqa: E402

h = H.Harness('test_tls', file_timeout=120)
MiB = 1 << 20
STALL = 3.0           # seconds without data or EOF that mean a stall
HANDSHAKE_S = 5.0     # baton's bound on a handshake (timeout_idle if less)
V12, V13 = ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3


# --------------------------------------------------------- certificates

EXT_CNF = """\
[req]
distinguished_name = dn
[dn]
[v3_ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[v3_leaf]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost,IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"""
SAN = 'subjectAltName=DNS:localhost,IP:127.0.0.1'
EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1']
_certs = {}


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
    """Paths of this run's certificates and keys (made once per file).

    rsa / rsa2 / ec: self-signed leaf certificates for localhost with
    their keys. chain: a leaf signed by an intermediate signed by a root;
    its tls_cert file holds leaf + intermediate, root.pem is the anchor.
    """
    if _certs:
        return _certs
    os.makedirs(certdir(), exist_ok=True)
    d = certdir()
    with open(os.path.join(d, 'ext.cnf'), 'w') as f:
        f.write(EXT_CNF)
    subj = ['-days', '2', '-subj', '/CN=localhost', '-addext', SAN]
    openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout',
            'rsa.key', '-out', 'rsa.pem', *subj)
    openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout',
            'rsa2.key', '-out', 'rsa2.pem', *subj)
    openssl('req', '-x509', *EC, '-nodes', '-keyout', 'ec.key', '-out',
            'ec.pem', *subj)
    openssl('req', '-x509', *EC, '-nodes', '-keyout', 'root.key', '-out',
            'root.pem', '-days', '2', '-subj', '/CN=baton test root',
            '-config', 'ext.cnf', '-extensions', 'v3_ca')
    for name, ca, ext, cn in (('inter', 'root', 'v3_ca', 'baton test inter'),
                              ('leaf', 'inter', 'v3_leaf', 'localhost')):
        openssl('req', '-new', *EC, '-nodes', '-keyout', name + '.key',
                '-out', name + '.csr', '-subj', '/CN=' + cn,
                '-config', 'ext.cnf')
        openssl('x509', '-req', '-in', name + '.csr', '-CA', ca + '.pem',
                '-CAkey', ca + '.key', '-set_serial', '0x%x' % len(name),
                '-days', '2', '-out', name + '.pem', '-extfile', 'ext.cnf',
                '-extensions', ext)
    with open(os.path.join(d, 'chain.pem'), 'w') as out:
        for name in ('leaf', 'inter'):
            with open(os.path.join(d, name + '.pem')) as f:
                out.write(f.read())
    for name in ('rsa', 'rsa2', 'ec', 'leaf', 'root'):
        _certs[name] = (os.path.join(d, name + '.pem'),
                        os.path.join(d, name + '.key'))
    _certs['chain'] = (os.path.join(d, 'chain.pem'), _certs['leaf'][1])
    return _certs


def der_of(pem_path):
    """DER of the first certificate in PEM_PATH."""
    with open(pem_path) as f:
        text = f.read()
    m = re.search(r'-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----',
                  text, re.S)
    return ssl.PEM_cert_to_DER_cert(m.group(0))


def fp(der):
    return hashlib.sha256(der).hexdigest()[:16]


# ------------------------------------------------------------- configs

def conf(fronts, backends, sport=None, workers=2, extra_global=''):
    """A proxy.ini.

    FRONTS: [(name, port, backend, cert, key, timeout_idle)], cert None
    for plain TCP. BACKENDS: [(name, [server lines], connect_timeout,
    retries)].
    """
    lines = ['[global]', 'workers = %d' % workers, 'drain_timeout = 5s',
             'log_level = info', 'access_log = on', extra_global, '']
    if sport:
        lines += ['[stats]', 'listen = 127.0.0.1:%d' % sport, '']
    for name, port, be, cert, key, idle in fronts:
        lines += ['[frontend %s]' % name, 'listen = 127.0.0.1:%d' % port,
                  'backend = %s' % be, 'timeout_idle = %s' % idle]
        if cert:
            lines += ['tls_cert = %s' % cert, 'tls_key = %s' % key]
        lines.append('')
    for name, servers, ctimeout, retries in backends:
        lines += ['[backend %s]' % name, 'balance = roundrobin']
        lines += ['server = %s' % s for s in servers]
        lines += ['connect_timeout = %s' % ctimeout,
                  'retries = %d' % retries, '']
    return '\n'.join(lines)


def tls_proxy(backend, cert='rsa', sport=None, workers=2, idle='30s',
              env_extra=None):
    """baton with one TLS frontend 'web' in front of BACKEND (a Backend
    or a port); (frontend port, Baton)."""
    c, k = certs()[cert]
    port = H.free_port()
    bport = backend if isinstance(backend, int) else backend.port
    b = h.start_baton(conf([('web', port, 'app', c, k, idle)],
                           [('app', ['s1 127.0.0.1:%d' % bport], '1s', 1)],
                           sport=sport, workers=workers),
                      env_extra=env_extra)
    return port, b


def frontend_stats(sport, name):
    for f in H.get_stats(sport)['frontends']:
        if f['name'] == name:
            return f
    raise H.Failure('no frontend %r in /stats' % name)


def server_stats(sport, backend='app', server='s1'):
    for be in H.get_stats(sport)['backends']:
        if be['name'] == backend:
            for s in be['servers']:
                if s['name'] == server:
                    return s
    raise H.Failure('no server %s/%s in /stats' % (backend, server))


# ------------------------------------------------------------- clients

def client_ctx(version=None, ca=None):
    """A client context: pinned to VERSION if given; verifying against
    the CA file CA (and the name localhost) if given, else not verifying."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if ca:
        ctx.load_verify_locations(ca)
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if version:
        ctx.minimum_version = ctx.maximum_version = version
    return ctx


def tls_connect(port, version=None, ca=None, timeout=5.0, ragged=False,
                ctx=None):
    """A TLS client socket with its handshake done.

    RAGGED False: an EOF without close_notify raises SSLEOFError instead
    of reading as a clean end.
    """
    raw = H.connect(port, timeout)
    try:
        return (ctx or client_ctx(version, ca)).wrap_socket(
            raw, server_hostname='localhost', suppress_ragged_eofs=ragged)
    except BaseException:
        raw.close()
        raise


def read_all(sock, timeout, expect=None, stall=STALL):
    """Read SOCK until its TLS end: (length, sha256 hex).

    Fails on a stall, on no end after TIMEOUT s, and on an end without
    close_notify (SSLEOFError) or a reset.
    """
    deadline = time.monotonic() + timeout
    hh = hashlib.sha256()
    total = 0
    buf = bytearray(1 << 17)
    while True:
        left = deadline - time.monotonic()
        check(left > 0, 'no end within %.0fs (%d bytes read)'
              % (timeout, total))
        sock.settimeout(min(left, stall))
        try:
            n = sock.recv_into(buf)
        except socket.timeout:
            if total == expect:
                raise H.Failure('all %d bytes arrived but no close_notify/'
                                'EOF within %.1fs' % (total, stall))
            raise H.Failure('nothing for %.1fs after %d bytes (of %r)'
                            % (stall, total, expect))
        except ssl.SSLZeroReturnError:
            # close_notify after our own (send_close_notify): Python
            # returns b'' only when the peer's came first.
            return total, hh.hexdigest()
        except ssl.SSLEOFError as e:
            raise H.Failure('the connection ended without close_notify '
                            'after %d bytes (of %r): %s' % (total, expect, e))
        except ConnectionResetError as e:
            raise H.Failure('reset after %d bytes (of %r): %s'
                            % (total, expect, e))
        if n == 0:
            return total, hh.hexdigest()
        hh.update(memoryview(buf)[:n])
        total += n


def duplex(sock, chunks, timeout, stall=STALL):
    """Send CHUNKS while reading what comes back, in one thread (an
    SSLSocket must not be read and written from two threads at once).

    Returns (bytes sent, sha256 of them, bytes read, sha256 of those) once
    everything sent has been read back.
    """
    sock.setblocking(False)
    fd = sock.fileno()
    sent_h, got_h = hashlib.sha256(), hashlib.sha256()
    sent = got = 0
    it = iter(chunks)
    cur, off = None, 0
    done_sending = False
    deadline = time.monotonic() + timeout
    last = time.monotonic()
    while not (done_sending and got >= sent):
        now = time.monotonic()
        check(now < deadline, 'duplex: not done within %.0fs (sent %d, '
              'got %d)' % (timeout, sent, got))
        check(now - last < stall, 'duplex: nothing moved for %.1fs (sent %d,'
              ' got %d)' % (stall, sent, got))
        if cur is None and not done_sending:
            cur = next(it, None)
            off = 0
            if cur is None:
                done_sending = True
        moved = False
        if cur is not None:
            piece = cur[off:off + 65536]
            try:
                n = sock.send(piece)
            except (ssl.SSLWantWriteError, ssl.SSLWantReadError):
                n = 0
            if n:
                sent_h.update(piece[:n])
                sent += n
                off += n
                moved = True
                if off >= len(cur):
                    cur = None
        while True:
            try:
                data = sock.recv(1 << 17)
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                break
            check(data, 'duplex: the connection ended after %d of %d bytes'
                  % (got, sent))
            got_h.update(data)
            got += len(data)
            moved = True
        if moved:
            last = time.monotonic()
        elif not sock.pending():
            select.select([fd], [fd] if cur is not None else [], [], 0.2)
    sock.settimeout(5)
    return sent, sent_h.hexdigest(), got, got_h.hexdigest()


def send_close_notify(sock):
    """Half-close at the TLS level: send close_notify but keep reading.

    SSLSocket.unwrap() on a non-blocking socket sends close_notify, then
    stops with SSLWantReadError where it would wait for the peer's; the
    SSL object stays and SSLSocket.recv goes on reading from it.
    """
    sock.setblocking(False)
    try:
        sock.unwrap()
    except ssl.SSLWantReadError:
        pass
    else:
        raise H.Failure('unwrap() completed at once: the peer had already '
                        'sent close_notify')
    sock.settimeout(10)


def echo_tls(sock, payload, timeout=5.0):
    sock.sendall(payload)
    got = H.recv_exact(sock, len(payload), timeout)
    check(got == payload, 'echo mismatch: sent %r got %r'
          % (payload[:40], got[:40]))


def no_connection_at(lst, seconds):
    """True if nothing connects to the listening socket LST in SECONDS."""
    r, _, _ = select.select([lst], [], [], seconds)
    return not r


def worker_rss(b):
    return sum(H.proc_rss_kib(p) for p in b.workers())


# ---------------------------------------------------------------- cases

def named_cert(name, san):
    """A self-signed certificate for SAN (and its key), made once."""
    c = os.path.join(certdir(), name + '.pem')
    if not os.path.exists(c):
        certs()
        openssl('req', '-x509', *EC, '-nodes', '-keyout', name + '.key',
                '-out', name + '.pem', '-days', '2', '-subj', '/CN=' + name,
                '-addext', 'subjectAltName=' + san)
    return c, os.path.join(certdir(), name + '.key')


@h.case
def sni_picks_the_certificate():
    """Three certificates on one port: the one whose names match the
    client's SNI (wildcards too) is served, the first one otherwise; a
    verifying client that trusts only the named site's certificate
    completes its handshake."""
    be = h.start_backend('echo', name='echo')
    default = certs()['rsa']
    a = named_cert('site-a', 'DNS:a.test')
    b = named_cert('site-b', 'DNS:*.b.test')
    port = H.free_port()
    text = conf([('web', port, 'app', default[0], default[1], '30s')],
                [('app', ['s1 127.0.0.1:%d' % be.port], '1s', 1)])
    # b's key before its certificate: pairs form in order, either way.
    text = text.replace('tls_key = %s\n' % default[1],
                        'tls_key = %s\ntls_cert = %s\ntls_key = %s\n'
                        'tls_key = %s\ntls_cert = %s\n'
                        % (default[1], a[0], a[1], b[1], b[0]))
    h.start_baton(text)
    want = {'a.test': a[0], 'www.b.test': b[0], 'x.b.test': b[0],
            'b.test': default[0], 'other.test': default[0],
            None: default[0]}
    for sni, cert in want.items():
        raw = H.connect(port)
        try:
            s = client_ctx().wrap_socket(raw, server_hostname=sni)
        except BaseException:
            raw.close()
            raise
        try:
            got = s.getpeercert(binary_form=True)
            check(fp(got) == fp(der_of(cert)), 'SNI %r: served %s, want %s'
                  % (sni, fp(got), os.path.basename(cert)))
            echo_tls(s, b'sni %s\n' % str(sni).encode())
        finally:
            s.close()
    # The client's own verification: it trusts a.test's certificate only.
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(a[0])
    raw = H.connect(port)
    try:
        s = ctx.wrap_socket(raw, server_hostname='a.test')
    except BaseException:
        raw.close()
        raise
    echo_tls(s, b'verified\n')
    s.close()


@h.case(timeout=30)
def tls13_and_tls12_echo_rsa_and_ec():
    be = h.start_backend('echo', name='echo')
    port, _ = tls_proxy(be, 'rsa')
    port_ec, _ = tls_proxy(be, 'ec')
    for cert, p in (('rsa', port), ('ec', port_ec)):
        for v in (V13, V12):
            s = tls_connect(p, v, ca=certs()[cert][0])
            try:
                check(s.version() == v.name.replace('v1_', 'v1.'),
                      'negotiated %s, want %s' % (s.version(), v.name))
                for i in range(3):
                    echo_tls(s, b'%s %s line %d\n' % (cert.encode(),
                                                      v.name.encode(), i))
                echo_tls(s, os.urandom(100000))
                print('  %s cert, %s: %s' % (cert, s.version(),
                                            s.cipher()[0]))
            finally:
                s.close()


@h.case(timeout=30)
def client_sees_configured_certificate_and_chain():
    be = h.start_backend('echo', name='echo')
    for cert in ('rsa', 'ec'):
        port, _ = tls_proxy(be, cert)
        want = der_of(certs()[cert][0])
        for v in (V13, V12):
            s = tls_connect(port, v)          # not verifying: any cert
            try:
                got = s.getpeercert(binary_form=True)
                check(got == want, '%s: %s served certificate %s, want %s '
                      '(the configured one)' % (cert, v.name, fp(got),
                                                fp(want)))
            finally:
                s.close()
    # A chain: the client trusts only the root, so the handshake verifies
    # only if baton sends the intermediate from the tls_cert file too.
    port, _ = tls_proxy(be, 'chain')
    for v in (V13, V12):
        try:
            s = tls_connect(port, v, ca=certs()['root'][0])
        except ssl.SSLCertVerificationError as e:
            raise H.Failure('%s: the chain does not verify against its '
                            'root (intermediate not sent?): %s' % (v.name, e))
        try:
            got = s.getpeercert(binary_form=True)
            check(got == der_of(certs()['leaf'][0]),
                  'chain: served %s, want the leaf' % fp(got))
            echo_tls(s, b'through a chain\n')
        finally:
            s.close()
    # And a client that trusts something else refuses baton's cert.
    try:
        s = tls_connect(port, ca=certs()['rsa'][0])
    except ssl.SSLCertVerificationError:
        pass
    else:
        s.close()
        raise H.Failure('a client trusting another CA accepted the chain')


@h.case(timeout=40)
def download_64mib_ends_with_close_notify():
    for v, size in ((V13, 64 * MiB), (V12, 16 * MiB)):
        be = h.start_backend('stream', size, name='stream%s' % v.name[-1])
        port, _ = tls_proxy(be)
        s = tls_connect(port, v, timeout=10)
        try:
            t0 = time.monotonic()
            total, digest = read_all(s, 30, size)
            dt = time.monotonic() - t0
        finally:
            s.close()
        check(total == size, '%s: got %d bytes, want %d'
              % (v.name, total, size))
        check(digest == B.pattern_sha256(size), '%s: downloaded bytes '
              'differ' % v.name)
        print('  %s download %d MiB: %.0f MiB/s, ended by close_notify'
              % (v.name, size // MiB, size / MiB / dt))


@h.case(timeout=40)
def echo_16mib_full_duplex():
    be = h.start_backend('echo', name='echo')
    port, _ = tls_proxy(be)
    for v, size in ((V13, 16 * MiB), (V12, 4 * MiB)):
        s = tls_connect(port, v, timeout=10)
        try:
            t0 = time.monotonic()
            sent, sd, got, gd = duplex(s, B.pattern_chunks(size), 30)
            dt = time.monotonic() - t0
        finally:
            s.close()
        check(sent == size and got == size, '%s: sent %d, echoed %d, want '
              '%d' % (v.name, sent, got, size))
        check(sd == gd, '%s: echoed bytes differ' % v.name)
        print('  %s full duplex %d MiB: %.0f MiB/s each way'
              % (v.name, size // MiB, size / MiB / dt))


@h.case(timeout=40)
def upload_32mib_sha256_after_close_notify():
    # The client's close_notify is its half-close: baton must pass it on to
    # the backend as EOF and still relay the reply, then end with its own
    # close_notify.
    be = h.start_backend('sha256', name='sum')
    port, _ = tls_proxy(be)
    for v, size in ((V13, 32 * MiB), (V12, 4 * MiB)):
        s = tls_connect(port, v, timeout=10)
        try:
            hh = hashlib.sha256()
            t0 = time.monotonic()
            for chunk in B.pattern_chunks(size):
                s.sendall(chunk)
                hh.update(chunk)
            send_close_notify(s)
            try:
                line = H.recv_line(s, timeout=10)
            except H.Failure as e:
                raise H.Failure('%s: no digest within 10s of close_notify '
                                '(%s): the client\'s half-close did not '
                                'reach the backend' % (v.name, e))
            dt = time.monotonic() - t0
            check(line.decode().strip() == hh.hexdigest(),
                  '%s: backend got different bytes: sha256 %r, sent %s'
                  % (v.name, line, hh.hexdigest()))
            rest, _ = read_all(s, 5)
            check(rest == 0, '%d bytes after the digest' % rest)
        finally:
            s.close()
        print('  %s upload %d MiB then close_notify: %.0f MiB/s, digest ok'
              % (v.name, size // MiB, size / MiB / dt))


@h.case(timeout=30)
def plain_tcp_client_closed_no_server_contacted():
    # The "backend" is a listener of ours: a client that does not complete
    # a handshake must never make baton connect to it.
    lst = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lst.bind((H.LOCALHOST, 0))
    lst.listen(64)
    sport = H.free_port()
    try:
        port, b = tls_proxy(lst.getsockname()[1], sport=sport)
        for what, data in (('an HTTP request',
                            b'GET / HTTP/1.1\r\nHost: localhost\r\n\r\n'),
                           ('binary garbage', os.urandom(3000)),
                           ('a TLS record header with no body',
                            b'\x16\x03\x01\x40\x00'),
                           ('a short line', b'hello\n')):
            s = H.connect(port)
            try:
                t0 = time.monotonic()
                s.sendall(data)
                if what.startswith('a TLS record'):
                    # Incomplete: baton must wait, then give up at the bound.
                    how, dt = H.wait_closed(s, HANDSHAKE_S + 2.5)
                    check(how != 'timeout' and dt > HANDSHAKE_S - 0.5,
                          '%s: %s after %.1fs, want closed after ~%.0fs'
                          % (what, how, dt, HANDSHAKE_S))
                else:
                    how, dt = H.wait_closed(s, 2)
                    check(how != 'timeout', '%s: not closed within 2s'
                          % what)
                print('  %s: %s after %.2fs' % (what, how,
                                                time.monotonic() - t0))
            finally:
                s.close()
            b.check_running()
        check(no_connection_at(lst, 0.3), 'baton connected to the server '
              'for a client that never completed a handshake')
        # Still serving TLS (a plain echo of ours would be needed for data;
        # the handshake and the connect to our listener show it).
        s = tls_connect(port)
        try:
            r, _, _ = select.select([lst], [], [], 3)
            check(r, 'after a completed handshake baton did not connect '
                  'to the server')
            conn, _ = lst.accept()
            conn.sendall(b'hello from the server\n')
            check(H.recv_line(s) == b'hello from the server\n',
                  'reply not relayed')
            conn.close()
        finally:
            s.close()
        H.poll_until(lambda: frontend_stats(sport, 'web')['errors'] >= 4, 3,
                     'the 4 failed handshakes in the frontend errors')
    finally:
        lst.close()


@h.case(timeout=30)
def silent_client_closed_at_handshake_bound():
    # Two frontends: timeout_idle 30s (bound 5 s) and 1500ms (bound 1.5 s).
    lst = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lst.bind((H.LOCALHOST, 0))
    lst.listen(64)
    c, k = certs()['rsa']
    p5, p1 = H.free_port(), H.free_port()
    try:
        h.start_baton(conf([('slow', p5, 'app', c, k, '30s'),
                            ('quick', p1, 'app', c, k, '1500ms')],
                           [('app', ['s1 127.0.0.1:%d'
                                     % lst.getsockname()[1]], '1s', 0)]))
        res = {}

        def wait(name, s):
            res[name] = H.wait_closed(s, HANDSHAKE_S + 4)
        socks = {'slow': H.connect(p5), 'quick': H.connect(p1)}
        # One more that sends half a ClientHello and stalls.
        hello = H.tls_client_hello()
        socks['partial'] = H.connect(p5)
        socks['partial'].sendall(hello[:len(hello) // 2])
        ts = [threading.Thread(target=wait, args=(n, s), daemon=True)
              for n, s in socks.items()]
        for t in ts:
            t.start()
        for t in ts:
            t.join(HANDSHAKE_S + 6)
        for s in socks.values():
            s.close()
        for name, (lo, hi) in (('slow', (HANDSHAKE_S - 0.3, HANDSHAKE_S + 2)),
                               ('partial',
                                (HANDSHAKE_S - 0.3, HANDSHAKE_S + 2)),
                               ('quick', (1.2, 3.0))):
            how, dt = res.get(name, ('no result', 0))
            print('  %s client: %s after %.2fs' % (name, how, dt))
            check(how in ('eof', 'reset') and lo <= dt <= hi,
                  '%s client: %s after %.2fs, want closed after %.1f..%.1fs'
                  % (name, how, dt, lo, hi))
        check(no_connection_at(lst, 0.2), 'baton connected to the server '
              'for a client that never completed a handshake')
    finally:
        lst.close()


@h.case(timeout=30)
def no_server_reachable_closed_after_handshake():
    # 'dead': a port with nothing listening (refused at once); 'hole': SYNs
    # dropped, so only connect_timeout (1s, retries 0) ends the attempt.
    sport = H.free_port()
    hole, keep = H.blackhole()
    dead = H.dead_port()
    c, k = certs()['rsa']
    pd, ph = H.free_port(), H.free_port()
    h.start_baton(conf([('dead', pd, 'dead', c, k, '30s'),
                        ('hole', ph, 'hole', c, k, '30s')],
                       [('dead', ['d1 127.0.0.1:%d' % dead], '1s', 1),
                        ('hole', ['h1 127.0.0.1:%d' % hole], '1s', 0)],
                       sport=sport))
    before = {n: frontend_stats(sport, n)['errors'] for n in ('dead', 'hole')}
    n_each = 3
    for name, port, lo, hi in (('dead', pd, 0.0, 1.0),
                               ('hole', ph, 0.8, 2.5)):
        for v in (V13, V12, V13)[:n_each]:
            try:
                s = tls_connect(port, v, ragged=True)
            except (ssl.SSLError, OSError) as e:
                raise H.Failure('%s: the TLS handshake did not complete '
                                '(%s: %s): baton must finish it before '
                                'connecting to a server' % (name, type(e)
                                                            .__name__, e))
            try:
                t0 = time.monotonic()
                # Nothing sent: what baton does is up to it alone.
                how, dt = wait_closed_tls(s, 5)
            finally:
                s.close()
            print('  %s, %s: handshake done, then %s after %.2fs'
                  % (name, v.name, how, dt))
            check(how in ('eof', 'reset') and lo <= dt <= hi,
                  '%s: after the handshake %s after %.2fs, want closed '
                  'within %.1f..%.1fs' % (name, how, dt, lo, hi))
    for name in ('dead', 'hole'):
        H.poll_until(lambda: frontend_stats(sport, name)['errors']
                     >= before[name] + n_each, 3,
                     'frontend %s errors to grow by %d from %d (now %d)'
                     % (name, n_each, before[name],
                        frontend_stats(sport, name)['errors']))
    del keep


def wait_closed_tls(sock, timeout):
    """Like H.wait_closed for a TLS socket: ('eof'|'reset'|'timeout', s)."""
    t0 = time.monotonic()
    deadline = t0 + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return 'timeout', time.monotonic() - t0
        sock.settimeout(left)
        try:
            data = sock.recv(65536)
        except socket.timeout:
            return 'timeout', time.monotonic() - t0
        except (ConnectionResetError, BrokenPipeError, ssl.SSLEOFError):
            return 'reset', time.monotonic() - t0
        except ssl.SSLError as e:
            return 'ssl error %s' % e, time.monotonic() - t0
        if not data:
            return 'eof', time.monotonic() - t0


def run_baton(args, timeout=10):
    try:
        r = subprocess.run([H.BATON] + args, cwd=h.path(''),
                           stdin=subprocess.DEVNULL, capture_output=True,
                           timeout=timeout)
    except subprocess.TimeoutExpired:
        raise H.Failure('baton %s did not exit within %ds'
                        % (' '.join(args), timeout))
    return (r.returncode, r.stdout.decode(errors='replace') +
            r.stderr.decode(errors='replace'))


@h.case(timeout=30)
def bad_certificate_files_exit_2():
    c, k = certs()['rsa']
    c2, k2 = certs()['ec']
    missing = h.path('no-such-cert.pem')
    missing_key = h.path('no-such-key.pem')
    garbage = h.write_file('garbage.pem', 'this is not a certificate\n')
    be = H.free_port()

    def text(cert, key):
        port = H.free_port()
        return port, conf([('plain', H.free_port(), 'app', None, None, '30s'),
                           ('site', port, 'app', cert, key, '30s')],
                          [('app', ['s1 127.0.0.1:%d' % be], '1s', 0)])

    for what, cert, key, keyname, must in (
            ('missing tls_cert', missing, k, 'tls_cert',
             [missing, 'tls_cert']),
            ('missing tls_key', c, missing_key, 'tls_key',
             [missing_key, 'tls_key']),
            ('tls_cert not a certificate', garbage, k, 'tls_cert',
             [garbage]),
            ('tls_key of another RSA certificate', c, certs()['rsa2'][1],
             'tls_key', ['tls_key']),
            ('tls_key of an EC certificate', c, k2, 'tls_key',
             ['tls_key']),
            ('tls_cert of another key', c2, k, 'tls_key', ['tls_key'])):
        port, t = text(cert, key)
        name = re.sub(r'\W+', '_', what) + '.ini'
        lines = t.split('\n')
        sect = lines.index('[frontend site]') + 1
        key_line = lines.index('%s = %s' % (keyname, cert if keyname ==
                                            'tls_cert' else key)) + 1
        h.write_file(name, t)
        # -t loads them too (as nginx -t and haproxy -c do): a binary
        # upgrade, which trusts -t, must not exec into a start that fails.
        rc, out = run_baton(['-t', '-c', name])
        check(rc == 1 and re.search(r'%s:(%d|%d): ' % (re.escape(name),
                                                       sect, key_line), out),
              '%s: -t exit %d, want 1 and %s:LINE: %r'
              % (what, rc, name, out[-400:]))
        b = h.start_baton(t, name=name, wait=False)
        rc = b.wait_exit(10)
        log = b.log()
        check(rc == 2, '%s: start exit %r, want 2\n  log: %r'
              % (what, rc, log[-600:]))
        m = re.search(r'%s:(\d+): \[frontend site\] ([^\n]*)'
                      % re.escape(b.config), log)
        check(m, '%s: no "%s:LINE: [frontend site] ..." error\n  log: %r'
              % (what, b.config, log[-600:]))
        check(int(m.group(1)) in (sect, key_line),
              '%s: the error names line %s; the frontend is at line %d and '
              'its key at %d\n  log: %r' % (what, m.group(1), sect, key_line,
                                            log[-600:]))
        for word in must:
            check(word in m.group(2), '%s: the error does not name %r: %r'
                  % (what, word, m.group(0)))
        check(H.try_connect(port) == 'refused', '%s: port %d answers after '
              'baton exited' % (what, port))
        print('  %s: exit 2, line %s (%s): %s'
              % (what, m.group(1), 'section' if int(m.group(1)) == sect
                 else keyname, m.group(2)[-90:]))


@h.case(timeout=40)
def reload_bad_cert_keeps_old_new_cert_served():
    be = h.start_backend('echo', name='echo')
    sport, port = H.free_port(), H.free_port()
    live_c, live_k = h.path('live.pem'), h.path('live.key')
    rsa, ec = certs()['rsa'], certs()['ec']
    shutil.copy(rsa[0], live_c)
    shutil.copy(rsa[1], live_k)
    der_rsa, der_ec = der_of(rsa[0]), der_of(ec[0])

    def text(cert, key):
        return conf([('web', port, 'app', cert, key, '30s')],
                    [('app', ['s1 127.0.0.1:%d' % be.port], '1s', 1)],
                    sport=sport)
    b = h.start_baton(text(live_c, live_k))

    def served():
        s = tls_connect(port)
        try:
            echo_tls(s, b'which cert?\n')
            return s.getpeercert(binary_form=True)
        finally:
            s.close()

    def reload_and_wait(t, field, want):
        with open(b.config, 'w') as f:
            f.write(t)
        b.signal(signal.SIGHUP)
        H.poll_until(lambda: H.get_stats(sport)[field] >= want, 5,
                     '/stats %s to reach %d' % (field, want))

    check(served() == der_rsa, 'not the configured certificate at start')
    old = tls_connect(port)
    try:
        echo_tls(old, b'opened before the reloads\n')
        # 1) tls_cert missing, 2) a key that does not match: both fail.
        fails = 0
        for t in (text(h.path('gone.pem'), live_k), text(live_c, ec[1])):
            fails += 1
            reload_and_wait(t, 'reload_failures', fails)
            st = H.get_stats(sport)
            check(st['generation'] == 1 and st['reloads'] == 0,
                  'after a failed reload: generation %r reloads %r, want 1, '
                  '0' % (st['generation'], st['reloads']))
            check(served() == der_rsa, 'after a failed reload a new '
                  'connection got another certificate')
            echo_tls(old, b'still served after failure %d\n' % fails)
        log = b.log()
        check(re.search(r'%s:\d+: \[frontend web\] [^\n]*gone\.pem'
                        % re.escape(b.config), log),
              'no error naming FILE:LINE, the frontend and gone.pem in the '
              'log:\n%s' % b.log_tail(15))
        # 3) Renewal: new files at the same paths, then SIGHUP.
        shutil.copy(ec[1], live_k + '.new')
        shutil.copy(ec[0], live_c + '.new')
        os.replace(live_k + '.new', live_k)
        os.replace(live_c + '.new', live_c)
        reload_and_wait(text(live_c, live_k), 'generation', 2)
        st = H.get_stats(sport)
        check(st['reload_failures'] == 2 and st['reloads'] == 1,
              'after the renewal: reloads %r reload_failures %r, want 1, 2'
              % (st['reloads'], st['reload_failures']))
        for i in range(4):      # each worker of the new generation
            got = served()
            check(got == der_ec, 'connection %d after the renewal got %s, '
                  'want the new certificate %s (old one %s)'
                  % (i, fp(got), fp(der_ec), fp(der_rsa)))
        echo_tls(old, b'the old connection outlives the renewal\n')
    finally:
        old.close()


@h.case(timeout=40)
def concurrent_200_tls_clients():
    n = 200
    H.raise_nofile(4 * n + 256)
    be = h.start_backend('echo', name='echo')
    port, _ = tls_proxy(be)
    ctx13, ctx12 = client_ctx(V13), client_ctx(V12)
    barrier = threading.Barrier(n)
    errors, done = [], []

    def one(i):
        s = None
        try:
            s = tls_connect(port, ctx=ctx12 if i % 4 == 0 else ctx13,
                            timeout=15)
            barrier.wait(20)       # all 200 handshakes done, all open
            for j in range(3):
                echo_tls(s, (b'client %03d round %d ' % (i, j)) * 100 +
                         b'\n', timeout=15)
            done.append(i)
        except Exception as e:
            errors.append('client %d: %s: %s' % (i, type(e).__name__, e))
            barrier.abort()
        finally:
            if s is not None:
                s.close()
    t0 = time.monotonic()
    ts = [threading.Thread(target=one, args=(i,), daemon=True)
          for i in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(max(1, 30 - (time.monotonic() - t0)))
    dt = time.monotonic() - t0
    real = [e for e in errors if 'BrokenBarrierError' not in e] or errors
    check(not errors and len(done) == n, '%d of %d clients done, %d errors,'
          ' first: %s' % (len(done), n, len(errors), real[:3]))
    print('  %d TLS clients open at once, ~6 KiB echoed each: %.1fs'
          % (n, dt))


@h.case(timeout=30)
def server_active_reported_after_a_late_handshake():
    # A handshake that ends long after the accept: the server's connection
    # opens when nothing else changes, and must still reach /stats (a
    # report after the coalescing window, not only with the next bytes).
    be = h.start_backend('echo', name='echo')
    sport = H.free_port()
    port, _ = tls_proxy(be, sport=sport, workers=1)
    raw = H.connect(port)
    try:
        H.poll_until(lambda: frontend_stats(sport, 'web')['active'] == 1, 5,
                     'the accepted socket in /stats')
        check(server_stats(sport)['active'] == 0,
              'a server connection before the handshake')
        time.sleep(0.5)     # well past the 250 ms coalescing window
        s = client_ctx(V13).wrap_socket(raw, server_hostname='localhost')
        raw = s
        t0 = time.monotonic()
        H.poll_until(lambda: server_stats(sport)['active'] == 1, 3,
                     'the server connection in /stats')
        dt = time.monotonic() - t0
        print('  server connection in /stats %.2fs after the handshake'
              % dt)
        check(dt < 1.5, 'server connection reported after %.2fs (at most '
              '1 s stale)' % dt)
    finally:
        raw.close()


@h.case(timeout=40)
def idle_tls_connections_memory():
    n, limit_kib = 500, 64
    H.raise_nofile(4 * n + 256)
    be = h.start_backend('echo', name='echo')
    sport = H.free_port()
    asan = os.environ.get('ASAN_OPTIONS', '')
    asan = (asan + ':' if asan else '') + 'quarantine_size_mb=4'
    port, b = tls_proxy(be, sport=sport, env_extra={'ASAN_OPTIONS': asan})
    ctx = client_ctx(V13)
    # Warm up: each worker's first TLS connections set up OpenSSL's tables.
    for _ in range(20):
        s = tls_connect(port, ctx=ctx)
        echo_tls(s, b'warm up\n' * 64)
        s.close()
    H.poll_until(lambda: server_stats(sport)['active'] == 0, 5,
                 'the warm-up connections to end')
    time.sleep(0.3)
    base = worker_rss(b)
    socks = []
    try:
        for i in range(n):
            socks.append(tls_connect(port, ctx=ctx, timeout=10))
        H.poll_until(lambda: server_stats(sport)['active'] == n, 5,
                     '%d connections established to the server' % n)
        time.sleep(0.3)
        after_hs = worker_rss(b)
        for s in socks:
            echo_tls(s, b'x' * 1000 + b'\n')
        time.sleep(0.3)
        after_echo = worker_rss(b)
        b.check_running()
    finally:
        for s in socks:
            s.close()
    per_hs = (after_hs - base) / float(n)
    per_echo = (after_echo - base) / float(n)
    print('  workers RSS: base %d KiB; %d idle TLS connections: +%d KiB '
          '(%.1f KiB each) after the handshake, +%d KiB (%.1f KiB each) '
          'after one echo each' % (base, n, after_hs - base, per_hs,
                                    after_echo - base, per_echo))
    check(per_hs < limit_kib, '%.1f KiB per idle TLS connection after the '
          'handshake (limit %d)' % (per_hs, limit_kib))
    check(per_echo < limit_kib, '%.1f KiB per idle TLS connection after an '
          'echo (limit %d)' % (per_echo, limit_kib))


@h.case(timeout=30)
def proxy_header_then_tls():
    # accept_proxy with TLS: the PROXY header comes first, in clear, and
    # the ClientHello may arrive in the same segment.
    be = h.start_backend('echo', name='echo')
    c, k = certs()['rsa']
    port = H.free_port()
    t = conf([('web', port, 'app', c, k, '30s')],
             [('app', ['s1 127.0.0.1:%d' % be.port], '1s', 0)])
    t = t.replace('tls_key = %s\n' % k, 'tls_key = %s\naccept_proxy = v1\n'
                  % k)
    h.start_baton(t)
    hdr = b'PROXY TCP4 192.0.2.7 127.0.0.1 40000 %d\r\n' % port
    for together in (False, True):
        raw = H.connect(port)
        inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
        obj = client_ctx().wrap_bio(inc, out, server_hostname='localhost')
        try:
            if not together:
                raw.sendall(hdr)
                time.sleep(0.1)
                pending = b''
            else:
                pending = hdr
            # Drive the handshake through the memory BIOs.
            deadline = time.monotonic() + 5
            while True:
                try:
                    obj.do_handshake()
                    break
                except ssl.SSLWantReadError:
                    pass
                raw.sendall(pending + out.read())
                pending = b''
                check(time.monotonic() < deadline, 'handshake after a '
                      'PROXY header did not complete')
                raw.settimeout(max(0.1, deadline - time.monotonic()))
                data = raw.recv(65536)
                check(data, 'closed during the handshake after a PROXY '
                      'header (together=%r)' % together)
                inc.write(data)
            raw.sendall(out.read())
            obj.write(b'after a PROXY header\n')
            raw.sendall(out.read())
            got = b''
            while not got.endswith(b'\n'):
                try:
                    got += obj.read(4096)
                    continue
                except ssl.SSLWantReadError:
                    pass
                raw.settimeout(5)
                data = raw.recv(65536)
                check(data, 'closed before the echo')
                inc.write(data)
            check(got == b'after a PROXY header\n', 'echo %r' % got)
        finally:
            raw.close()


if __name__ == '__main__':
    sys.exit(h.run())
