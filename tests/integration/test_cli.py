#!/usr/bin/python3
"""test_cli.py -- baton's command line: -t on good and bad files and the
summary it prints, -T and its round trip (what it prints reads back the
same), -V, -h, bad options, and exit status 2 when a listen port is
taken."""

import os
import re
import socket
import subprocess
import sys

sys.dont_write_bytecode = True  # the source tree may be read-only
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402
from harness import check  # noqa: E402

h = H.Harness('test_cli', file_timeout=90)


def run_baton(args, timeout=10):
    """Run baton ARGS in the case dir; (status, stdout, stderr)."""
    try:
        r = subprocess.run([H.BATON] + args, cwd=h.path(''),
                           stdin=subprocess.DEVNULL, capture_output=True,
                           timeout=timeout)
    except subprocess.TimeoutExpired:
        raise H.Failure('baton %s did not exit within %ds'
                        % (' '.join(args), timeout))
    return (r.returncode, r.stdout.decode(errors='replace'),
            r.stderr.decode(errors='replace'))


def show(out, err):
    return '\n  stdout: %r\n  stderr: %r' % (out[-600:], err[-600:])


GOOD = """\
; a minimal but complete configuration
[global]
workers = 2
drain_timeout = 5s
log_level = info

[frontend web]
listen = 127.0.0.1:18080
backend = app
timeout_idle = 2s

[backend app]
balance = roundrobin
server = a1 127.0.0.1:18001 weight=3
server = a2 127.0.0.1:18002 weight=1
connect_timeout = 1s
retries = 2
"""

# Every contract key except those naming files or users (tls_*, user,
# log_file, pidfile), which -t may legitimately check on this machine.
GOOD_FULL = """\
[global]
workers = auto            ; CPU count
dispatch = leastconn
drain_timeout = 1500ms
log_level = debug
access_log = on

[stats]
listen = 127.0.0.1:19090
token = s3cret

[frontend web]
listen = 127.0.0.1:18080
listen = [::1]:18080
listen = *:18081
backend = app
timeout_idle = 5m
max_connections = 10000
accept_proxy = off

[frontend other]
listen = 127.0.0.1:18082
backend = pool
timeout_idle = 1h
accept_proxy = any
tls_passthrough = on
route = a.example.com app
route = *.b.test alpn:h2 app

[backend app]
balance = roundrobin
server = a1 127.0.0.1:18001 weight=3
server = a2 [::1]:18002 weight=1 send_proxy=v2
server = spare 127.0.0.1:18009 backup
connect_timeout = 5
retries = 2
check = tcp
check_interval = 2s
check_timeout = 1s
rise = 2
fall = 3
send_proxy = off

[backend pool]
balance = leastconn
server = p1 127.0.0.1:18011 send_proxy=v1
connect_timeout = 250ms
retries = 0
check = off
"""


def expect_ok(fname, text):
    h.write_file(fname, text)
    rc, out, err = run_baton(['-t', '-c', fname])
    check(rc == 0, '-t on %s: exit %d, want 0%s' % (fname, rc, show(out, err)))
    want = '%s: configuration ok' % fname
    check(want in (out + err).splitlines(),
          '-t on %s: no line %r%s' % (fname, want, show(out, err)))


@h.case
def t_good_minimal():
    expect_ok('good.ini', GOOD)


@h.case
def t_good_every_key():
    expect_ok('full.ini', GOOD_FULL)


@h.case
def t_prints_path_as_given():
    sub = h.path('sub')
    os.makedirs(sub, exist_ok=True)
    h.write_file('sub/p.ini', GOOD)
    for given in ('sub/p.ini', './sub/../sub/p.ini',
                  os.path.join(sub, 'p.ini')):
        rc, out, err = run_baton(['-t', '-c', given])
        check(rc == 0 and ('%s: configuration ok' % given)
              in (out + err).splitlines(),
              '-t -c %s: exit %d, want 0 and "%s: configuration ok"%s'
              % (given, rc, given, show(out, err)))


# What -t says about GOOD_FULL, line by line (workers depends on the CPUs).
FULL_SUMMARY = [
    r'full\.ini: configuration ok',
    r'workers: \d+ \(auto\), dispatch leastconn, drain_timeout 1500ms',
    r'frontend web: 127\.0\.0\.1:18080, \[::1\]:18080, \*:18081 -> backend '
    r'app \(timeout_idle 5m, max_connections 10000\)',
    r'frontend other: 127\.0\.0\.1:18082 -> backend pool, TLS passed '
    r'through, 2 routes, accept_proxy any '
    r'\(timeout_idle 1h, max_connections 10000\)',
    r'backend app: balance roundrobin, connect_timeout 5s, retries 2, '
    r'check tcp',
    r'  server a1 127\.0\.0\.1:18001 weight 3',
    r'  server a2 \[::1\]:18002 weight 1, send_proxy v2',
    r'  server spare 127\.0\.0\.1:18009 weight 1, backup',
    r'backend pool: balance leastconn, connect_timeout 250ms, retries 0, '
    r'check off',
    r'  server p1 127\.0\.0\.1:18011 weight 1, send_proxy v1',
    r'stats: 127\.0\.0\.1:19090 \(token required\)',
    r'log: stderr, level debug, access_log on \(text\)',
]


