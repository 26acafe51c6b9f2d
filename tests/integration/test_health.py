#!/usr/bin/python3
"""test_health.py -- server health and balancing through the real binary:
active tcp checks (a killed backend goes down and gets nothing, a restarted
one comes back), passive marking with checks off (max_fails, fail_timeout),
backup servers, source and leastconn balancing, check_send/check_expect
against a real redis-server, and the per-server and per-frontend
max_connections limits under a burst. /stats shows what baton decided."""

import collections
import http.client
import json
import os
import signal
import select
import socket
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # the source tree may be read-only
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402
from harness import check  # noqa: E402

h = H.Harness('test_health', file_timeout=120)

REDIS = '/usr/bin/redis-server'

# Active checks in these tests: fast, so that a case takes seconds.
INTERVAL = 0.3
RISE, FALL = 2, 2
SLACK = 1.0
# Checks are jittered by +-5% of the interval; a refused connect fails at
# once. Down within fall intervals, up within rise intervals, plus slack.
DOWN_BOUND = FALL * INTERVAL * 1.05 + SLACK
UP_BOUND = RISE * INTERVAL * 1.05 + SLACK
CHECKS = ['check = tcp', 'check_interval = %dms' % (INTERVAL * 1000),
          'check_timeout = 200ms', 'rise = %d' % RISE, 'fall = %d' % FALL]
STATS_SETTLE = 1.5      # workers report every 250 ms


# ------------------------------------------------------------------ setup

def two_ports():
    port, sport = H.free_port(), H.free_port()
    while sport == port:
        sport = H.free_port()
    return port, sport


def conf(port, sport, servers, workers=2, balance='roundrobin', backend=(),
         frontend=(), retries=2, extra=''):
    """proxy.ini: frontend web on PORT -> backend app, stats on SPORT."""
    lines = ['[global]', 'workers = %d' % workers, 'drain_timeout = 2s',
             'log_level = info', '',
             '[stats]', 'listen = 127.0.0.1:%d' % sport, '',
             '[frontend web]', 'listen = 127.0.0.1:%d' % port,
             'backend = app', 'timeout_idle = 30s'] + list(frontend)
    lines += ['', '[backend app]', 'balance = %s' % balance]
    lines += ['server = %s' % s for s in servers]
    lines += ['connect_timeout = 1s', 'retries = %d' % retries]
    lines += list(backend)
    return '\n'.join(lines) + '\n' + extra


def start(servers, **kw):
    """Baton on fresh ports with CONF(**kw). (baton, port, sport)."""
    port, sport = two_ports()
    b = h.start_baton(conf(port, sport, servers, **kw))
    return b, port, sport


def get_stats(sport):
    c = http.client.HTTPConnection(H.LOCALHOST, sport, timeout=3)
    try:
        c.request('GET', '/stats')
        r = c.getresponse()
        body = r.read()
    finally:
        c.close()
    check(r.status == 200, 'GET /stats: %d %r' % (r.status, body[:200]))
    return json.loads(body.decode())


def servers(doc, backend='app'):
    for be in doc['backends']:
        if be['name'] == backend:
            return {s['name']: s for s in be['servers']}
    raise H.Failure('no backend %r in /stats' % backend)


def frontend(doc, name='web'):
    for fe in doc['frontends']:
        if fe['name'] == name:
            return fe
    raise H.Failure('no frontend %r in /stats' % name)


def wait_stats(sport, pred, what, timeout):
    """Poll /stats until PRED(doc); returns (doc, seconds waited)."""
    t0 = time.monotonic()
    last = [None]

    def ok():
        last[0] = get_stats(sport)
        return pred(last[0])
    try:
        H.poll_until(ok, timeout, what, interval=0.02)
    except H.Failure as e:
        raise H.Failure('%s; last /stats backends: %s'
                        % (e, json.dumps(last[0] and last[0]['backends'])))
    return last[0], time.monotonic() - t0


def wait_status(sport, name, status, timeout, backend='app'):
    """Seconds until server NAME shows STATUS in /stats (fails after
    TIMEOUT)."""
    _, dt = wait_stats(sport, lambda d: servers(d, backend)[name]['status']
                       == status, '%s/%s to be %s' % (backend, name, status),
                       timeout)
    return dt


