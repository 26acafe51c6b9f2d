#!/usr/bin/python3
"""test_tls_client.py -- client certificates on a terminating frontend
(tls_client_ca, tls_verify): required and optional, with a valid client
certificate, none, and one from another CA; failed handshakes counted as
frontend errors and logged, never reaching a server; a missing CA file
fails -t and the start with its FILE:LINE and fails a reload entirely;
tls_verify without tls_client_ca is a configuration error. With
send_proxy = v2 a server behind a TLS frontend gets the TLS session in
PROXY v2 TLVs (PP2_TYPE_AUTHORITY with the SNI, PP2_TYPE_SSL with flags,
verify result, version, CN and cipher), decoded here by a test server.
"""

import os
import re
import signal
import socket
import hashlib
import json
import ssl
import struct
import subprocess
import sys
import threading

sys.dont_write_bytecode = True  # the source tree may be read-only
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402
from harness import check  # noqa: E402
import tlsca  # noqa: E402

h = H.Harness('test_tls_client', file_timeout=120)
_cd = []


def certs():
    """server: the frontend's certificate (CA 'srvca'); alice: a client
    certificate of 'clientca'; mallory: one of another CA, 'evilca'."""
    if not _cd:
        cd = tlsca.CertDir(os.path.join(h.tmp, 'certs'))
        cd.ca('srvca', 'baton test server CA')
        cd.leaf('server', 'srvca', 'localhost')
        cd.ca('clientca', 'baton test client CA')
        cd.leaf('alice', 'clientca', 'alice', kind='client')
        cd.ca('evilca', 'baton test client CA')   # the same name, other key
        cd.leaf('mallory', 'evilca', 'mallory', kind='client')
        _cd.append(cd)
    return _cd[0]


def conf(port, sport, be_port, ca=None, verify=None, send_proxy=None):
    cd = certs()
    c, k = cd.path('server')
    lines = ['[global]', 'workers = 2', 'log_level = info', '',
             '[stats]', 'listen = 127.0.0.1:%d' % sport, '',
             '[frontend web]', 'listen = 127.0.0.1:%d' % port,
             'backend = app', 'tls_cert = %s' % c, 'tls_key = %s' % k]
    if ca:
        lines.append('tls_client_ca = %s' % ca)
    if verify:
        lines.append('tls_verify = %s' % verify)
    lines += ['', '[backend app]', 'server = s1 127.0.0.1:%d%s'
              % (be_port, ' send_proxy=' + send_proxy if send_proxy else ''),
              'connect_timeout = 1s', '']
    return '\n'.join(lines)


def client(port, who):
    """A TLS client presenting WHO's certificate (None: none); returns the
    echo of a line, or the exception that ended it."""
    cd = certs()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(cd.path('srvca')[0])
    if who:
        ctx.load_cert_chain(*cd.path(who))
    raw = H.connect(port, 5)
    try:
        s = ctx.wrap_socket(raw, server_hostname='localhost')
        # TLS 1.3: the server judges the certificate after the client's
        # handshake is done; the refusal shows on the first read.
        s.sendall(b'hello from %s\n' % (who or 'nobody').encode())
        return H.recv_line(s, 5)
    except (ssl.SSLError, OSError, H.Failure) as e:
        return e
    finally:
        raw.close()


def frontend(sport):
    for f in H.get_stats(sport)['frontends']:
        if f['name'] == 'web':
            return f
    raise H.Failure('no frontend web in /stats')


def server_total(sport):
    return H.get_stats(sport)['backends'][0]['servers'][0]['total']


def run_mode(verify, expect):
    be = h.start_backend('echo', name='echo-' + (verify or 'default'))
    port, sport = H.free_port(), H.free_port()
    b = h.start_baton(conf(port, sport, be.port,
                           certs().path('clientca')[0], verify),
                      name='%s.ini' % (verify or 'default'))
    refused = served = 0
    for who, ok in expect:
        # /stats sums what workers report: wait for the last one served.
        H.poll_until(lambda: server_total(sport) >= served, 3,
                     'the server connections in /stats')
        before = server_total(sport)
        got = client(port, who)
        if ok:
            served += 1
            check(got == b'hello from %s\n' % (who or 'nobody').encode(),
                  '%s: client %s not served: %r' % (verify, who, got))
        else:
            refused += 1
            check(not isinstance(got, bytes) or got == b'',
                  '%s: client %s was served: %r' % (verify, who, got))
            H.poll_until(lambda: frontend(sport)['errors'] >= refused, 3,
                         '%s: refusal of %s counted as a frontend error'
                         % (verify, who))
            check(server_total(sport) == before, '%s: a server was '
                  'contacted for the refused client %s' % (verify, who))
        print('  %s, %s: %s' % (verify or 'default (required)', who,
                                'served' if ok else 'refused: %r' % got))
    b.check_running()
    if refused:
        log = b.log()
        check(re.search(r'\[frontend web\] TLS handshake failed', log),
              'no "TLS handshake failed" in the log:\n%s' % b.log_tail(10))
    return b