@h.case
def t_summary():
    h.write_file('full.ini', GOOD_FULL)
    rc, out, err = run_baton(['-t', '-c', 'full.ini'])
    check(rc == 0, '-t: exit %d%s' % (rc, show(out, err)))
    lines = out.splitlines()
    check(len(lines) == len(FULL_SUMMARY), '-t printed %d lines, want %d%s'
          % (len(lines), len(FULL_SUMMARY), show(out, err)))
    for got, want in zip(lines, FULL_SUMMARY):
        check(re.fullmatch(want, got), '-t line %r does not match %r'
              % (got, want))


# Keys whose values -T must spell out even when the file leaves them out.
DEFAULTS = {
    'global': ['workers = 2', 'dispatch = roundrobin',
               'drain_timeout = 5s', 'log_level = info', 'access_log = off',
               'log_format = text', 'splice = on', 'handover = on',
               'io_uring = auto', 'resolve_interval = 30s'],
    'frontend web': ['listen = 127.0.0.1:18080', 'backend = app',
                     'timeout_idle = 2s', 'max_connections = 10000',
                     'accept_proxy = off', 'tls_passthrough = off'],
    'backend app': ['balance = roundrobin',
                    'server = a1 127.0.0.1:18001 weight=3 send_proxy=off',
                    'server = a2 127.0.0.1:18002 weight=1 send_proxy=off',
                    'connect_timeout = 1s', 'retries = 2', 'check = off',
                    'check_interval = 2s', 'check_timeout = 1s', 'rise = 2',
                    'fall = 3', 'send_proxy = off', 'max_fails = 1',
                    'fail_timeout = 10s'],
}


def sections(text):
    """{section: [lines]} of a proxy.ini text, comments and blanks out."""
    out, cur = {}, None
    for line in text.splitlines():
        line = line.split(' ;')[0].strip()
        if not line or line.startswith(';'):
            continue
        if line.startswith('['):
            cur = line[1:-1]
            out[cur] = []
        else:
            out[cur].append(line)
    return out


@h.case
def t_dump_defaults():
    h.write_file('good.ini', GOOD)
    rc, out, err = run_baton(['-T', '-c', 'good.ini'])
    check(rc == 0, '-T: exit %d%s' % (rc, show(out, err)))
    got = sections(out)
    check(sorted(got) == sorted(DEFAULTS), '-T sections %r, want %r%s'
          % (sorted(got), sorted(DEFAULTS), show(out, err)))
    for sect, want in DEFAULTS.items():
        check(got[sect] == want, '-T [%s]:\n  got  %r\n  want %r'
              % (sect, got[sect], want))


# Values -T must write back so they read the same: escapes, a server's own
# send_proxy against its backend's default, TLS files, auto workers.
ODD = """\
[global]
workers = auto
user = nobody
log_file = log/baton.log   ; comment
access_log = on
log_format = json
pidfile = run/baton.pid
splice = off

[frontend tls]
listen = 127.0.0.1:18443
backend = probe
tls_cert = site.pem
tls_key = site.key
accept_proxy = v2
max_connections = 7

[backend probe]
send_proxy = v1
server = p1 127.0.0.1:18021 send_proxy=off max_connections=3
server = p2 127.0.0.1:18022 weight=256 backup
check = tcp
check_send = PING;\\x23 \\\\ x\\r\\n\\x00\\xff
check_expect = \\x20+OK\\t\\x20
check_interval = 90m
check_timeout = 1001ms
max_fails = 0
"""


def self_signed(name):
    """NAME.pem and NAME.key in the case dir (-t loads certificates)."""
    try:
        r = subprocess.run(['openssl', 'req', '-x509', '-newkey', 'rsa:2048',
                            '-nodes', '-days', '1', '-subj', '/CN=localhost',
                            '-keyout', name + '.key', '-out', name + '.pem'],
                           cwd=h.path(''), capture_output=True, timeout=30)
    except FileNotFoundError:
        raise H.Skip('no openssl command to make a test certificate')
    check(r.returncode == 0, 'openssl req: %r' % r.stderr[-300:])


