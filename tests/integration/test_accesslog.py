#!/usr/bin/python3
"""test_accesslog.py -- access_log = on, in both log_format values.

A known set of connections (three served, one to a refused server, one
closed by timeout_idle) goes through baton; the access log lines are
parsed back (json.loads for json, a regex for text) and every field
checked: frontend, client address, backend/server, bytes both ways,
duration and the termination reason (see the README's table).
"""

import json
import os
import re
import signal
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # the source tree may be read-only
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402
from harness import check  # noqa: E402

h = H.Harness('test_accesslog', file_timeout=90)
IDLE_MS = 800

# 2026-12-03T07:12:01.123Z baton[42] info: 127.0.0.1:5555 web app/s1
#     12ms in=6 out=6 done
TEXT_RE = re.compile(
    r'^(?P<time>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) baton\[(?P<pid>\d+)\] '
    r'info: (?P<client>\S+) (?P<frontend>\S+) (?P<backend>[^/\s]+)/'
    r'(?P<server>\S+) (?P<duration_ms>\d+)ms in=(?P<bytes_in>\d+) '
    r'out=(?P<bytes_out>\d+) (?P<reason>[^:]+)(?:: (?P<error>.+))?$')


def conf(fmt, port, bad_port, echo_port, refused_port):
    return """\
[global]
workers = 1
drain_timeout = 2s
log_level = info
access_log = on
log_format = %s

[frontend web]
listen = 127.0.0.1:%d
backend = app
timeout_idle = %dms

[frontend bad]
listen = 127.0.0.1:%d
backend = dead

[backend app]
server = s1 127.0.0.1:%d
connect_timeout = 1s

[backend dead]
server = gone 127.0.0.1:%d
retries = 0
connect_timeout = 1s
check = off
""" % (fmt, port, IDLE_MS, bad_port, echo_port, refused_port)


def run_connections(fmt):
    """Start baton with log_format FMT, make the known connections, stop
    baton; return (its log text, [(kind, client address)])."""
    echo = h.start_backend('echo', name='echo')
    port, bad_port = H.free_port(), H.free_port()
    b = h.start_baton(conf(fmt, port, bad_port, echo.port, H.dead_port()),
                      name='%s.ini' % fmt)
    made = []
    for i in range(3):
        s = H.connect(port)
        payload = b'served %d %s\n' % (i, b'x' * (10 * i))
        H.echo_ok(s, payload)
        made.append(('served', '%s:%d' % s.getsockname(), len(payload)))
        s.close()
    s = H.connect(bad_port)
    made.append(('refused', '%s:%d' % s.getsockname(), 0))
    how, _ = H.wait_closed(s, 5)
    check(how in ('eof', 'reset'), 'refused: client not closed (%s)' % how)
    s.close()
    s = H.connect(port)
    made.append(('idle', '%s:%d' % s.getsockname(), 0))
    how, _ = H.wait_closed(s, IDLE_MS / 1000 + 5)
    check(how in ('eof', 'reset'), 'idle: client not closed (%s)' % how)
    s.close()
    b.signal(signal.SIGTERM)
    check(b.wait_exit(10) == 0, 'baton did not stop cleanly')
    return b.log(), made


WANT = {
    # kind: (frontend, backend, server, reason)
    'served': ('web', 'app', 's1', 'done'),
    'refused': ('bad', 'dead', None, 'no server reachable'),
    'idle': ('web', 'app', 's1', 'idle timeout'),
}


def check_records(recs, made, log):
    by_client = {r['client']: r for r in recs}
    check(len(by_client) == len(recs) == len(made),
          '%d access log lines for %d connections:\n%s'
          % (len(recs), len(made), log[-2000:]))
    for kind, client, size in made:
        r = by_client.get(client)
        check(r is not None, 'no access log line for the %s connection '
              'from %s:\n%s' % (kind, client, log[-2000:]))
        fe, be, srv, reason = WANT[kind]
        got = (r['frontend'], r['backend'], r['server'], r['reason'])
        check(got == (fe, be, srv, reason), '%s connection: logged %r, '
              'want %r' % (kind, got, (fe, be, srv, reason)))
        check(r['bytes_in'] == size and r['bytes_out'] == size,
              '%s connection: in=%d out=%d, want %d both ways'
              % (kind, r['bytes_in'], r['bytes_out'], size))
        dur = r['duration_ms']
        if kind == 'idle':
            check(IDLE_MS * 0.8 <= dur <= IDLE_MS + 3000,
                  'idle connection lasted %d ms, timeout_idle %d ms'
                  % (dur, IDLE_MS))
        else:
            check(0 <= dur < 3000, '%s connection lasted %d ms'
                  % (kind, dur))
        t = time.mktime(time.strptime(r['time'][:19], '%Y-%m-%dT%H:%M:%S'))
        t -= time.timezone
        check(abs(t - time.time()) < 120, 'time %r is not now' % r['time'])


@h.case
def text_lines():
    log, made = run_connections('text')
    recs = []
    for line in log.splitlines():
        if ' info: ' not in line or ' in=' not in line:
            continue
        m = TEXT_RE.match(line)
        check(m, 'access log line does not parse: %r' % line)
        r = m.groupdict()
        for k in ('bytes_in', 'bytes_out', 'duration_ms'):
            r[k] = int(r[k])
        if r['server'] == '-':
            r['server'] = None
        recs.append(r)
    check_records(recs, made, log)


@h.case
def json_lines():
    log, made = run_connections('json')
    recs = []
    for line in log.splitlines():
        if not line.startswith('{'):
            check(' in=' not in line, 'a text access log line with '
                  'log_format = json: %r' % line)
            continue
        try:
            r = json.loads(line)
        except ValueError as e:
            raise H.Failure('not JSON (%s): %r' % (e, line))
        keys = {'time', 'pid', 'id', 'frontend', 'client', 'backend',
                'server', 'bytes_in', 'bytes_out', 'duration_ms', 'reason',
                'error'}
        check(set(r) == keys, 'JSON line keys %r, want %r'
              % (sorted(r), sorted(keys)))
        check(isinstance(r['pid'], int) and r['pid'] > 0, 'pid %r'
              % r['pid'])
        recs.append(r)
    check_records(recs, made, log)
    for r in recs:
        check(r['error'] is None or isinstance(r['error'], str),
              'error field: %r' % r)


@h.case
def json_off_by_default():
    """Without log_format the lines stay text; -T says log_format = text."""
    port = H.free_port()
    text = H.config(port, ['s1 127.0.0.1:1'], workers=1)
    h.write_file('default.ini', text)
    r = subprocess.run([H.BATON, '-T', '-c', h.path('default.ini')],
                         capture_output=True, text=True, timeout=10)
    check(r.returncode == 0 and re.search(r'(?m)^log_format = text$',
                                          r.stdout),
          '-T: exit %d, no "log_format = text":\n%s%s'
          % (r.returncode, r.stdout, r.stderr))


if __name__ == '__main__':
    sys.exit(h.run())