def served_by(port, src=None, timeout=3):
    """The name line of the backend serving one new connection (from
    source address SRC), or a string saying what went wrong."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        if src:
            s.bind((src, 0))
        s.connect((H.LOCALHOST, port))
        line = H.recv_line(s, timeout=timeout)
        H.echo_ok(s, b'x')
        return line.decode().strip()
    except (H.Failure, OSError) as e:
        return 'failed: %s' % e
    finally:
        s.close()


def names(port, n, src=None):
    return [served_by(port, src) for _ in range(n)]


def kill(backend):
    """SIGKILL a backend process and reap it."""
    backend.proc.kill()
    backend.proc.wait(5)


def log_count(b, text):
    return b.log().count(text)


def settle_totals(sport, want, what):
    """Wait until the servers' totals reach WANT {name: total}; the doc."""
    doc, _ = wait_stats(sport, lambda d: all(
        servers(d)[n]['total'] >= t for n, t in want.items()),
        what, STATS_SETTLE)
    return doc


# ------------------------------------------------------- active checks

@h.case
def killed_backend_down_then_back_up():
    a = h.start_backend('name', name='a')
    b2 = h.start_backend('name', name='b')
    b, port, sport = start(['a 127.0.0.1:%d' % a.port,
                            'b 127.0.0.1:%d' % b2.port], backend=CHECKS)
    doc = get_stats(sport)
    check({s['status'] for s in servers(doc).values()} == {'up'},
          'servers do not start up: %r' % servers(doc))
    got = collections.Counter(names(port, 10))
    check(set(got) == {'a', 'b'}, 'before the kill: %r' % dict(got))

    kill(a)
    dt = wait_status(sport, 'a', 'down', DOWN_BOUND)
    print('  a down %.2fs after the kill (bound %.2fs)' % (dt, DOWN_BOUND))
    before = servers(get_stats(sport))
    got = collections.Counter(names(port, 40))
    check(got == {'b': 40}, 'while a is down: %r' % dict(got))
    settle_totals(sport, {'b': before['b']['total'] + 40},
                  'b total to count the 40 connections')
    time.sleep(0.3)
    after = servers(get_stats(sport))
    check(after['a']['total'] == before['a']['total'] and
          after['a']['failures'] == before['a']['failures'],
          'a was tried while down: total %d -> %d, failures %d -> %d'
          % (before['a']['total'], after['a']['total'],
             before['a']['failures'], after['a']['failures']))
    check(after['b']['total'] == before['b']['total'] + 40,
          'b total %d -> %d for 40 connections'
          % (before['b']['total'], after['b']['total']))

    h.start_backend('name', name='a', port=a.port)
    dt = wait_status(sport, 'a', 'up', UP_BOUND)
    print('  a up %.2fs after the restart (bound %.2fs)' % (dt, UP_BOUND))
    got = collections.Counter(names(port, 20))
    check(set(got) == {'a', 'b'} and abs(got['a'] - got['b']) <= 2,
          'after a came back: %r' % dict(got))
    # Each change logged once, by the master.
    check(log_count(b, 'server app/a (127.0.0.1:%d) is down' % a.port) == 1
          and log_count(b, 'server app/a (127.0.0.1:%d) is up' % a.port)
          == 1, 'state changes of a not logged once each:\n%s'
          % b.log_tail(20))
    b.check_running()


@h.case
def new_worker_learns_server_states():
    # The master says a state once, when it changes; a worker started
    # later must still know it before its first connection. retries = 0:
    # a worker that thought a was up would fail clients on it.
    a = h.start_backend('name', name='a')
    b2 = h.start_backend('name', name='b')
    b, port, sport = start(['a 127.0.0.1:%d' % a.port,
                            'b 127.0.0.1:%d' % b2.port], workers=1,
                           retries=0, backend=CHECKS)
    kill(a)
    wait_status(sport, 'a', 'down', DOWN_BOUND)
    old = b.wait_workers(1)
    os.kill(old[0], signal.SIGKILL)
    new = b.wait_workers(1, exclude=old)
    print('  worker %d replaced by %d while a is down' % (old[0], new[0]))
    before = servers(get_stats(sport))
    got = collections.Counter(names(port, 20))
    check(got == {'b': 20}, 'the new worker used a: %r' % dict(got))
    time.sleep(0.3)
    after = servers(get_stats(sport))
    check(after['a']['failures'] == before['a']['failures'] and
          after['a']['total'] == before['a']['total'],
          'the new worker tried a: failures %d -> %d'
          % (before['a']['failures'], after['a']['failures']))
    b.check_running()


