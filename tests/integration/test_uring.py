#!/usr/bin/python3
"""test_uring.py -- the master's accept path on io_uring (issue 11): the
default where the kernel allows it, epoll when told or when io_uring is
forbidden (a seccomp filter, as container runtimes install), a clear
refusal when it is required and missing, and the ring's deferred closes
leaking nothing, also across reloads that add and remove listeners."""

import ctypes
import os
import signal
import struct
import sys
import threading

sys.dont_write_bytecode = True  # the source tree may be read-only
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402
from harness import check  # noqa: E402

h = H.Harness('test_uring', file_timeout=150)

NR_IO_URING_SETUP = 425     # the same on every architecture's table


def forbid_io_uring():
    """In the child before exec: io_uring_setup fails with EPERM, as under
    Docker's default seccomp profile."""
    libc = ctypes.CDLL(None, use_errno=True)
    ld_nr, jeq, ret = 0x20, 0x15, 0x06      # BPF_LD|W|ABS, JMP|JEQ|K, RET
    prog = [(ld_nr, 0, 0, 0),                # A = seccomp_data.nr
            (jeq, 0, 1, NR_IO_URING_SETUP),
            (ret, 0, 0, 0x00050000 | 1),     # SECCOMP_RET_ERRNO | EPERM
            (ret, 0, 0, 0x7fff0000)]         # SECCOMP_RET_ALLOW
    raw = ctypes.create_string_buffer(
        b''.join(struct.pack('HBBI', *i) for i in prog))

    class Fprog(ctypes.Structure):
        _fields_ = [('len', ctypes.c_ushort), ('filter', ctypes.c_void_p)]

    fprog = Fprog(len(prog), ctypes.cast(raw, ctypes.c_void_p))
    if libc.prctl(38, 1, 0, 0, 0) != 0:      # PR_SET_NO_NEW_PRIVS
        os._exit(111)
    if libc.prctl(22, 2, ctypes.byref(fprog), 0, 0) != 0:  # SECCOMP filter
        os._exit(112)


def start(extra_global='', preexec_fn=None):
    e = h.start_backend('echo')
    port, sport = H.free_port(), H.free_port()
    b = h.start_baton(H.config(port, ['e 127.0.0.1:%d' % e.port],
                               extra_global=extra_global, sport=sport),
                      preexec_fn=preexec_fn)
    return port, sport, b


def serve(port, n, tag):
    """N clients one after the other, each echoed its own bytes."""
    for i in range(n):
        H.echo_new(port, b'%s-%d-' % (tag.encode(), i) + os.urandom(64))


def settled_fds(b, limit, what):
    """Wait until the master holds at most LIMIT descriptors."""
    H.poll_until(lambda: 0 <= H.fd_count(b.pid) <= limit, 5,
                 '%s: master descriptors back to %d (now %d)'
                 % (what, limit, H.fd_count(b.pid)))


@h.case(timeout=60)
def ring_is_the_default_and_leaks_nothing():
    port, sport, b = start()
    b.wait_log(r'accepting with io_uring')
    check(H.get_stats(sport)['accept_with'] == 'io_uring',
          'stats: %r' % H.get_stats(sport).get('accept_with'))
    serve(port, 20, 'warm')
    base = H.fd_count(b.pid)
    # Four clients at once, 400 connections: every copy the master
    # kept until acknowledged is closed through the ring.
    errors = []

    def client(k):
        try:
            serve(port, 100, 'c%d' % k)
        except Exception as e:      # noqa: BLE001 -- reported below
            errors.append(repr(e))
    threads = [threading.Thread(target=client, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(40)
    check(not errors, 'clients failed: %r' % errors[:3])
    settled_fds(b, base, 'after 400 connections')
    st = H.get_stats(sport)
    check(st['connections']['total'] >= 420,
          'total %r' % st['connections']['total'])


@h.case(timeout=40)
def off_accepts_with_epoll():
    port, sport, b = start('io_uring = off')
    b.wait_log(r'accepting with epoll \(io_uring = off\)')
    check(H.get_stats(sport)['accept_with'] == 'epoll', 'not epoll')
    serve(port, 50, 'off')
    check('accepting with io_uring' not in b.log(), 'the ring was set up')


@h.case(timeout=40)
def forbidden_io_uring_falls_back_to_epoll():
    port, sport, b = start(preexec_fn=forbid_io_uring)
    b.wait_log(r'notice: accepting with epoll: io_uring cannot be used '
               r'\(io_uring_setup: Operation not permitted\)')
    check(H.get_stats(sport)['accept_with'] == 'epoll', 'not epoll')
    serve(port, 50, 'seccomp')


@h.case(timeout=40)
def required_io_uring_missing_refuses_to_start():
    e = h.start_backend('echo')
    port = H.free_port()
    b = h.start_baton(H.config(port, ['e 127.0.0.1:%d' % e.port],
                               extra_global='io_uring = on'),
                      preexec_fn=forbid_io_uring, wait=False)
    rc = b.wait_exit(15)
    check(rc == 2, 'exit status %r, want 2 (cannot start):\n%s' % (rc, b.log_tail()))
    check('io_uring = on, but io_uring cannot be used' in b.log() and
          b.config in b.log(), 'no clear message:\n%s' % b.log_tail())
    check(H.try_connect(port, 1.0) == 'refused', 'something listens')


@h.case(timeout=60)
def reloads_move_listeners_on_the_ring():
    e = h.start_backend('echo')
    a, c, sport = H.free_port(), H.free_port(), H.free_port()
    srv = ['e 127.0.0.1:%d' % e.port]
    b = h.start_baton(H.config(a, srv, sport=sport))
    b.wait_log(r'accepting with io_uring')
    serve(a, 10, 'a')
    base = H.fd_count(b.pid)
    stop = threading.Event()
    errors = []

    def client():               # on the kept port all along
        i = 0
        while not stop.is_set() and i < 2000:
            try:
                H.echo_new(a, b'kept-%d' % i)
            except Exception as ex:     # noqa: BLE001
                errors.append(repr(ex))
                return
            i += 1
    t = threading.Thread(target=client)
    t.start()
    try:
        # A second frontend on c, then io_uring = off in the file (taken
        # at the next start only), then c removed again.
        two = H.config(a, srv, sport=sport) + (
            '\n[frontend other]\nlisten = 127.0.0.1:%d\nbackend = app\n' % c)
        h.write_file('proxy.ini', two)
        b.signal(signal.SIGHUP)
        b.wait_log(r'frontend other listening on')
        H.poll_until(lambda: H.try_connect(c, 1.0) == 'ok', 5, 'port c')
        serve(c, 20, 'c')
        h.write_file('proxy.ini', H.config(a, srv, sport=sport,
                                           extra_global='io_uring = off'))
        b.signal(signal.SIGHUP)
        b.wait_log(r'io_uring = off: takes effect at the next start')
        H.poll_until(lambda: H.try_connect(c, 1.0) == 'refused', 5,
                     'port c closed')
    finally:
        stop.set()
        t.join(20)
    check(not errors, 'the kept port failed a client: %r' % errors[:3])
    check(H.get_stats(sport)['accept_with'] == 'io_uring', 'path changed')
    serve(a, 20, 'after')
    settled_fds(b, base, 'after the reloads')


if __name__ == '__main__':
    sys.exit(h.run())
