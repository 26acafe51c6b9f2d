#!/usr/bin/python3
"""test_worker.py -- the worker's side of the socket hand-off.

A socket is a worker's only once its acknowledgement reached the master
(sockets are numbered per channel, 1, 2, 3..., and one out of that order
is garbage):
a full channel delays the acknowledgement (and the session) but never
loses it. A worker that stops on its own (SIGTERM) says bye after its last
acknowledgement, gets no new socket, finishes its connections, and closes
unread whatever still reaches it, so that no client's socket stays open
there.

Some cases reach into a live channel with pidfd_getfd(2) (root, Linux >=
5.6): to fill a worker's end until EAGAIN, or to send a worker a socket
the master did not.
"""

import os
import signal
import socket
import struct
import sys
import time

sys.dont_write_bytecode = True  # the source tree may be read-only
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402
from harness import check  # noqa: E402

h = H.Harness('test_worker', file_timeout=150)

CHAN_CONN, CHAN_READY = 1, 4


def seqpacket_of(pid):
    """A copy of PID's one channel (H.steal_channels)."""
    chans = H.steal_channels(pid)
    check(len(chans) == 1, 'pid %d has %d channels' % (pid, len(chans)))
    return chans[0]


def conn_message(sid, port):
    """A CHAN_CONN message: one socket, id SID, from 127.0.0.1:PORT."""
    rec = struct.pack('<QIBBH16s', sid, 0, socket.AF_INET, 0,
                      socket.htons(port), socket.inet_aton('127.0.0.1'))
    return struct.pack('<HHI', CHAN_CONN, 1, 8 + len(rec)) + rec


def smuggle_socket(chan, sid):
    """Send one end of a new socketpair over CHAN as socket SID; return
    the other end, which sees EOF once every copy of the sent end is
    closed."""
    mine, theirs = socket.socketpair()
    try:
        chan.sendmsg([conn_message(sid, 4242)],
                     [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                       struct.pack('i', theirs.fileno()))])
    finally:
        theirs.close()
    return mine


def start(workers, drain='20s'):
    be = h.start_backend('echo', name='echo')
    port = H.free_port()
    b = h.start_baton(H.config(port, ['s1 127.0.0.1:%d' % be.port],
                               workers=workers, drain=drain))
    return port, b, be


def said_bye(b, pid):
    """The master read CHAN_BYE from worker PID."""
    b.wait_log(r'worker \d+ \(pid %d\) drains on its own' % pid)


def backend_conns(pid, backend_port):
    """How many connections to BACKEND_PORT process PID holds."""
    mine = H.socket_inodes(pid)
    return sum(1 for r in H.tcp_table()
               if r['remote_port'] == backend_port and r['inode'] in mine
               and r['state'] == H.TCP_ESTABLISHED)


def accepted_held_by(pid, port):
    """Accepted client sockets of frontend PORT that PID holds."""
    mine = H.socket_inodes(pid)
    return [r for r in H.tcp_table()
            if r['local_port'] == port and r['inode'] in mine
            and r['state'] == H.TCP_ESTABLISHED]


def ends_cleanly(s):
    """Half-close S after an echo: baton must then close it for real."""
    H.echo_ok(s, b'last words\n')
    s.shutdown(socket.SHUT_WR)
    how, dt = H.wait_closed(s, 5.0)
    check(how == 'eof', 'connection ended by %s after %.1fs, not EOF'
          % (how, dt))


@h.case(timeout=60)
def an_acknowledgement_that_waits_is_not_lost():
    port, b, be = start(workers=1)
    (w,) = b.wait_workers(1)
    os.kill(w, signal.SIGSTOP)
    stopped = [w]
    try:
        # Sockets queue in the stopped worker's channel ...
        socks = [H.connect(port) for _ in range(5)]
        H.poll_until(lambda: len(accepted_held_by(b.pid, port)) == 5, 5,
                     'the master to accept 5 clients')
        time.sleep(0.3)
        os.kill(b.pid, signal.SIGSTOP)
        stopped.append(b.pid)
        # ... and its way back to the master is full.
        chan = seqpacket_of(w)
        chan.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1)
        filler = 0
        try:
            while filler < 100000:
                chan.send(struct.pack('<HHI', CHAN_READY, 0, 8),
                          socket.MSG_DONTWAIT)
                filler += 1
        except BlockingIOError:
            pass
        finally:
            chan.close()
        os.kill(w, signal.SIGCONT)
        stopped.remove(w)
        time.sleep(0.5)
        # Received, not acknowledged: so not the worker's to run yet.
        check(backend_conns(w, be.port) == 0,
              'the worker connected to the server before its '
              'acknowledgement reached the master')
    finally:
        for pid in stopped:
            os.kill(pid, signal.SIGCONT)
    print('  channel filled with %d messages' % filler)
    # The acknowledgement goes out once the master reads again: every
    # copy the master kept is closed, so each client sees its end.
    for s in socks:
        ends_cleanly(s)
    check(not accepted_held_by(b.pid, port),
          'the master still holds accepted sockets')
    for s in socks:
        s.close()
    b.check_running()