# ---------------------------------------------------- passive failures

@h.case
def passive_marking_with_checks_off():
    live = h.start_backend('name', name='live')
    dport = H.free_port()
    b, port, sport = start(['d 127.0.0.1:%d' % dport,
                            'live 127.0.0.1:%d' % live.port], retries=1,
                           backend=['max_fails = 1', 'fail_timeout = 3s'])
    t_first = time.monotonic()
    # Each worker starts its round-robin on d: it fails, live serves.
    got = names(port, 4)
    check(got == ['live'] * 4, 'first connections: %r' % got)
    wait_status(sport, 'd', 'down', 1.0)
    t_down = time.monotonic()
    print('  d down %.2fs after the first connection' % (t_down - t_first))
    # Both workers may have tried d before the master marked it: let
    # their reports of those failures arrive before counting.
    time.sleep(0.6)
    doc = get_stats(sport)
    f0 = servers(doc)['d']['failures']
    check(f0 >= 1, 'd: %r' % servers(doc)['d'])
    check(servers(doc)['live']['status'] == 'up', 'live: %r'
          % servers(doc)['live'])

    # Within fail_timeout (which began before t_down): no attempt on d.
    n = 0
    while time.monotonic() < t_down + 1.8:
        got = served_by(port)
        check(got == 'live', 'connection %d while d is avoided: %s'
              % (n, got))
        n += 1
    time.sleep(max(0.0, t_down + 2.4 - time.monotonic()))
    doc = get_stats(sport)
    check(servers(doc)['d']['failures'] == f0,
          'd tried during fail_timeout: failures %d -> %d over %d '
          'connections' % (f0, servers(doc)['d']['failures'], n))
    check(servers(doc)['d']['status'] == 'down', 'd during fail_timeout: %r'
          % servers(doc)['d'])

    # After fail_timeout it is tried again (and fails, and is avoided).
    wait_status(sport, 'd', 'up', t_down + 3.0 + SLACK - time.monotonic())
    t_up = time.monotonic()
    print('  d up again %.2fs after its first failure, %d connections '
          'avoided it' % (t_up - t_first, n))
    check(t_up - t_first >= 2.9, 'd back after %.2fs, fail_timeout is 3s'
          % (t_up - t_first))
    got = names(port, 4)
    check(got == ['live'] * 4, 'after fail_timeout: %r' % got)
    wait_stats(sport, lambda d: servers(d)['d']['failures'] > f0,
               'd to be tried again after fail_timeout', STATS_SETTLE)
    wait_status(sport, 'd', 'down', 1.0)
    check(log_count(b, 'avoided for 3000 ms') >= 2, 'log:\n%s'
          % b.log_tail(20))
    b.check_running()


# --------------------------------------------------------------- backup

@h.case
def backup_only_when_all_primaries_down():
    p1 = h.start_backend('name', name='p1')
    p2 = h.start_backend('name', name='p2')
    bk = h.start_backend('name', name='bk')
    b, port, sport = start(['p1 127.0.0.1:%d' % p1.port,
                            'p2 127.0.0.1:%d' % p2.port,
                            'bk 127.0.0.1:%d backup' % bk.port],
                           backend=CHECKS)
    got = collections.Counter(names(port, 20))
    check(got == {'p1': 10, 'p2': 10}, 'all up: %r' % dict(got))

    kill(p1)
    wait_status(sport, 'p1', 'down', DOWN_BOUND)
    got = collections.Counter(names(port, 10))
    check(got == {'p2': 10}, 'p1 down: %r' % dict(got))

    kill(p2)
    wait_status(sport, 'p2', 'down', DOWN_BOUND)
    got = collections.Counter(names(port, 10))
    check(got == {'bk': 10}, 'both primaries down: %r' % dict(got))

    h.start_backend('name', name='p2', port=p2.port)
    wait_status(sport, 'p2', 'up', UP_BOUND)
    got = collections.Counter(names(port, 10))
    check(got == {'p2': 10}, 'p2 back: %r' % dict(got))
    doc = settle_totals(sport, {'p2': 15}, 'p2 total')
    check(servers(doc)['bk']['total'] == 10, 'bk total %d, want 10'
          % servers(doc)['bk']['total'])
    check(servers(doc)['bk']['status'] == 'up', 'bk: %r'
          % servers(doc)['bk'])
    b.check_running()


