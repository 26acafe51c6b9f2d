#!/usr/bin/python3
"""test_tls_client.py -- client certificates on a terminating frontend
(tls_client_ca, tls_verify): required and optional, with a valid client
certificate, none, and one from another CA; failed handshakes counted as
frontend errors and logged, never reaching a server; a missing CA file
fails -t and the start with its FILE:LINE and fails a reload entirely;
tls_verify without tls_client_ca is a configuration error.
"""

import os
import re
import signal
import socket
import ssl
import subprocess
import sys

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


def conf(port, sport, be_port, ca=None, verify=None):
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
    lines += ['', '[backend app]', 'server = s1 127.0.0.1:%d' % be_port,
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


if __name__ == '__main__':
    sys.exit(h.run())
