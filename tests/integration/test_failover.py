#!/usr/bin/python3
"""test_failover.py -- unreachable servers: retries skip a dead server,
all servers dead closes the client promptly and baton stays up, and
connect_timeout bounds a connect that hangs."""

import collections
import os
import sys
import time

sys.dont_write_bytecode = True  # the source tree may be read-only
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402
from harness import check  # noqa: E402

h = H.Harness('test_failover', file_timeout=120)


def served_by(port, timeout=5):
    """Name of the backend serving one new connection, or the failure."""
    try:
        s = H.connect(port)
    except OSError as e:
        return 'connect failed: %s' % e
    try:
        line = H.recv_line(s, timeout=timeout)
        H.echo_ok(s, b'x')
        return line.decode().strip()
    except (H.Failure, OSError) as e:
        return 'failed: %s' % e
    finally:
        s.close()


@h.case
def dead_server_skipped_by_retries():
    live = h.start_backend('name', name='live')
    d1, d2 = H.dead_port(), H.dead_port()
    port = H.free_port()
    h.start_baton(H.config(port, ['d1 127.0.0.1:%d' % d1,
                                  'live 127.0.0.1:%d' % live.port,
                                  'd2 127.0.0.1:%d' % d2],
                           workers=2, retries=2, connect_timeout='1s'))
    t0 = time.monotonic()
    got = collections.Counter(served_by(port) for _ in range(50))
    print('  50 connections in %.2fs: %r' % (time.monotonic() - t0, dict(got)))
    check(got == {'live': 50}, 'client failures with a live server left: %r'
          % dict(got))


def expect_closed_quickly(port, limit, what):
    t0 = time.monotonic()
    s = H.connect(port)
    try:
        try:
            s.sendall(b'hello?\n')
        except OSError:
            pass
        how, _ = H.wait_closed(s, limit + 5)
    finally:
        s.close()
    dt = time.monotonic() - t0
    check(how in ('eof', 'reset'), '%s: client not closed within %.1fs'
          % (what, limit + 5))
    check(dt <= limit, '%s: client closed after %.2fs, want <= %.2fs'
          % (what, dt, limit))
    return dt


@h.case
def all_servers_dead_closes_client_and_stays_up():
    d1, d2 = H.free_port(), H.free_port()
    port = H.free_port()
    b = h.start_baton(H.config(port, ['d1 127.0.0.1:%d' % d1,
                                      'd2 127.0.0.1:%d' % d2],
                               workers=2, retries=1, connect_timeout='1s'))
    for i in range(6):
        # Refused connects fail at once; allow connect_timeout plus slack.
        expect_closed_quickly(port, 1.0 + 1.0, 'all dead, connection %d' % i)
        b.check_running()
    check(len(b.workers()) == 2, 'workers after failures: %r' % b.children())
    h.start_backend('name', name='d1', port=d1)

    def works():
        return served_by(port) == 'd1'
    H.poll_until(works, 10, 'a connection to be served once d1 is up',
                 interval=0.2)
    got = collections.Counter(served_by(port) for _ in range(10))
    check(got == {'d1': 10}, 'after d1 came back: %r' % dict(got))


@h.case
def connect_timeout_bounds_a_hanging_connect():
    port_bh, keep = H.blackhole()
    try:
        port = H.free_port()
        b = h.start_baton(H.config(port, ['bh 127.0.0.1:%d' % port_bh],
                                   workers=1, retries=0,
                                   connect_timeout='1s'))
        dt = expect_closed_quickly(port, 1.0 + 1.5, 'hanging server')
        check(dt >= 0.8, 'client closed after %.2fs, before connect_timeout '
              '(1s) could expire' % dt)
        b.check_running()
    finally:
        for s in keep:
            s.close()


@h.case
def hanging_server_skipped_after_connect_timeout():
    port_bh, keep = H.blackhole()
    try:
        live = h.start_backend('name', name='live')
        port = H.free_port()
        h.start_baton(H.config(port, ['bh 127.0.0.1:%d' % port_bh,
                                      'live 127.0.0.1:%d' % live.port],
                               workers=1, retries=1,
                               connect_timeout='500ms'))
        for i in range(4):
            t0 = time.monotonic()
            who = served_by(port, timeout=0.5 + 2.0)
            dt = time.monotonic() - t0
            check(who == 'live', 'connection %d: %s' % (i, who))
            check(dt <= 0.5 + 1.5, 'connection %d took %.2fs' % (i, dt))
    finally:
        for s in keep:
            s.close()


if __name__ == '__main__':
    sys.exit(h.run())