# --------------------------------------------------------------- source

def source_map(port, addrs, n):
    """{addr: server} over N connections from each source address; fails
    when one address reaches two servers."""
    out = {}
    for a in addrs:
        got = set(names(port, n, src=a))
        check(len(got) == 1 and not next(iter(got)).startswith('failed'),
              'client %s reached %r over %d connections' % (a, got, n))
        out[a] = got.pop()
    return out


@h.case
def source_keeps_clients_on_one_server():
    try:
        s = socket.socket()
        s.bind(('127.0.0.2', 0))
        s.close()
    except OSError as e:
        raise H.Skip('cannot bind 127.0.0.2: %s' % e)
    backs = [h.start_backend('name', name='s%d' % i) for i in range(1, 5)]
    b, port, sport = start(['%s 127.0.0.1:%d' % (x.name, x.port)
                            for x in backs], balance='source',
                           backend=CHECKS)
    addrs = ['127.0.0.%d' % i for i in range(2, 18)]
    # Both workers take turns: each must agree on every client.
    first = source_map(port, ['127.0.0.2', '127.0.0.3'], 20)
    print('  127.0.0.2 -> %s, 127.0.0.3 -> %s' % (first['127.0.0.2'],
                                                  first['127.0.0.3']))
    m = source_map(port, addrs, 4)
    check(all(m[a] == first[a] for a in first), 'moved: %r vs %r'
          % (first, m))
    spread = collections.Counter(m.values())
    print('  16 clients over the servers: %r' % dict(spread))
    check(len(spread) >= 3, '16 clients on %d of 4 servers: %r'
          % (len(spread), dict(spread)))

    # Its server goes down: its clients move, and only they do.
    gone = m['127.0.0.2']
    kill(next(x for x in backs if x.name == gone))
    wait_status(sport, gone, 'down', DOWN_BOUND)
    m2 = source_map(port, addrs, 4)
    for a in addrs:
        if m[a] != gone:
            check(m2[a] == m[a], 'client %s moved from %s to %s, but %s '
                  'went down' % (a, m[a], m2[a], gone))
        else:
            check(m2[a] != gone, 'client %s still on %s' % (a, gone))
    b.check_running()


# ------------------------------------------------------------ leastconn

def open_held(port):
    s = H.connect(port)
    return s, H.recv_line(s, timeout=3).decode().strip()


@h.case
def leastconn_avoids_server_with_long_connections():
    a = h.start_backend('name', name='a')
    bb = h.start_backend('name', name='b')
    b, port, sport = start(['a 127.0.0.1:%d' % a.port,
                            'b 127.0.0.1:%d' % bb.port], workers=1,
                           balance='leastconn')
    held = [open_held(port) for _ in range(6)]
    got = [n for _, n in held]
    check(collections.Counter(got) == {'a': 3, 'b': 3},
          'six long connections: %r' % got)
    for s, n in held:
        if n == 'b':
            s.close()
    held = [(s, n) for s, n in held if n == 'a']
    wait_stats(sport, lambda d: servers(d)['b']['active'] == 0 and
               servers(d)['a']['active'] == 3, 'b to have no connection',
               STATS_SETTLE)
    # a holds three: short connections all go to b.
    got = names(port, 10)
    check(got == ['b'] * 10, 'short ones while a holds 3: %r' % got)
    wait_stats(sport, lambda d: servers(d)['b']['active'] == 0,
               'the short ones to end', STATS_SETTLE)
    # New long ones go to b until it holds as many.
    more = [open_held(port) for _ in range(3)]
    got = [n for _, n in more]
    check(got == ['b'] * 3, 'long ones while a holds 3: %r' % got)
    # Level: both again.
    more += [open_held(port) for _ in range(2)]
    got = [n for _, n in more[3:]]
    check(sorted(got) == ['a', 'b'], 'with 3 each: %r' % got)
    for s, _ in held + more:
        s.close()
    b.check_running()


