#!/usr/bin/python3
"""test_ipc.py -- bad bytes on the master/worker channel.

The test takes a copy of one end of a live channel with pidfd_getfd(2)
(root, Linux >= 5.6) and writes garbage into it, as a corrupted peer
would. Whichever side receives it logs it and closes that channel: the
master kills a worker that sends garbage; a worker that gets garbage says
bye, stops reading and finishes its connections. Every client connection
elsewhere goes on untouched, and no new client is lost.
"""

import os
import struct
import sys
import time

sys.dont_write_bytecode = True  # the source tree may be read-only
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402
from harness import check  # noqa: E402

h = H.Harness('test_ipc', file_timeout=120)

# Messages no peer may send: an unknown type, a lying length, a header cut
# short, and a CHAN_CONN record count without its descriptors.
GARBAGE = [
    struct.pack('<HHI', 0x7777, 0, 8),
    struct.pack('<HHI', 4, 0, 4096),
    b'\x01\x00',
    struct.pack('<HHI', 1, 3, 8 + 3 * 32) + b'\0' * (3 * 32),
]


def start(workers=2, drain='5s'):
    be = h.start_backend('echo', name='echo')
    port = H.free_port()
    b = h.start_baton(H.config(port, ['s1 127.0.0.1:%d' % be.port],
                               workers=workers, drain=drain))
    return port, b


def new_clients_served(port, n):
    for i in range(n):
        H.echo_new(port, b'new client %d\n' % i)


@h.case(timeout=40)
def garbage_from_a_worker_cuts_it_off():
    port, b = start()
    w1, w2 = b.wait_workers(2)
    socks = H.open_echoing(port, 6)
    by = {s: b.holder_of(s) for s in socks}
    victim = w1
    others = [s for s in socks if by[s] != victim]
    check(others and len(others) < len(socks),
          'connections on both workers: %r' % list(by.values()))
    chans = H.steal_channels(victim)
    check(len(chans) == 1, 'worker %d has %d channels' % (victim, len(chans)))
    try:
        chans[0].send(GARBAGE[0])
    finally:
        chans[0].close()
    b.wait_log(r'worker \d+ \(pid %d\): bad message' % victim)
    b.wait_log(r'worker \d+ \(pid %d\): cut off' % victim)
    H.poll_until(lambda: not H.proc_alive(victim), 5,
                 'the cut-off worker %d to be gone' % victim)
    new = b.wait_workers(2, exclude=[victim])
    check(w2 in new, 'the other worker %d was replaced too: %r' % (w2, new))
    H.all_echo(others, 'after the cut')
    new_clients_served(port, 20)
    b.check_running()
    for s in socks:
        s.close()


@h.case(timeout=60)
def garbage_from_the_master_drains_that_worker():
    port, b = start(drain='20s')
    w1, w2 = b.wait_workers(2)
    socks = H.open_echoing(port, 6)
    holders = {b.holder_of(s) for s in socks}
    check(holders == {w1, w2}, 'connections on both workers: %r' % holders)
    chans = H.steal_channels(b.pid)
    check(len(chans) == 2, 'the master has %d channels' % len(chans))
    # Garbage to whichever worker sits behind the first; that worker names
    # itself in the log.
    try:
        chans[0].send(GARBAGE[1])
    finally:
        for c in chans:
            c.close()
    m = b.wait_log(r'baton\[(\d+)\] \w+: worker \d+: bad message from '
                   'master')
    victim = int(m.group(1))
    check(victim in (w1, w2), 'the log names pid %d, not a worker' % victim)
    other = w2 if victim == w1 else w1
    # It says so (CHAN_BYE) before it stops reading, so the master knows
    # at once, with no client needed to find out.
    b.wait_log(r'worker \d+ \(pid %d\) drains on its own' % victim)
    # It finishes what it has: its connections keep working ...
    H.all_echo(socks, 'after the garbage')
    # ... and every new client is served, by the other worker.
    new_clients_served(port, 20)
    check(H.proc_alive(victim), 'worker %d did not finish its connections '
          'first' % victim)
    mine = [s for s in socks if b.holder_of(s) == victim]
    check(mine, 'worker %d holds none of the connections' % victim)
    H.all_echo(socks, 'still')
    # Once its connections end it exits, and its slot is filled again.
    for s in mine:
        s.close()
    H.poll_until(lambda: not H.proc_alive(victim), 10,
                 'worker %d to exit once its connections ended' % victim)
    new = b.wait_workers(2, exclude=[victim])
    check(other in new, 'the other worker %d was replaced: %r' % (other, new))
    new_clients_served(port, 20)
    H.all_echo([s for s in socks if s not in mine], 'at the end')
    b.check_clean_exits()
    b.check_running()
    for s in socks:
        s.close()


@h.case(timeout=60)
def every_kind_of_garbage_from_the_master():
    # Each bad message, to a fresh worker each time: always the same end.
    port, b = start(workers=1, drain='2s')
    for i, junk in enumerate(GARBAGE):
        (w,) = b.wait_workers(1)
        held = H.open_echoing(port, 1)
        chans = H.steal_channels(b.pid)
        check(len(chans) == 1, 'the master has %d channels' % len(chans))
        try:
            chans[0].send(junk)
        finally:
            chans[0].close()
        b.wait_log(r'baton\[%d\] \w+: worker \d+: (bad|truncated) message '
                   'from master' % w)
        H.all_echo(held, 'garbage %d' % i)
        held[0].close()
        H.poll_until(lambda: not H.proc_alive(w), 10,
                     'worker %d to exit after garbage %d' % (w, i))
        # A client arriving meanwhile waits for the new worker, not lost.
        t0 = time.monotonic()
        new_clients_served(port, 3)
        b.wait_workers(1, exclude=[w])
        print('  garbage %d (%r...): worker %d drained and replaced; '
              'clients served after %.2fs' % (i, junk[:8], w,
                                              time.monotonic() - t0))
    b.check_running()


if __name__ == '__main__':
    sys.exit(h.run())
