#!/usr/bin/python3
"""test_pressure.py -- baton at its descriptor limit bends and recovers.

baton runs under RLIMIT_NOFILE 128 (master and workers alike) with two
frontends. 400 clients connect to one and are held: far more than the
descriptor tables hold. The master must stop accepting before it runs out
(keeping a reserve), not spin on EMFILE, not flood its log, and give each
worker no more sockets than its table holds; once the clients close,
every new connection to the other frontend is served.
"""

import os
import re
import resource
import sys
import time

sys.dont_write_bytecode = True  # the source tree may be read-only
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402
from harness import check  # noqa: E402

h = H.Harness('test_pressure', file_timeout=150)

LIMIT = 128
HELD = 400


def start_limited(text):
    """Start baton with RLIMIT_NOFILE LIMIT:LIMIT, set in the child alone
    (the test itself needs more), so master and workers inherit it."""
    def limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (LIMIT, LIMIT))

    return h.start_baton(text, preexec_fn=limit)


def config_two(pa, pb, ps, be):
    return '\n'.join([
        '[global]', 'workers = 2', 'drain_timeout = 2s', 'log_level = info',
        '', '[stats]', 'listen = 127.0.0.1:%d' % ps, '', '[frontend flood]', 'listen = 127.0.0.1:%d' % pa,
        'backend = app', '',
        '[frontend calm]', 'listen = 127.0.0.1:%d' % pb, 'backend = app', '',
        '[backend app]', 'server = s1 127.0.0.1:%d' % be.port,
        'connect_timeout = 2s', ''])


def stats(port):
    """GET /stats from the endpoint on PORT, as a dict."""
    import http.client
    import json
    c = http.client.HTTPConnection(H.LOCALHOST, port, timeout=5)
    try:
        c.request('GET', '/stats')
        return json.loads(c.getresponse().read())
    finally:
        c.close()


def log_lines(b):
    with open(b.log_path, errors='replace') as f:
        return f.read().splitlines()


def saturated(b, what):
    """Measure the master's CPU and log rate for 3 s and check both."""
    lines0, t0, c0 = len(log_lines(b)), time.monotonic(), H.cpu_seconds(b.pid)
    time.sleep(3.0)     # the measurement window itself
    dt = time.monotonic() - t0
    cpu = (H.cpu_seconds(b.pid) - c0) / dt
    rate = (len(log_lines(b)) - lines0) / dt
    print('  %s: master CPU %.1f%% of a core, %.1f log lines/s'
          % (what, cpu * 100, rate))
    check(cpu < 0.20, 'the master used %.0f%% of a core (%s)'
          % (cpu * 100, what))
    check(rate < 200, '%.0f log lines per second (%s)' % (rate, what))
    b.check_running()


def served_within(port, n, limit):
    t0 = time.monotonic()
    for i in range(n):
        left = max(0.5, limit - (time.monotonic() - t0))
        s = H.connect(port, timeout=left)
        try:
            H.echo_ok(s, b'calm %d\n' % i, timeout=left)
        finally:
            s.close()
    dt = time.monotonic() - t0
    print('  %d new clients served in %.2fs' % (n, dt))
    check(dt < limit, 'serving %d new clients took %.1fs' % (n, dt))


@h.case(timeout=120)
def descriptor_limit_bends_and_recovers():
    H.raise_nofile(HELD + 200)
    be = h.start_backend('echo', name='echo')
    pa, pb, ps = H.free_port(), H.free_port(), H.free_port()
    b = start_limited(config_two(pa, pb, ps, be))
    workers = b.workers()
    held = H.open_many(pa, HELD)
    try:
        # Saturated: the master pauses instead of spinning or logging.
        H.poll_until(lambda: stats(ps)['accept_paused'], 10,
                     'accepting to pause')
        saturated(b, 'saturated')
        st = stats(ps)
        check(st['accept_paused'] is True and st['accept_pauses'] >= 1,
              '/stats does not show accepting paused: %r'
              % {k: st.get(k) for k in ('accept_paused', 'accept_pauses',
                                        'accept_paused_s')})
    finally:
        for s in held:
            s.close()
    # Recovered: every new client of the other frontend is served.
    served_within(pb, 20, 10)
    b.check_running()
    st = H.poll_until(lambda: (lambda x: x if not x['accept_paused']
                                 else None)(stats(ps)), 10,
                      '/stats to show accepting again')
    check(st['accept_paused_s'] > 0, 'no time paused counted: %r'
          % st['accept_paused_s'])
    # It paused in time: no accept failed for want of a descriptor, no
    # worker got a socket without its descriptor, none had to be replaced.
    text = '\n'.join(log_lines(b))
    check('Too many open files' not in text,
          'the master ran out of descriptors:\n%s' % b.log_tail())
    check('without its descriptors' not in text and 'truncated' not in text,
          'a worker got sockets its table could not hold:\n%s'
          % b.log_tail())
    check(b.workers() == workers, 'workers %r replaced by %r'
          % (workers, b.workers()))


