#!/usr/bin/python3
"""test_concurrency.py -- 2000 connections open at once through baton, all
echoing correctly, and every socket released once they close."""

import asyncio
import os
import sys
import time

sys.dont_write_bytecode = True  # the source tree may be read-only
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402
from harness import check  # noqa: E402

h = H.Harness('test_concurrency', file_timeout=120)
N = 2000


async def one(i, port, connecting, opened, release, errors):
    msg = b'conn %05d ' % i * 6 + b'\n'
    w = None
    try:
        async with connecting:
            r, w = await asyncio.open_connection(H.LOCALHOST, port)
        w.write(msg)
        await w.drain()
        got = await r.readexactly(len(msg))
        if got != msg:
            raise AssertionError('echo mismatch %r' % got[:30])
        opened.append(i)
        await release.wait()
        w.write(msg[::-1])
        await w.drain()
        got = await r.readexactly(len(msg))
        if got != msg[::-1]:
            raise AssertionError('second echo mismatch %r' % got[:30])
    except Exception as e:  # collected and reported by the case
        errors.append('conn %d: %s: %s' % (i, type(e).__name__, e))
        opened.append(i)
    finally:
        if w is not None:
            w.close()


async def storm(port, on_all_open, timeout):
    connecting = asyncio.Semaphore(256)
    release = asyncio.Event()
    opened, errors = [], []
    tasks = [asyncio.ensure_future(one(i, port, connecting, opened, release,
                                       errors)) for i in range(N)]
    t0 = time.monotonic()
    deadline = t0 + timeout
    while len(opened) < N and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    t_open = time.monotonic() - t0
    held = None
    if len(opened) == N and not errors:
        held = on_all_open()
    release.set()
    done, pending = await asyncio.wait(tasks, timeout=max(
        1, deadline - time.monotonic()))
    for t in pending:
        t.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    return {'opened': len(opened), 'errors': errors, 'pending': len(pending),
            't_open': t_open, 'held': held}


def worker_sockets(b):
    return sum(len(v) for p, v in b.inodes().items() if p != b.pid)


@h.case(timeout=100)
def concurrent_2000_echo():
    H.raise_nofile(N + 512)
    echo = h.start_backend('echo', name='echo')
    port = H.free_port()
    b = h.start_baton(H.config(port, ['e1 127.0.0.1:%d' % echo.port],
                               workers=2, idle='60s'))
    base = worker_sockets(b)

    def backend_conns_held():
        mine = set().union(*[v for p, v in b.inodes().items() if p != b.pid])
        return sum(1 for r in H.tcp_table()
                   if r['remote_port'] == echo.port and r['inode'] in mine
                   and r['state'] == H.TCP_ESTABLISHED)

    res = asyncio.run(storm(port, backend_conns_held, timeout=60))
    print('  %d connections open and echoed in %.1fs; baton workers held %r '
          'backend connections at once' % (res['opened'], res['t_open'],
                                           res['held']))
    check(not res['errors'], '%d of %d connections failed, first: %s'
          % (len(res['errors']), N, res['errors'][:3]))
    check(res['opened'] == N and res['pending'] == 0,
          'only %d of %d connections done (%d pending)'
          % (res['opened'], N, res['pending']))
    check(res['held'] is not None and res['held'] >= N,
          'workers held %r backend connections at once, want %d'
          % (res['held'], N))
    b.check_running()
    # Everything closed: the workers give every socket back.
    try:
        H.poll_until(lambda: worker_sockets(b) <= base + 2, 15,
                     'worker sockets to go back to %d' % base)
    except H.Failure as e:
        raise H.Failure('%s: still %d after every client closed (leak)'
                        % (e, worker_sockets(b)))
    s = H.connect(port)
    try:
        H.echo_ok(s, b'after the storm\n')
    finally:
        s.close()


if __name__ == '__main__':
    sys.exit(h.run())