@h.case(timeout=40)
def required_valid_missing_wrong():
    b = run_mode(None, [('alice', True), (None, False), ('mallory', False),
                        ('alice', True)])
    check('certificate' in b.log(), 'the verification failure is not '
          'named in the log:\n%s' % b.log_tail(10))


@h.case(timeout=40)
def explicit_required():
    run_mode('required', [(None, False), ('alice', True)])


@h.case(timeout=40)
def optional_valid_missing_wrong():
    run_mode('optional', [(None, True), ('alice', True), ('mallory', False),
                          (None, True)])


@h.case(timeout=40)
def verify_none_asks_for_nothing():
    run_mode('none', [(None, True), ('mallory', True)])


def run_baton(args):
    r = subprocess.run([H.BATON] + args, cwd=h.path(''),
                       stdin=subprocess.DEVNULL, capture_output=True,
                       timeout=10)
    return r.returncode, r.stdout.decode() + r.stderr.decode()


def line_of(text, prefix):
    return [i + 1 for i, s in enumerate(text.split('\n'))
            if s.startswith(prefix)][0]


@h.case(timeout=40)
def config_errors_name_file_and_line():
    port, sport = H.free_port(), H.free_port()
    missing = h.path('no-such-ca.pem')
    garbage = h.write_file('garbage-ca.pem', 'not a certificate\n')
    for what, text, key, code in (
            ('missing CA file', conf(port, sport, 1, missing), 'tls_client_ca',
             2),
            ('CA file without a certificate', conf(port, sport, 1, garbage),
             'tls_client_ca', 2),
            ('tls_verify without tls_client_ca',
             conf(port, sport, 1, None, 'optional'), 'tls_verify', 1),
            ('bad tls_verify word',
             conf(port, sport, 1, certs().path('clientca')[0], 'maybe'),
             'tls_verify', 1)):
        name = re.sub(r'\W+', '_', what) + '.ini'
        h.write_file(name, text)
        want = '%s:%d: ' % (name, line_of(text, key))
        rc, out = run_baton(['-t', '-c', name])
        check(rc == 1 and want in out and key in out,
              '%s: -t exit %d, want 1 and %r: %r' % (what, rc, want, out))
        b = h.start_baton(text, name=name, wait=False)
        rc = b.wait_exit(10)
        check(rc in (1, 2) and want in b.log(), '%s: start exit %r, want an '
              'error with %r: %r' % (what, rc, want, b.log()[-400:]))
        print('  %s: %s' % (what, [s for s in out.split('\n') if want in s]))


@h.case(timeout=40)
def reload_with_missing_ca_keeps_running_config():
    be = h.start_backend('echo', name='echo')
    port, sport = H.free_port(), H.free_port()
    live = h.path('live-ca.pem')
    with open(certs().path('clientca')[0]) as f, open(live, 'w') as o:
        o.write(f.read())
    b = h.start_baton(conf(port, sport, be.port, live))
    check(client(port, 'alice') == b'hello from alice\n', 'alice not served')
    os.unlink(live)
    with open(b.config, 'w') as f:
        f.write(conf(port, sport, be.port, live, 'optional'))
    b.signal(signal.SIGHUP)
    H.poll_until(lambda: H.get_stats(sport)['reload_failures'] >= 1, 5,
                 'the reload to fail')
    st = H.get_stats(sport)
    check(st['generation'] == 1 and st['reloads'] == 0, 'generation %r '
          'reloads %r after a failed reload' % (st['generation'],
                                                st['reloads']))
    check(re.search(r'%s:%d: \[frontend web\] tls_client_ca[^\n]*live-ca'
                    % (re.escape(b.config), line_of(conf(port, sport, be.port,
                                                         live), 'tls_client_ca')),
                    b.log()),
          'no FILE:LINE error for the missing CA:\n%s' % b.log_tail(10))
    # The running config stays: still required.
    got = client(port, None)
    check(not isinstance(got, bytes) or got == b'', 'a client without a '
          'certificate was served after the failed reload: %r' % got)
    check(client(port, 'alice') == b'hello from alice\n', 'alice not served '
          'after the failed reload')