@h.case
def t_dump_round_trip():
    self_signed('site')
    for name, text in (('good.ini', GOOD), ('full.ini', GOOD_FULL),
                       ('odd.ini', ODD)):
        h.write_file(name, text)
        rc, first, err = run_baton(['-T', '-c', name])
        check(rc == 0, '-T -c %s: exit %d%s' % (name, rc, show(first, err)))
        again = 'again-' + name
        h.write_file(again, first)
        rc, out, err = run_baton(['-t', '-c', again])
        check(rc == 0, '-t on what -T printed for %s: exit %d\n%s%s'
              % (name, rc, first, show(out, err)))
        _, sum1, _ = run_baton(['-t', '-c', name])
        check(sum1.splitlines()[1:] == out.splitlines()[1:],
              '%s and its -T differ in -t:\n%s\n%s' % (name, sum1, out))
        rc, second, err = run_baton(['-T', '-c', again])
        check(rc == 0 and first.splitlines()[1:] == second.splitlines()[1:],
              '-T of %s read back is not the same:\n%s\n---\n%s'
              % (name, first, second))
    odd = sections(first)
    # ';' and '#' stay as written where no comment could start there
    check(r'check_send = PING;# \\ x\r\n\x00\xff'
          in odd['backend probe'], '-T check_send: %r'
          % odd['backend probe'])
    check('server = p1 127.0.0.1:18021 weight=1 send_proxy=off '
          'max_connections=3' in odd['backend probe'] and
          'server = p2 127.0.0.1:18022 weight=256 send_proxy=v1 backup'
          in odd['backend probe'], '-T servers: %r' % odd['backend probe'])
    check('workers = auto' in odd['global'], '-T workers: %r' % odd['global'])


@h.case
def t_dump_longest_server_line():
    """A server line at the longest a line may be: -T, which spells out
    every option, leaves the default ones out of that line (else it could
    not be read back; found by the config fuzzer)."""
    name = 'n' * (198 - len('server =  127.0.0.1:8000'))
    line = 'server = %s 127.0.0.1:8000' % name
    check(len(line) == 198, 'the test line is %d long' % len(line))
    h.write_file('long.ini', '[frontend web]\nlisten = 127.0.0.1:%d\n'
                 'backend = app\n[backend app]\n%s\n'
                 % (H.free_port(), line))
    rc, out, err = run_baton(['-T', '-c', 'long.ini'])
    check(rc == 0, '-T: exit %d%s' % (rc, show(out, err)))
    h.write_file('long-again.ini', out)
    rc, out2, err = run_baton(['-t', '-c', 'long-again.ini'])
    check(rc == 0, '-t on what -T printed: exit %d\n%s%s'
          % (rc, out, show(out2, err)))
    check(line + '\n' in out, 'the long line was not kept as it was:\n%s'
          % out)


@h.case
def t_dump_bad_file():
    rc, out, err = run_baton(['-T', '-c', 'missing.ini'])
    check(rc == 1 and out == '' and 'missing.ini' in err,
          '-T on a missing file: exit %d, want 1 and an error%s'
          % (rc, show(out, err)))


def bad_file(fname, marked):
    """Write MARKED (lines; '>>' marks an error line); run -t on it.

    Checks exit 1, no 'configuration ok', and a 'FNAME:LINE: ' message for
    every marked line.
    """
    lines, want = [], []
    for i, line in enumerate(marked.splitlines(), 1):
        if line.startswith('>>'):
            want.append(i)
            line = line[2:]
        lines.append(line)
    h.write_file(fname, '\n'.join(lines) + '\n')
    rc, out, err = run_baton(['-t', '-c', fname])
    both = out + err
    check(rc == 1, '-t on %s: exit %d, want 1%s' % (fname, rc, show(out, err)))
    check('configuration ok' not in both,
          '-t on bad %s said ok%s' % (fname, show(out, err)))
    for n in want:
        pat = re.compile(r'(?m)^%s:%d: \S' % (re.escape(fname), n))
        check(pat.search(both), '-t on %s: no "%s:%d: message" for line '
              '%r%s' % (fname, fname, n, lines[n - 1], show(out, err)))
    return both


BASE_FRONT = """\
[global]
workers = 1
[frontend web]
listen = 127.0.0.1:18080
backend = app
[backend app]
server = a1 127.0.0.1:18001
"""


@h.case
def t_bad_unknown_section():
    bad_file('section.ini',
             BASE_FRONT + '>>[frontnd web2]\nlisten = 127.0.0.1:1\n')


@h.case
def t_bad_unknown_key():
    bad_file('key.ini', """\
[global]
workers = 1
>>listne = 127.0.0.1:18080
[frontend web]
listen = 127.0.0.1:18080
backend = app
>>timeout_idel = 5s
[backend app]
server = a1 127.0.0.1:18001
""")


@h.case
def t_bad_address():
    bad_file('addr.ini', """\
[global]
workers = 1
[frontend web]
>>listen = 127.0.0.1
backend = app
[backend app]
server = a1 127.0.0.1:18001
>>server = a2 [::1:18002
""")