@h.case(timeout=60)
def sigterm_to_a_worker_says_bye_and_it_gets_no_more():
    port, b, be = start(workers=2, drain='6s')
    w1, w2 = b.wait_workers(2)
    old = H.open_echoing(port, 6)
    mine = [s for s in old if b.holder_of(s) == w1]
    check(mine and len(mine) < len(old), 'connections on both workers')
    os.kill(w1, signal.SIGTERM)
    t0 = time.monotonic()
    said_bye(b, w1)
    # Its own connections go on (until its drain timeout) ...
    H.all_echo(old, 'old after bye')
    # ... new clients go elsewhere, and outlive the drain timeout of w1.
    new = H.open_echoing(port, 10, 'new')
    holders = {b.holder_of(s) for s in new}
    check(w1 not in holders, 'the worker that said bye got new sockets')
    for s in mine:
        s.close()
    H.poll_until(lambda: not H.proc_alive(w1), 10,
                 'worker %d to exit once its connections ended' % w1)
    b.wait_workers(2, exclude=[w1])
    time.sleep(max(0, 6.5 - (time.monotonic() - t0)))
    H.all_echo(new, 'past the drain timeout')
    H.all_echo([s for s in old if s not in mine] + new, 'at the end')
    b.check_clean_exits()
    for s in old + new:
        s.close()


@h.case(timeout=40)
def sigterm_to_an_idle_worker_ends_it_at_once():
    port, b, be = start(workers=2, drain='30s')
    w1, w2 = b.wait_workers(2)
    t0 = time.monotonic()
    os.kill(w1, signal.SIGTERM)
    H.poll_until(lambda: not H.proc_alive(w1), 5,
                 'the idle worker %d to exit' % w1)
    print('  idle worker gone %.2fs after SIGTERM' % (time.monotonic() - t0))
    b.wait_workers(2, exclude=[w1])
    for s in H.open_echoing(port, 10):
        s.close()
    b.check_clean_exits()


def smuggled_socket_is_closed(b, w, be, sid, what, chan=None):
    """Send worker W (the master's one channel, or CHAN, a copy of W's
    taken earlier) a socket numbered SID that the master does not know
    of: W must close it unread, and run no session for it (it keeps its
    one connection to the server)."""
    if chan is None:
        chan = seqpacket_of(b.pid)
    try:
        peer = smuggle_socket(chan, sid)
    finally:
        chan.close()
    how, dt = H.wait_closed(peer, 3.0)
    peer.close()
    check(how == 'eof', 'the socket %s was not closed (%s)' % (what, how))
    # /proc/net/tcp read while it changes may miss a row, never add one:
    # a session for the socket would show as a second connection.
    counts = [backend_conns(w, be.port) for _ in range(3)]
    check(max(counts) == 1,
          'the worker ran a session for the socket %s (connections to '
          'the server: %r)' % (what, counts))


def held_ends_then_worker_exits(b, w, held, tag):
    """W's one connection HELD still works; once closed, W exits."""
    H.all_echo(held, tag)
    held[0].close()
    H.poll_until(lambda: not H.proc_alive(w), 10,
                 'worker %d to exit once its connection ended' % w)


@h.case(timeout=40)
def a_worker_that_said_bye_closes_what_still_reaches_it():
    port, b, be = start(workers=1)
    (w,) = b.wait_workers(1)
    held = H.open_echoing(port, 1)
    # Its channel, taken now: once it says bye, the master starts its
    # replacement at once and has two.
    chan = seqpacket_of(b.pid)
    os.kill(w, signal.SIGTERM)
    said_bye(b, w)
    # A socket that reaches it now (as one sent before the bye would) is
    # closed unread: the master still has its copy to hand on.
    smuggled_socket_is_closed(b, w, be, 1 << 40, 'sent after bye', chan)
    held_ends_then_worker_exits(b, w, held, 'after the bye')
    b.wait_workers(1, exclude=[w])
    for s in H.open_echoing(port, 5, 'then'):
        s.close()
    b.check_clean_exits()


@h.case(timeout=40)
def a_socket_out_of_order_is_garbage():
    # The master numbers the sockets of a channel 1, 2, 3...: a record
    # out of that order means the worker cannot trust its channel.
    port, b, be = start(workers=1)
    (w,) = b.wait_workers(1)
    held = H.open_echoing(port, 1)
    smuggled_socket_is_closed(b, w, be, 1 << 40, 'out of order')
    b.wait_log(r'baton\[%d\] \w+: worker \d+: bad message from master: '
               r'socket %d where \d+ was due' % (w, 1 << 40))
    said_bye(b, w)
    held_ends_then_worker_exits(b, w, held, 'after the garbage')

if __name__ == '__main__':
    sys.exit(h.run())