# ------------------------------------------------ PROXY v2 TLV server

SIG = b'\r\n\r\n\x00\r\nQUIT\n'
SUBTYPES = {0x21: 'version', 0x22: 'cn', 0x23: 'cipher'}


def decode_v2(hdr):
    """The TLVs of a v2 header (all of it, signature included) as a dict;
    fails on any length that does not add up."""
    check(hdr[:12] == SIG, 'no v2 signature: %r' % hdr[:16])
    fam = hdr[13]
    out = {'cmd': hdr[12], 'fam': fam, 'other': []}
    off = 16 + {0x11: 12, 0x21: 36}.get(fam, 0)
    while off < len(hdr):
        check(off + 3 <= len(hdr), 'a TLV header past the end')
        t, n = hdr[off], struct.unpack('!H', hdr[off + 1:off + 3])[0]
        v = hdr[off + 3:off + 3 + n]
        check(len(v) == n, 'TLV %#x: %d bytes of %d' % (t, len(v), n))
        off += 3 + n
        if t == 0x02:
            out['authority'] = v.decode()
        elif t == 0x20:
            check(n >= 5, 'PP2_TYPE_SSL of %d bytes' % n)
            out['client'] = v[0]
            out['verify'] = struct.unpack('!I', v[1:5])[0]
            so = 5
            while so < n:
                st, sn = v[so], struct.unpack('!H', v[so + 1:so + 3])[0]
                check(so + 3 + sn <= n, 'a sub-TLV past PP2_TYPE_SSL')
                out[SUBTYPES.get(st, 'sub%#x' % st)] = \
                    v[so + 3:so + 3 + sn].decode()
                so += 3 + sn
        else:
            out['other'].append(t)
    return out


class TlvServer:
    """A plain server expecting a v2 header: replies one JSON line with
    what the header said, then the SHA-256 of everything after it once the
    client has sent as many bytes as its first 8 (big-endian) announce."""

    def __init__(self):
        self.lst = socket.socket()
        self.lst.bind((H.LOCALHOST, 0))
        self.lst.listen(16)
        self.lst.settimeout(0.2)
        self.port = self.lst.getsockname()[1]
        self.stop = False
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

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
        c.settimeout(10)
        try:
            hdr = b''
            while len(hdr) < 16:
                d = c.recv(16 - len(hdr))
                if not d:
                    return
                hdr += d
            n = struct.unpack('!H', hdr[14:16])[0]
            while len(hdr) < 16 + n:
                d = c.recv(16 + n - len(hdr))
                if not d:
                    return
                hdr += d
            try:
                info = decode_v2(hdr)
            except H.Failure as e:
                info = {'error': str(e)}
            info['length'] = len(hdr)
            c.sendall(json.dumps(info).encode() + b'\n')
            want = struct.unpack('!Q', H.recv_exact(c, 8, 10))[0]
            h = hashlib.sha256()
            while want > 0:
                d = c.recv(min(want, 65536))
                if not d:
                    return
                h.update(d)
                want -= len(d)
            c.sendall(h.hexdigest().encode() + b'\n')
        except (OSError, H.Failure):
            pass
        finally:
            c.close()

    def close(self):
        self.stop = True
        self.t.join(2)
        self.lst.close()


def tlv_session(port, who=None, sni='localhost', version=None,
                payload=b''):
    """A TLS client through baton to a TlvServer: (what the header said,
    the client's (cipher, version), the server's digest of PAYLOAD)."""
    cd = certs()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if version:
        ctx.minimum_version = ctx.maximum_version = version
    if who:
        ctx.load_cert_chain(*cd.path(who))
    raw = H.connect(port, 5)
    try:
        s = ctx.wrap_socket(raw, server_hostname=sni)
        info = json.loads(H.recv_line(s, 5, limit=65536))
        mine = (s.cipher()[0], s.version())
        s.sendall(struct.pack('!Q', len(payload)) + payload)
        digest = H.recv_line(s, 10).strip().decode()
        return info, mine, digest
    finally:
        raw.close()