@h.case
def t_bad_port():
    bad_file('port.ini', """\
[global]
workers = 1
[frontend web]
>>listen = 127.0.0.1:99999
backend = app
[backend app]
server = a1 127.0.0.1:18001
>>server = a2 127.0.0.1:99999
""")


@h.case
def t_bad_duration():
    bad_file('dur.ini', """\
[global]
workers = 1
>>drain_timeout = soon
[frontend web]
listen = 127.0.0.1:18080
backend = app
>>timeout_idle = 5x
[backend app]
server = a1 127.0.0.1:18001
>>connect_timeout = 1.5.s
""")


@h.case
def t_bad_missing_backend():
    bad_file('nobackend.ini', """\
[global]
workers = 1
[frontend web]
listen = 127.0.0.1:18080
>>backend = nope
[backend app]
server = a1 127.0.0.1:18001
""")


@h.case
def t_bad_backend_without_server():
    bad_file('noserver.ini', """\
[global]
workers = 1
[frontend web]
listen = 127.0.0.1:18080
backend = app
>>[backend app]
balance = roundrobin
connect_timeout = 1s
""")


@h.case
def t_bad_several_errors_all_reported():
    bad_file('many.ini', """\
; several independent errors, each must be reported with its line
[global]
>>wokers = 2
drain_timeout = 5s

[frontend web]
listen = 127.0.0.1:18080
>>backend = missing
>>timeout_idle = forever

[frontend api]
>>listen = 127.0.0.1:70000
backend = app

>>[frobnicate]
x = 1

[backend app]
server = a1 127.0.0.1:18001
>>connect_timeout = 3y
""")


@h.case
def t_bad_path_as_given():
    os.makedirs(h.path('d'), exist_ok=True)
    bad_file('d/../d/x.ini', BASE_FRONT + '>>bogus = 1\n')


@h.case
def t_bad_tls_certificate():
    """-t loads the certificates, so a missing one fails the check (and a
    binary upgrade, which trusts -t) instead of the start."""
    text = ('[frontend web]\nlisten = 127.0.0.1:%d\nbackend = app\n'
            'tls_cert = nowhere.pem\ntls_key = nowhere.key\n'
            '[backend app]\nserver = a 127.0.0.1:1\n' % H.free_port())
    h.write_file('tls.ini', text)
    rc, out, err = run_baton(['-t', '-c', 'tls.ini'])
    check(rc == 1 and 'configuration ok' not in out and
          'tls.ini:4:' in err and 'nowhere.pem' in err,
          '-t with a missing certificate: exit %d, want 1 and tls.ini:4%s'
          % (rc, show(out, err)))


@h.case
def version():
    rc, out, err = run_baton(['-V'])
    check(rc == 0, '-V: exit %d%s' % (rc, show(out, err)))
    m = re.match(r'baton (\S+)\n?$', out)
    check(m, '-V printed %r, want "baton VERSION"%s' % (out, show(out, err)))
    try:
        with open(os.path.join(H.REPO, 'configure.ac')) as f:
            ac = re.search(r'AC_INIT\(\s*\[?baton\]?\s*,\s*\[?([^\],\s]+)',
                           f.read())
    except OSError:
        ac = None
    if ac:
        check(m.group(1) == ac.group(1), '-V says %s, configure.ac says %s'
              % (m.group(1), ac.group(1)))


@h.case
def usage():
    rc, out, err = run_baton(['-h'])
    check(rc == 0, '-h: exit %d%s' % (rc, show(out, err)))
    check('-c' in out + err and '-t' in out + err,
          '-h usage does not mention -c and -t%s' % show(out, err))


@h.case
def bad_option():
    for args in (['-Z'], ['-c'], ['--no-such-option']):
        rc, out, err = run_baton(args)
        check(rc == 1, 'baton %s: exit %d, want 1%s'
              % (' '.join(args), rc, show(out, err)))


@h.case
def port_in_use_exits_2():
    taken = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        taken.bind((H.LOCALHOST, 0))
        taken.listen(8)
        port = taken.getsockname()[1]
        text = GOOD.replace('18080', str(port))
        h.write_file('inuse.ini', text)
        # -t binds nothing, so the taken port does not matter to it.
        rc, out, err = run_baton(['-t', '-c', 'inuse.ini'])
        check(rc == 0, '-t with its port taken: exit %d, want 0 (it must '
              'bind nothing)%s' % (rc, show(out, err)))
        b = h.start_baton(text, name='inuse.ini', wait=False)
        rc = b.wait_exit(15)
        log = b.log()
        check(rc == 2, 'start with port %d taken: exit %r, want 2\n  log: %r'
              % (port, rc, log[-600:]))
        check(str(port) in log, 'the error does not name port %d\n  log: %r'
              % (port, log[-600:]))
    finally:
        taken.close()


if __name__ == '__main__':
    sys.exit(h.run())