@h.case(timeout=120)
def limit_hit_by_the_workers_only():
    """The master has room; each worker may open 128 descriptors only
    (set on the running workers, so the master does not know)."""
    H.raise_nofile(HELD + 200)
    be = h.start_backend('echo', name='echo')
    pa, pb, ps = H.free_port(), H.free_port(), H.free_port()
    b = h.start_baton(config_two(pa, pb, ps, be))
    workers = b.workers()
    for w in workers:
        old = resource.prlimit(w, resource.RLIMIT_NOFILE)
        resource.prlimit(w, resource.RLIMIT_NOFILE, (LIMIT, old[1]))
    held = H.open_many(pa, HELD)
    try:
        # Full, or so nearly full that a message of the master's came
        # without its descriptors and they said bye (checked below).
        H.poll_until(lambda: sum(H.fd_count(w) for w in workers) >=
                     2 * LIMIT - 40 or 'without its descriptors' in
                     '\n'.join(log_lines(b)), 10, 'the workers to fill up')
        saturated(b, 'workers at their limit')
    finally:
        for s in held:
            s.close()
    served_within(pb, 20, 10)
    b.check_running()
    # A socket that reached a full worker without its descriptor is still
    # the master's: that worker says bye, the master hands what it did not
    # take to the others and starts a fresh one (finding 2).
    text = '\n'.join(log_lines(b))
    if 'without its descriptors' in text:
        check(re.search(r'drains on its own: \d+ sockets it did not take '
                        r'go to other workers', text),
              'sockets lost with their descriptors:\n%s' % b.log_tail())
        st = stats(ps)
        check(st['redispatched'] > 0, '/stats redispatched is 0')
        H.poll_until(lambda: len([w for w in stats(ps)['workers']
                                  if w['state'] == 'running']) == 2, 10,
                     'two running workers again')
    print('  truncated messages: %s' % ('yes' if 'without its descriptors'
                                         in text else 'none'))


@h.case(timeout=120)
def limit_hit_by_the_stats_port_only():
    """Clients of the stats port alone would exhaust the master's 128
    descriptors: they are capped, and the frontends never notice."""
    H.raise_nofile(HELD + 200)
    be = h.start_backend('echo', name='echo')
    pa, pb, ps = H.free_port(), H.free_port(), H.free_port()
    b = start_limited(config_two(pa, pb, ps, be))
    base = H.fd_count(b.pid)
    held = H.open_many(ps, HELD)
    try:
        H.poll_until(lambda: H.fd_count(b.pid) >= base + LIMIT // 8, 10,
                     'the stats port to take its share')
        saturated(b, 'stats port flooded')
        check(H.fd_count(b.pid) <= base + LIMIT // 8 + 1, 'the stats port '
              'holds %d of the master\'s descriptors'
              % (H.fd_count(b.pid) - base))
        served_within(pb, 20, 10)
        served_within(pa, 20, 10)
    finally:
        for s in held:
            s.close()
    st = H.poll_until(lambda: stats(ps), 10, '/stats to answer again')
    check(st['frontends'][1]['total'] >= 20, '/stats: %r' % st['frontends'])
    text = '\n'.join(log_lines(b))
    check('Too many open files' not in text,
          'the master ran out of descriptors:\n%s' % b.log_tail())


@h.case(timeout=120)
def splice_pipes_within_the_budget():
    """Under RLIMIT_NOFILE 128, 30 clients that send without reading fill
    their sessions' splice pipes both ways; the pipes a worker may hold
    are part of its descriptor budget, so 10 more clients still connect
    onward and are echoed."""
    H.raise_nofile(HELD + 200)
    be = h.start_backend('echo', name='echo')
    pa, pb, ps = H.free_port(), H.free_port(), H.free_port()
    b = start_limited(config_two(pa, pb, ps, be).replace(
        'workers = 2', 'workers = 1'))
    stuck = []
    chunk = b'x' * 65536
    try:
        for _ in range(30):
            s = H.connect(pa)
            s.setblocking(False)
            stuck.append(s)
        # Push until nothing more goes in: every buffer on the way full.
        for _ in range(200):
            moved = 0
            for s in stuck:
                try:
                    moved += s.send(chunk)
                except BlockingIOError:
                    pass
            if moved == 0:
                break
            time.sleep(0.01)
        for i in range(10):
            H.echo_new(pb, b'still room %d\n' % i)
    finally:
        for s in stuck:
            s.close()
    text = '\n'.join(log_lines(b))
    check('local error' not in text, 'a worker ran out of descriptors:\n%s'
          % b.log_tail())


if __name__ == '__main__':
    sys.exit(h.run())