# ------------------------------------------------ check_send / expect

def redis_ping(port, timeout=0.5):
    try:
        s = H.connect(port, timeout=timeout)
    except OSError:
        return False
    try:
        s.sendall(b'PING\r\n')
        return s.recv(16) == b'+PONG\r\n'
    except OSError:
        return False
    finally:
        s.close()


def start_redis(port):
    log = open(h.path('redis-%d.log' % port), 'ab')
    try:
        p = h._spawn([REDIS, '--port', str(port), '--bind', '127.0.0.1',
                      '--save', '', '--appendonly', 'no',
                      '--daemonize', 'no', '--dir', h.path('')],
                     stdout=log, stderr=subprocess.STDOUT)
    finally:
        log.close()
    H.poll_until(lambda: p.poll() is not None or redis_ping(port), 10,
                 'redis-server to answer PING on %d' % port)
    check(p.poll() is None, 'redis-server exited with %r' % p.poll())
    return p


@h.case
def check_send_expect_against_redis():
    if not os.access(REDIS, os.X_OK):
        raise H.Skip('%s not installed (Debian package redis-server)'
                     % REDIS)
    rport = H.free_port()
    redis = start_redis(rport)
    echo = h.start_backend('echo', name='e1')
    expect = ['check_send = PING\\r\\n', 'check_expect = +PONG']
    wrong = '\n'.join(['', '[backend wrong]',
                       'server = r2 127.0.0.1:%d' % rport] + CHECKS +
                      ['check_send = PING\\r\\n', 'check_expect = +PANG',
                       ''])
    b, port, sport = start(['r1 127.0.0.1:%d' % rport,
                            'e1 127.0.0.1:%d' % echo.port],
                           backend=CHECKS + expect, extra=wrong)
    # An echo server accepts, but answers PING: not +PONG.
    wait_status(sport, 'e1', 'down', DOWN_BOUND)
    wait_status(sport, 'r2', 'down', DOWN_BOUND, backend='wrong')
    time.sleep(3 * INTERVAL)
    doc = get_stats(sport)
    check(servers(doc)['r1']['status'] == 'up', 'r1 (redis, +PONG): %r'
          % servers(doc)['r1'])
    check('server app/r1' not in b.log(), 'r1 changed state:\n%s'
          % b.log_tail(20))
    for i in range(5):
        s = H.connect(port)
        try:
            s.sendall(b'PING\r\n')
            line = H.recv_line(s, timeout=3)
        finally:
            s.close()
        check(line == b'+PONG\r\n', 'PING %d through baton: %r' % (i, line))

    redis.terminate()
    redis.wait(5)
    dt = wait_status(sport, 'r1', 'down', DOWN_BOUND)
    print('  r1 down %.2fs after redis stopped' % dt)
    start_redis(rport)
    dt = wait_status(sport, 'r1', 'up', UP_BOUND)
    print('  r1 up %.2fs after redis answered again' % dt)
    time.sleep(2 * INTERVAL)
    doc = get_stats(sport)
    check(servers(doc, 'wrong')['r2']['status'] == 'down',
          'r2 (expects +PANG) with redis up: %r' % servers(doc, 'wrong'))
    check(servers(doc)['e1']['status'] == 'down', 'e1: %r'
          % servers(doc)['e1'])
    b.check_running()


# --------------------------------------------------------------- limits

def burst(port, n, timeout):
    """Open N connections at once. Returns (served, closed, hung): served
    [(sock, name)] that got a backend's name line; closed [(seconds,
    'eof'|'reset')] of those baton closed; hung: how many did neither
    within TIMEOUT."""
    socks = []
    for _ in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(3)
        s.connect((H.LOCALHOST, port))
        s.setblocking(False)
        socks.append(s)
    t0 = time.monotonic()
    bufs = {s: b'' for s in socks}
    served, closed = [], []
    left = set(socks)
    while left:
        wait = t0 + timeout - time.monotonic()
        if wait <= 0:
            break
        r, _, _ = select.select(list(left), [], [], wait)
        for s in r:
            try:
                data = s.recv(256)
            except (ConnectionResetError, BrokenPipeError):
                closed.append((time.monotonic() - t0, 'reset'))
                left.discard(s)
                s.close()
                continue
            except BlockingIOError:
                continue
            if not data:
                closed.append((time.monotonic() - t0, 'eof'))
                left.discard(s)
                s.close()
                continue
            bufs[s] += data
            if bufs[s].endswith(b'\n'):
                s.setblocking(True)
                s.settimeout(3)
                served.append((s, bufs[s].decode().strip()))
                left.discard(s)
    for s in left:
        s.close()
    return served, closed, len(left)


