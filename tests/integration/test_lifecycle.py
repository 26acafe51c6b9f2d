#!/usr/bin/python3
"""test_lifecycle.py -- processes: graceful stop (drained and forced),
kill -9 of a worker, a dead master, and which process owns which socket."""

import os
import signal
import sys
import time

sys.dont_write_bytecode = True  # the source tree may be read-only
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402
from harness import check  # noqa: E402

h = H.Harness('test_lifecycle', file_timeout=120)


def start_echo(workers=2, drain='10s', nbackends=1):
    backends = [h.start_backend('echo', name='e%d' % i)
                for i in range(nbackends)]
    port = H.free_port()
    b = h.start_baton(H.config(port, ['%s 127.0.0.1:%d' % (e.name, e.port)
                                      for e in backends],
                               workers=workers, drain=drain))
    return port, b, backends


def check_workers_gone(pids, timeout=3):
    H.poll_until(lambda: not any(H.proc_alive(p) for p in pids), timeout,
                 'workers %r to exit with the master' % pids)


def refused_soon(port, limit=2.0):
    t0 = time.monotonic()
    seen = []

    def refused():
        r = H.try_connect(port, 1.0)
        seen.append(r)
        return r == 'refused'
    try:
        H.poll_until(refused, limit, 'new connects to be refused')
    except H.Failure:
        raise H.Failure('new connects not refused within %.1fs of the '
                        'signal; last results: %r' % (limit, seen[-3:]))
    return time.monotonic() - t0


@h.case
def graceful_stop_waits_for_open_connection():
    port, b, _ = start_echo(drain='10s')
    workers = b.workers()
    c = H.connect(port)
    try:
        H.echo_ok(c, b'before\n')
        b.signal(signal.SIGTERM)
        dt = refused_soon(port)
        print('  listener closed %.2fs after SIGTERM' % dt)
        H.echo_ok(c, b'during the drain\n')
        check(b.alive(), 'baton exited with a connection still open')
        H.echo_ok(c, b'still during the drain\n')
    finally:
        c.close()
    t_close = time.monotonic()
    rc = b.wait_exit(5)
    check(rc == 0, 'exit status %r within 5s of the last connection '
          'closing (drain_timeout 10s), want 0' % rc)
    print('  exited %.2fs after the last connection closed'
          % (time.monotonic() - t_close))
    check_workers_gone(workers)


@h.case
def graceful_stop_drain_timeout_forces_close():
    port, b, _ = start_echo(drain='1s')
    workers = b.workers()
    c = H.connect(port)
    try:
        H.echo_ok(c, b'before\n')
        t0 = time.monotonic()
        b.signal(signal.SIGTERM)
        refused_soon(port)
        rc = b.wait_exit(1 + 4)
        dt = time.monotonic() - t0
        check(rc == 0, 'exit status %r (%.1fs after SIGTERM, drain_timeout '
              '1s), want 0' % (rc, dt))
        check(dt >= 0.8, 'exited %.2fs after SIGTERM with a connection '
              'open, before drain_timeout (1s)' % dt)
        how, _ = H.wait_closed(c, 3)
        check(how in ('eof', 'reset'), 'client still open after baton '
              'exited: %s' % how)
    finally:
        c.close()
    check_workers_gone(workers)


@h.case
def stop_without_connections():
    for sig in (signal.SIGTERM, signal.SIGINT):
        port, b, _ = start_echo(drain='10s')
        workers = b.workers()
        b.signal(sig)
        rc = b.wait_exit(3)
        check(rc == 0, 'signal %d with no connections: exit status %r '
              'within 3s, want 0' % (sig, rc))
        check_workers_gone(workers)
        check(H.try_connect(port) == 'refused', 'port still open after exit')


def holders(b, conns):
    """{socket: worker pid} for connections already echoed once."""
    out = {}
    for c in conns:
        out[c] = H.poll_until(lambda: b.holder_of(c), 3,
                              'a worker holding the connection')
    return out


@h.case
def worker_kill9_replaced_others_untouched():
    port, b, _ = start_echo(workers=2)
    old = b.workers()
    conns = []
    try:
        for i in range(8):
            c = H.connect(port)
            conns.append(c)
            H.echo_ok(c, b'hello %d\n' % i)
        held = holders(b, conns)
        check(set(held.values()) == set(old), 'the 8 connections are held '
              'by %r, want both workers %r' % (sorted(set(held.values())),
                                                old))
        victim = held[conns[0]]
        lost = [c for c in conns if held[c] == victim]
        kept = [c for c in conns if held[c] != victim]
        os.kill(victim, signal.SIGKILL)
        for c in lost:
            how, _ = H.wait_closed(c, 5)
            check(how in ('eof', 'reset'), 'connection of the killed worker '
                  'still open: %s' % how)
        now = b.wait_workers(2, timeout=10, exclude=[victim])
        new = set(now) - set(old)
        check(len(new) == 1, 'workers before %r, after %r: want one new pid'
              % (old, now))
        new = new.pop()
        print('  killed %d, replacement %d' % (victim, new))
        for i, c in enumerate(kept):
            H.echo_ok(c, b'survivor %d still works\n' % i)
        fresh = []
        for i in range(6):
            c = H.connect(port)
            fresh.append(c)
            conns.append(c)
            H.echo_ok(c, b'fresh %d\n' % i)
        fresh_held = holders(b, fresh)
        check(new in fresh_held.values(), 'no new connection reached the '
              'replacement worker %d: %r' % (new, sorted(fresh_held.values())))
        for i, c in enumerate(kept + fresh):
            H.echo_ok(c, b'all good %d\n' % i)
        b.check_running()
    finally:
        for c in conns:
            c.close()


@h.case
def workers_exit_when_master_dies():
    port, b, _ = start_echo(workers=2)
    workers = b.workers()
    os.kill(b.pid, signal.SIGKILL)
    b.wait_exit(5)
    check_workers_gone(workers, timeout=5)


@h.case
def backend_sockets_owned_by_workers_only():
    port, b, backends = start_echo(workers=2, nbackends=2)
    bports = {e.port for e in backends}
    conns = []
    try:
        for i in range(6):
            c = H.connect(port)
            conns.append(c)
            H.echo_ok(c, b'conn %d\n' % i)
        inodes = b.inodes()
        table = H.tcp_table()
        mine = {p: [r for r in table if r['inode'] in ino]
                for p, ino in inodes.items()}
        master = mine.pop(b.pid)
        bad = [r for r in master if r['remote_port'] in bports]
        check(not bad, 'the master holds backend sockets: %r' % bad)
        clients = [r for r in master if r['local_port'] == port
                   and r['state'] == H.TCP_ESTABLISHED]
        check(not clients, 'the master kept accepted client sockets: %r'
              % clients)
        per_worker = {p: sum(1 for r in rows if r['remote_port'] in bports
                             and r['state'] == H.TCP_ESTABLISHED)
                      for p, rows in mine.items()}
        check(sum(per_worker.values()) == 6,
              'workers hold %r backend connections, want 6 in all'
              % per_worker)
        check(all(n > 0 for n in per_worker.values()),
              'not every worker holds backend connections: %r' % per_worker)
    finally:
        for c in conns:
            c.close()


if __name__ == '__main__':
    sys.exit(h.run())