@h.case(timeout=60)
def proxy_v2_tlvs_of_the_tls_session():
    srv = TlvServer()
    try:
        port, sport = H.free_port(), H.free_port()
        b = h.start_baton(conf(port, sport, srv.port,
                               certs().path('clientca')[0], 'optional',
                               send_proxy='v2'))
        payload = os.urandom(1 << 20)
        want = hashlib.sha256(payload).hexdigest()
        for who, sni, version in (('alice', 'www.example.test', None),
                                  (None, 'api.example.test', None),
                                  ('alice', None, ssl.TLSVersion.TLSv1_2),
                                  (None, None, ssl.TLSVersion.TLSv1_2)):
            info, (cipher, ver), digest = tlv_session(
                port, who, sni, version, payload)
            what = 'client %s, sni %s, %s' % (who, sni, ver)
            print('  %s: %s' % (what, info))
            check('error' not in info, '%s: %s' % (what, info.get('error')))
            check(info['cmd'] == 0x21 and info['fam'] == 0x11,
                  '%s: not a v2 PROXY TCP4 header: %r' % (what, info))
            check(info['other'] == [], '%s: unexpected TLVs %r'
                  % (what, info['other']))
            check(info.get('authority') == sni, '%s: authority %r, want %r'
                  % (what, info.get('authority'), sni))
            check(info.get('version') == ver, '%s: version %r, want %r'
                  % (what, info.get('version'), ver))
            check(info.get('cipher') == cipher, '%s: cipher %r, want %r'
                  % (what, info.get('cipher'), cipher))
            if who:
                check(info.get('client') == 0x07 and info.get('verify') == 0,
                      '%s: client %r verify %r, want 0x07 and 0'
                      % (what, info.get('client'), info.get('verify')))
                check(info.get('cn') == 'alice', '%s: cn %r'
                      % (what, info.get('cn')))
            else:
                check(info.get('client') == 0x01 and info.get('verify') != 0,
                      '%s: client %r verify %r, want 0x01 and not 0'
                      % (what, info.get('client'), info.get('verify')))
                check('cn' not in info, '%s: a cn without a certificate: %r'
                      % (what, info.get('cn')))
            check(digest == want, '%s: the server got other bytes after '
                  'the header (sha256 %s, want %s)' % (what, digest, want))
        b.check_running()
    finally:
        srv.close()


@h.case(timeout=40)
def proxy_v2_tlvs_without_client_ca():
    # A TLS frontend that asks for no certificate: the SSL TLV says so.
    srv = TlvServer()
    try:
        port, sport = H.free_port(), H.free_port()
        h.start_baton(conf(port, sport, srv.port, send_proxy='v2'))
        info, (cipher, ver), digest = tlv_session(port, None, 'localhost',
                                                  payload=b'x' * 100)
        print('  %s' % info)
        check(info.get('client') == 0x01 and info.get('verify') != 0 and
              info.get('authority') == 'localhost' and
              info.get('version') == ver and 'cn' not in info,
              'unexpected TLVs: %r' % info)
        check(digest == hashlib.sha256(b'x' * 100).hexdigest(),
              'payload digest')
    finally:
        srv.close()


def worker_totals(sport):
    return [w['connections']['total'] if 'connections' in w else w['total']
            for w in H.get_stats(sport)['workers']]


@h.case(timeout=60)
def session_resumes_on_every_worker():
    # The master makes the contexts (and with them the ticket keys) before
    # forking: a ticket from one worker resumes on any other.
    be = h.start_backend('echo', name='echo')
    port, sport = H.free_port(), H.free_port()
    h.start_baton(conf(port, sport, be.port, certs().path('clientca')[0],
                       'optional'))
    for version in (ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(certs().path('srvca')[0])
        ctx.load_cert_chain(*certs().path('alice'))
        ctx.minimum_version = ctx.maximum_version = version
        session, reused = None, 0
        before = worker_totals(sport)
        for i in range(8):
            raw = H.connect(port, 5)
            try:
                s = ctx.wrap_socket(raw, server_hostname='localhost',
                                    session=session)
                s.sendall(b'resume %d\n' % i)
                check(H.recv_line(s, 5) == b'resume %d\n' % i, 'no echo')
                if i > 0:
                    check(s.session_reused, '%s: connection %d did not '
                          'resume the first one\'s session' % (version, i))
                    reused += 1
                session = s.session   # TLS 1.3: the ticket came by now
            finally:
                raw.close()
        H.poll_until(lambda: sum(worker_totals(sport)) >= sum(before) + 8, 3,
                     'the connections in the workers\' totals')
        per = [a - b for a, b in zip(worker_totals(sport), before)]
        check(len(per) == 2 and all(n > 0 for n in per), '%s: the workers '
              'took %r connections; both must have resumed some'
              % (version, per))
        print('  %s: %d of 7 resumed, per worker %r' % (version.name, reused,
                                                        per))


if __name__ == '__main__':
    sys.exit(h.run())