@h.case
def server_max_connections_under_burst():
    a = h.start_backend('name', name='a')
    b, port, sport = start(['a 127.0.0.1:%d max_connections=4' % a.port],
                           workers=2, retries=0)
    served, closed, hung = burst(port, 12, 3.0)
    try:
        print('  12 at once: %d served, %d closed (%s), %d hung'
              % (len(served), len(closed),
                 ', '.join('%s %.2fs' % (w, t) for t, w in closed), hung))
        check(hung == 0, '%d connections neither served nor closed in 3s'
              % hung)
        check(len(served) == 4, '%d served, want max_connections = 4'
              % len(served))
        check(all(t <= 1.0 for t, _ in closed),
              'surplus closed after %r' % closed)
        for s, _ in served:
            H.echo_ok(s, b'still here\n')
        doc, _ = wait_stats(sport, lambda d: frontend(d)['errors'] >= 8,
                            'frontend errors to count the surplus',
                            STATS_SETTLE)
        time.sleep(0.3)
        doc = get_stats(sport)
        fe, srv = frontend(doc), servers(doc)['a']
        check(fe['errors'] == 8 and fe['total'] == 12,
              'frontend total %d errors %d, want 12 and 8'
              % (fe['total'], fe['errors']))
        check(srv['active'] == 4 and srv['total'] == 4,
              'server a active %d total %d, want 4 and 4'
              % (srv['active'], srv['total']))
    finally:
        for s, _ in served:
            s.close()
    # Room again once they are gone.
    wait_stats(sport, lambda d: servers(d)['a']['active'] == 0,
               'a to have no connection', STATS_SETTLE)
    got = names(port, 4)
    check(got == ['a'] * 4, 'after the burst: %r' % got)
    b.check_running()


@h.case
def frontend_max_connections_under_burst():
    a = h.start_backend('name', name='a')
    b, port, sport = start(['a 127.0.0.1:%d' % a.port], workers=2,
                           frontend=['max_connections = 5'])
    served, closed, hung = burst(port, 15, 4.0)
    try:
        print('  15 at once: %d served, %d closed (%s), %d hung'
              % (len(served), len(closed),
                 ', '.join('%s %.2fs' % (w, t) for t, w in closed), hung))
        check(hung == 0, '%d connections neither served nor closed in 4s'
              % hung)
        check(len(served) == 5, '%d served, want max_connections = 5'
              % len(served))
        # Held up to 1 s in the queue, then closed: not before, not much
        # after.
        check(all(0.8 <= t <= 2.0 for t, _ in closed),
              'surplus closed after %r' % closed)
        for s, _ in served:
            H.echo_ok(s, b'still here\n')
        wait_stats(sport, lambda d: frontend(d)['errors'] >= 10,
                   'frontend errors to count the surplus', STATS_SETTLE)
        time.sleep(0.3)
        doc = get_stats(sport)
        fe = frontend(doc)
        check(fe['errors'] == 10 and fe['total'] == 15 and
              fe['active'] == 5, 'frontend total %d errors %d active %d, '
              'want 15, 10 and 5' % (fe['total'], fe['errors'],
                                     fe['active']))

        # One more waits in the queue and gets in when one leaves.
        extra = H.connect(port)
        served.append((extra, None))
        time.sleep(0.3)
        served[0][0].close()
        line = H.recv_line(extra, timeout=1.5)
        check(line == b'a\n', 'the held connection got %r' % line)
    finally:
        for s, _ in served:
            s.close()
    b.check_running()


if __name__ == '__main__':
    sys.exit(h.run())
