#!/usr/bin/python3
"""test_owner.py -- every accepted socket has exactly one owner (issue 9).

One regression test per finding of issue 9, each with the fault injected
from outside:

1. acknowledgements out of order after a re-dispatch: the master must not
   keep copies of sockets the worker took (the client would never see EOF);
2. an acknowledgement the worker could not send at once (its channel full)
   must still reach the master;
3. a reload that fails (a busy new listen port, a busy new [stats] port)
   must change nothing: every port keeps its frontend, backend and
   accept_proxy;
4. a second reload must not remove the SIGKILL backstop of a hung old
   worker that is still draining;
5. a worker sent SIGTERM on its own drains: the master must stop handing
   it sockets, or they are cut at drain_timeout;
6. the connections of a SIGKILLed worker must stay in the /stats totals.

The master's copies of accepted sockets are followed through /proc: its
descriptor count while waiting, and (to name them when a case fails) the
socket inode of each client's accepted end, which the master's copy and
the worker's share. Finding 2 needs root and Linux >= 5.6 for
pidfd_getfd(2); it is skipped otherwise.
"""

import ctypes
import os
import select
import signal
import socket
import struct
import sys
import time

sys.dont_write_bytecode = True  # the source tree may be read-only
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402
from harness import check  # noqa: E402

h = H.Harness('test_owner', file_timeout=150)

CHAN_READY = struct.pack('<HHI', 4, 0, 8)   # a valid, harmless message
KILL_GRACE_S = 5        # the master's SIGKILL comes this long past drain


# ------------------------------------------------------------- helpers

def start_echo(workers=2, drain='5s', stats=True):
    """An echo backend and baton in front of it: (port, sport, b)."""
    be = h.start_backend('echo', name='echo')
    port = H.free_port()
    sport = H.free_port() if stats else None
    b = h.start_baton(H.config(port, ['e0 127.0.0.1:%d' % be.port],
                               workers=workers, drain=drain, sport=sport))
    b.backend = be
    return port, sport, b


def wait_generation(sport, gen, timeout=5.0):
    H.poll_until(lambda: H.get_stats(sport)['generation'] >= gen, timeout,
                 '/stats generation %d' % gen)


def holder_by_fds(pids, before):
    """The one worker of PIDS whose descriptor count grew since BEFORE
    ({pid: count}): the one that took the connection just made. Cheaper
    than Baton.holder_of(), which reads the whole TCP table (slow on a
    machine with many sockets)."""
    grown = [p for p in pids if H.fd_count(p) > before[p]]
    return grown[0] if len(grown) == 1 else None


def accepted_inodes(b, socks):
    """[inode of baton's accepted end of each client in SOCKS] (None for a
    client not accepted yet, or closed)."""
    cports = [s.getsockname()[1] for s in socks]
    found = {}
    for r in H.tcp_table():
        if r['local_port'] in b.ports and r['remote_port'] in cports and \
                r['inode']:
            found[r['remote_port']] = r['inode']
    return [found.get(p) for p in cports]


def master_copies(b, socks):
    """Indices of the clients in SOCKS whose accepted socket the master
    holds (its copy, sent or not yet acknowledged)."""
    mine = H.socket_inodes(b.pid)
    return [i for i, ino in enumerate(accepted_inodes(b, socks))
            if ino and ino in mine]


def read_to_eof(sock, timeout):
    """What SOCK receives until its peer closes: (bytes, 'eof' | 'reset' |
    'timeout')."""
    deadline = time.monotonic() + timeout
    buf = bytearray()
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return bytes(buf), 'timeout'
        sock.settimeout(left)
        try:
            data = sock.recv(65536)
        except socket.timeout:
            return bytes(buf), 'timeout'
        except (ConnectionResetError, BrokenPipeError):
            return bytes(buf), 'reset'
        if not data:
            return bytes(buf), 'eof'
        buf += data


def exchange_and_half_close(socks, tag, timeout=5.0):
    """Each client sends its line and half-closes; the echo backend
    echoes and closes, so each must get exactly its line back, then EOF,
    all within TIMEOUT. Returns [(index, got, how)] of those that did not."""
    payloads = [b'%s %d: only these bytes\n' % (tag.encode(), i)
                for i in range(len(socks))]
    for s, p in zip(socks, payloads):
        s.sendall(p)
        s.shutdown(socket.SHUT_WR)
    deadline = time.monotonic() + timeout
    bad = []
    for i, (s, p) in enumerate(zip(socks, payloads)):
        got, how = read_to_eof(s, max(0.05, deadline - time.monotonic()))
        if got != p or how != 'eof':
            bad.append((i, got, how))
    return bad


def wait_fds(b, want, timeout, what):
    """Wait until the master has WANT open descriptors; fail naming them."""
    try:
        H.poll_until(lambda: H.fd_count(b.pid) == want, timeout, what)
    except H.Failure as e:
        raise H.Failure('%s (the master has %d descriptors, baseline %d)'
                        % (e, H.fd_count(b.pid), want))


def cont_all(pids):
    """SIGCONT every pid in PIDS still alive (cleanup of SIGSTOPs)."""
    for pid in pids:
        if H.proc_alive(pid):
            try:
                os.kill(pid, signal.SIGCONT)
            except OSError:
                pass


def close_all(socks):
    for s in socks:
        s.close()


# ------------------------------------------ 1. acks after a re-dispatch

@h.case(timeout=40)
def redispatched_sockets_acknowledged_and_released():
    # The master re-queues a dead worker's unacknowledged sockets (lower
    # ids) behind the newer ones still unacknowledged on the survivor;
    # the survivor acknowledges "up to the last id it read", which is not
    # the highest any more. The master must still drop every copy.
    port, _, b = start_echo(workers=2, stats=False)
    w1, w2 = b.wait_workers(2)
    stopped = []
    socks = []
    base = H.fd_count(b.pid)
    wfds = {p: H.fd_count(p) for p in (w1, w2)}
    try:
        warm = H.connect(port)
        socks.append(warm)
        H.echo_ok(warm, b'warm-up\n')
        survivor = H.poll_until(lambda: holder_by_fds((w1, w2), wfds), 3,
                                'a worker holding the warm-up connection')
        # Round-robin: the next socket goes to the other worker, then
        # they alternate. The survivor gets the newest one.
        victim = w2 if survivor == w1 else w1
        wait_fds(b, base, 3, 'the master to drop its copy of the warm-up '
                 'socket')
        for pid in (victim, survivor):
            os.kill(pid, signal.SIGSTOP)
            stopped.append(pid)
        clients = []
        for i in range(6):
            c = H.connect(port)
            socks.append(c)
            clients.append(c)
            # One socket per accept round, so they alternate strictly.
            H.poll_until(lambda: H.fd_count(b.pid) == base + i + 1
                         and H.proc_state(b.pid) == 'S', 5,
                         'the master to accept client %d and send it to a '
                         'stopped worker' % i)
        os.kill(victim, signal.SIGKILL)
        stopped.remove(victim)
        # Reaped, its sockets handed to the survivor, its slot refilled.
        b.wait_workers(2, timeout=10, exclude=[victim])
        os.kill(survivor, signal.SIGCONT)
        stopped.remove(survivor)
        bad = exchange_and_half_close(clients, 'client')
        copies = master_copies(b, clients) if bad else []
        check(not bad, '%d of 6 clients did not get exactly their bytes and '
              'then EOF within 5s of the backend closing: %s; the master '
              'still holds the copies of clients %r (%d descriptors, '
              'baseline %d)'
              % (len(bad), '; '.join('client %d: %s after %r' % (i, how, got)
                                     for i, got, how in bad),
                 copies, H.fd_count(b.pid), base))
        wait_fds(b, base, 3, 'the master\'s descriptors back to baseline')
        H.echo_ok(warm, b'warm-up still served\n')
        b.check_running()
    finally:
        cont_all(stopped)
        close_all(socks)


# ----------------------------------------- 2. an ack that could not go

@h.case(timeout=40)
def ack_resent_after_full_channel():
    # The worker takes a socket while its channel to the master is full:
    # its acknowledgement gets EAGAIN and must be sent again later.
    port, _, b = start_echo(workers=1, stats=False)
    (w,) = b.wait_workers(1)
    base = H.fd_count(b.pid)
    stopped = []
    stolen = None
    c = None
    try:
        os.kill(w, signal.SIGSTOP)
        stopped.append(w)
        c = H.connect(port)
        H.poll_until(lambda: H.fd_count(b.pid) == base + 1 and
                     H.proc_state(b.pid) == 'S', 5,
                     'the master to accept the client and send it to the '
                     'stopped worker')
        os.kill(b.pid, signal.SIGSTOP)
        stopped.append(b.pid)
        H.poll_until(lambda: H.proc_state(b.pid) == 'T', 3,
                     'the master to stop')
        chans = H.steal_channels(w)
        check(len(chans) == 1, 'worker %d has %d channels' % (w, len(chans)))
        stolen = chans[0]
        stolen.setblocking(False)
        # Fill the worker -> master direction with READY messages, which
        # the master ignores from a running worker.
        n = 0
        while n < 100000:
            try:
                stolen.send(CHAN_READY)
            except BlockingIOError:
                break
            n += 1
        check(0 < n < 100000, 'the channel took %d messages, want it full '
              'after a few' % n)
        print('  channel full after %d READY messages' % n)
        wbase = H.fd_count(w)
        os.kill(w, signal.SIGCONT)
        stopped.remove(w)
        # It read the socket (and tried to acknowledge it at once, in the
        # same wake-up), and waits again.
        H.poll_until(lambda: H.fd_count(w) > wbase and
                     H.proc_state(w) == 'S', 5,
                     'worker %d to take the socket and wait again' % w)
        os.kill(b.pid, signal.SIGCONT)
        stopped.remove(b.pid)
        bad = exchange_and_half_close([c], 'client')
        if bad:
            raise H.Failure('the client did not get exactly its bytes and '
                            'then EOF within 5s of the backend closing (%s '
                            'after %r); the master %s its copy (%d '
                            'descriptors, baseline %d)'
                            % (bad[0][2], bad[0][1],
                               'still holds' if master_copies(b, [c])
                               else 'does not hold', H.fd_count(b.pid), base))
        wait_fds(b, base, 3, 'the master\'s descriptors back to baseline')
        b.check_running()
        check(b.workers() == [w], 'worker %d was replaced: %r'
              % (w, b.workers()))
        H.echo_new(port, b'a new client\n')
    finally:
        cont_all(stopped)
        if stolen is not None:
            stolen.close()
        if c is not None:
            c.close()


# ------------------------------------------- 3. a failed reload changes nothing

V1_HEADER = b'PROXY TCP4 203.0.113.7 198.51.100.1 4242 80\r\n'


def multi_conf(sport, fronts, backends, workers=2):
    """FRONTS: [(name, port, backend, accept_proxy or None)], in file
    order; BACKENDS: [(name, port)], each with one server of its name."""
    lines = ['[global]', 'workers = %d' % workers, 'drain_timeout = 5s',
             'log_level = info', '',
             '[stats]', 'listen = 127.0.0.1:%d' % sport, '']
    for name, port, backend, accept in fronts:
        lines += ['[frontend %s]' % name, 'listen = 127.0.0.1:%d' % port,
                  'backend = %s' % backend, 'timeout_idle = 30s']
        if accept:
            lines.append('accept_proxy = %s' % accept)
        lines.append('')
    for name, port in backends:
        lines += ['[backend %s]' % name,
                  'server = %s 127.0.0.1:%d' % (name, port),
                  'connect_timeout = 1s', 'retries = 0', '']
    return '\n'.join(lines)


def serving_errors(fronts):
    """What is wrong with how each of FRONTS is served: its backend (the
    `name` backend says its name first), and accept_proxy: a port with it
    serves only behind a PROXY header, a port without it serves at once."""
    errs = []
    for name, port, backend, accept in fronts:
        what = 'port %d (frontend %s)' % (port, name)
        s = None
        try:
            s = H.connect(port, timeout=3)
            if accept:
                s.sendall(V1_HEADER + b'ping\n')
            line = H.recv_line(s, timeout=3).decode(errors='replace')
            if line.strip() != backend:
                errs.append('%s is served by %r, want %r'
                            % (what, line.strip(), backend))
                continue
            if accept:
                got = H.recv_exact(s, 5, timeout=3)
                check(got == b'ping\n', 'payload after the header: %r'
                      % got)
            else:
                H.echo_ok(s, b'ping\n', timeout=3)
        except (H.Failure, OSError) as e:
            errs.append('%s%s: %s' % (what, ' with a PROXY header'
                                      if accept else '', e))
            continue
        finally:
            if s is not None:
                s.close()
        if not accept:
            continue
        # Without a header it must reach no server.
        s = None
        try:
            s = H.connect(port, timeout=3)
            s.sendall(b'GET / HTTP/1.0\r\n\r\n')
            got, how = read_to_eof(s, 3)
            if got or how == 'timeout':
                errs.append('%s (accept_proxy = %s) without a PROXY '
                            'header: got %r, %s, want it closed unserved'
                            % (what, accept, got[:40],
                               'still open after 3s' if how == 'timeout'
                               else how))
        except OSError as e:
            errs.append('%s without a PROXY header: %s' % (what, e))
        finally:
            if s is not None:
                s.close()
    return errs


def failed_reload_case(cause):
    bes = {n: h.start_backend('name', name=n) for n in ('ba', 'bb', 'bc')}
    backends = [(n, bes[n].port) for n in ('ba', 'bb', 'bc')]
    sport = H.free_port()
    fronts = [('fa', H.free_port(), 'ba', 'v1'),
              ('fb', H.free_port(), 'bb', None),
              ('fc', H.free_port(), 'bc', None)]
    b = h.start_baton(multi_conf(sport, fronts, backends))
    errs = serving_errors(fronts)
    check(not errs, 'before the reload: %s' % '; '.join(errs))
    taken = socket.socket()
    try:
        taken.bind((H.LOCALHOST, 0))
        taken.listen(1)
        busy = taken.getsockname()[1]
        # The same frontends in another order, and the one thing that
        # cannot be had at the end of what is prepared.
        if cause == 'listen':
            new = [fronts[2], fronts[1], fronts[0],
                   ('fd', busy, 'bb', None)]
            text = multi_conf(sport, new, backends)
        else:
            # A new frontend first, so old ones get indexes beyond the
            # running configuration's frontends.
            new = [('fn', H.free_port(), 'bb', None), fronts[2], fronts[1],
                   fronts[0]]
            text = multi_conf(busy, new, backends)
        with open(b.config, 'w') as f:
            f.write(text)
        b.signal(signal.SIGHUP)
        H.poll_until(lambda: H.get_stats(sport)['reload_failures'] == 1, 5,
                     'reload_failures 1 after a reload whose %s port is '
                     'busy' % cause)
        st = H.get_stats(sport)
        check(st['generation'] == 1 and st['reloads'] == 0,
              'generation %r, reloads %r after a failed reload, want 1, 0'
              % (st['generation'], st['reloads']))
        errs = serving_errors(fronts)
        if not b.alive():
            errs.append('the master died (status %r)' % b.proc.poll())
        check(not errs, 'after the failed reload (busy %s port %d, '
              'frontends reordered): %s' % (cause, busy, '; '.join(errs)))
        check(any('cannot listen' in ln or str(busy) in ln
                  for ln in b.log().splitlines()),
              'the log does not say why the reload failed')
    finally:
        taken.close()
    # Once the port is free, the same file loads, and is served as written.
    b.signal(signal.SIGHUP)
    nsport = busy if cause == 'stats' else sport

    def reloaded():
        try:
            return H.get_stats(nsport)['generation'] == 2
        except OSError:
            return False
    H.poll_until(reloaded, 5, '/stats generation 2 on port %d once port %d '
                 'was free' % (nsport, busy))
    errs = serving_errors(new)
    check(not errs, 'after the reload once port %d was free: %s'
          % (busy, '; '.join(errs)))
    b.check_running()


@h.case(timeout=50)
def failed_reload_busy_listen_changes_nothing():
    failed_reload_case('listen')


@h.case(timeout=50)
def failed_reload_busy_stats_changes_nothing():
    failed_reload_case('stats')


# ------------------------------------------- 4. the drain backstop

@h.case(timeout=40)
def second_reload_keeps_drain_backstop():
    drain = 1
    port, sport, b = start_echo(workers=1, drain='%ds' % drain)
    (w,) = b.wait_workers(1)
    c = H.connect(port)
    stopped = []
    try:
        H.echo_ok(c, b'before\n')
        # Hung: it can never finish its drain nor exit on its own.
        os.kill(w, signal.SIGSTOP)
        stopped.append(w)
        b.signal(signal.SIGHUP)
        wait_generation(sport, 2)
        b.signal(signal.SIGHUP)
        wait_generation(sport, 3)
        t1 = time.monotonic()
        limit = drain + KILL_GRACE_S + 4
        try:
            H.poll_until(lambda: not H.proc_alive(w), limit,
                         'the master to SIGKILL old worker %d' % w)
        except H.Failure:
            raise H.Failure('old worker %d, hung while draining since the '
                            'first of two reloads, still alive %.1fs after '
                            'the second (drain_timeout %ds + %ds grace): no '
                            'backstop killed it'
                            % (w, time.monotonic() - t1, drain, KILL_GRACE_S))
        print('  hung old worker killed %.1fs after the second reload'
              % (time.monotonic() - t1))
        how, _ = H.wait_closed(c, 3)
        check(how in ('eof', 'reset'), 'its connection still open: %s' % how)
        b.check_running()
        H.echo_new(port, b'new client\n')
    finally:
        cont_all(stopped)
        c.close()


# ------------------------------------------- 5. SIGTERM to one worker

@h.case(timeout=40)
def sigterm_to_one_worker_loses_no_new_connection():
    drain = 3
    port, sport, b = start_echo(workers=2, drain='%ds' % drain)
    ws = b.wait_workers(2)
    wfds = {p: H.fd_count(p) for p in ws}
    held = H.connect(port)
    conns = []
    try:
        H.echo_ok(held, b'keeps it draining\n')
        x = H.poll_until(lambda: holder_by_fds(ws, wfds), 3,
                         'a worker holding the connection')
        os.kill(x, signal.SIGTERM)
        # A fixed master knows soon (CHAN_BYE); not waited for long, as
        # the old one never does.
        try:
            H.poll_until(lambda: [w for w in H.get_stats(sport)['workers']
                                  if w['pid'] == x and
                                  w['state'] == 'draining'], 1.0,
                         'worker %d listed as draining' % x)
        except H.Failure as e:
            print('  note: %s' % e)
        for i in range(10):
            c = H.connect(port)
            conns.append(c)
            H.echo_ok(c, b'new %d\n' % i)
        # Its drain_timeout passes, it closes what it has and exits.
        H.poll_until(lambda: not H.proc_alive(x), drain + KILL_GRACE_S,
                     'worker %d to exit at its drain_timeout' % x)
        bad = []
        for i, c in enumerate(conns):
            try:
                H.echo_ok(c, b'still here %d\n' % i, timeout=3)
            except (H.Failure, OSError) as e:
                bad.append('%d (%s)' % (i, e))
        check(not bad, '%d of 10 connections opened after SIGTERM to worker '
              '%d were cut when it drained: %s'
              % (len(bad), x, ', '.join(bad)))
        b.check_running()
        b.wait_workers(2, timeout=10, exclude=[x])
    finally:
        close_all(conns)
        held.close()


# ------------------------------------------- 6. totals survive SIGKILL

def open_batch(port, n, tag, made):
    """N clients, each echoed once (so a worker took it and counted it);
    left open."""
    socks = []
    for i in range(n):
        s = H.connect(port)
        made[0] += 1
        socks.append(s)
        s.sendall(b'%s %d\n' % (tag.encode(), i))
    for i, s in enumerate(socks):
        got = H.recv_exact(s, len(b'%s %d\n' % (tag.encode(), i)))
        check(got == b'%s %d\n' % (tag.encode(), i), 'echo %r' % got)
    return socks


@h.case(timeout=60)
def totals_count_killed_workers_connections():
    port, sport, b = start_echo(workers=2, drain='5s')
    made = [0]
    killed = 0
    # Batch 1: both workers killed as soon as they served their
    # connections, before their next stats report (250 ms at most).
    old = b.workers()
    t0 = time.monotonic()
    socks = open_batch(port, 40, 'one', made)
    killed += len(socks)
    for pid in old:
        os.kill(pid, signal.SIGKILL)
    print('  40 connections, then kill -9 of both workers, in %.0f ms'
          % ((time.monotonic() - t0) * 1000))
    b.wait_workers(2, timeout=10, exclude=old)
    close_all(socks)
    # Batch 2: a reload in the middle, then every worker killed, those
    # of the old generation (draining) and of the new one.
    socks = open_batch(port, 25, 'two', made)
    b.signal(signal.SIGHUP)
    wait_generation(sport, 2)
    socks += open_batch(port, 25, 'two more', made)
    killed += len(socks)
    victims = b.workers()
    for pid in victims:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass    # an old worker that handed its sessions over and left
    close_all(socks)
    b.wait_workers(2, timeout=10, exclude=victims)
    # Batch 3: plain connections that finish normally.
    for i in range(60):
        H.echo_new(port, b'three %d\n' % i)
        made[0] += 1
    check(made[0] == 150, 'clients made %d connections' % made[0])
    seen = []

    def exact():
        st = H.get_stats(sport)
        fe = [f['total'] for f in st['frontends'] if f['name'] == 'web']
        seen.append((fe, st['connections']['total']))
        return fe == [made[0]] and st['connections']['total'] == made[0]
    try:
        H.poll_until(exact, 5, 'the totals')
    except H.Failure:
        fe, total = seen[-1]
        raise H.Failure('clients made %d connections (%d of them on workers '
                        'killed with -9); 5s after the last one /stats says '
                        'frontend web total %r, connections.total %r'
                        % (made[0], killed, fe[0] if fe else None, total))
    b.check_running()


# ------------------------------- 7. last acks past ECONNRESET

CHAN_DRAIN = struct.pack('<HHI', 3, 0, 8)   # valid; never read here
PTRACE_DETACH = 17
PTRACE_SYSCALL = 24
PTRACE_SEIZE = 0x4206
PTRACE_INTERRUPT = 0x4207
PTRACE_O_TRACESYSGOOD = 1
WALL = 0x40000000       # __WALL
SYS_WAIT4 = {'x86_64': 61, 'aarch64': 260}


class ParkedMaster:
    """The master held by ptrace(2) on entry to its next wait4(2): it has
    taken a SIGCHLD and is about to reap, and runs nothing else until
    release(). While it is traced, nothing may wait for it (Popen.poll,
    Baton.check_running): that would take the tracer's stop reports."""

    def __init__(self, pid, timeout=10.0):
        self.pid = pid
        self.attached = False
        nr = SYS_WAIT4.get(os.uname().machine)
        if nr is None:
            raise H.Skip('no wait4 number for %s' % os.uname().machine)
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.libc.ptrace.restype = ctypes.c_long
        self.libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_int,
                                     ctypes.c_void_p, ctypes.c_void_p]
        if self._ptrace(PTRACE_SEIZE, 0, PTRACE_O_TRACESYSGOOD) == -1:
            e = ctypes.get_errno()
            raise H.Skip('ptrace(PTRACE_SEIZE): %s' % os.strerror(e))
        self.attached = True
        check(self._ptrace(PTRACE_INTERRUPT) != -1, 'PTRACE_INTERRUPT: %s'
              % os.strerror(ctypes.get_errno()))
        deadline = time.monotonic() + timeout
        self._wait(deadline)                    # the interrupt's stop
        # A SIGCHLD of ours: the master reaps and finds nobody (yet).
        os.kill(pid, signal.SIGCHLD)
        inject = 0
        while True:
            check(self._ptrace(PTRACE_SYSCALL, 0, inject) != -1,
                  'PTRACE_SYSCALL: %s' % os.strerror(ctypes.get_errno()))
            status = self._wait(deadline)
            sig, inject = os.WSTOPSIG(status), 0
            if sig == signal.SIGTRAP | 0x80:
                # A syscall stop. The master sat in epoll_wait, so the
                # first wait4 seen is an entry: the reaping not done yet.
                with open('/proc/%d/syscall' % pid) as f:
                    if f.read().split()[0] == str(nr):
                        return
            elif sig != signal.SIGTRAP:
                inject = sig            # a signal-delivery stop: pass it on

    def _ptrace(self, req, addr=0, data=0):
        return self.libc.ptrace(req, self.pid, addr, data)

    def _wait(self, deadline):
        while True:
            pid, status = os.waitpid(self.pid, os.WNOHANG | WALL)
            if pid == self.pid:
                check(os.WIFSTOPPED(status), 'the traced master ended '
                      '(wait status %#x)' % status)
                return status
            if time.monotonic() > deadline:
                raise H.Failure('the master did not reach wait4 under '
                                'ptrace')
            time.sleep(0.005)

    def release(self):
        """Let it go on: the wait4 it stopped at runs now."""
        if not self.attached:
            return
        if self._ptrace(PTRACE_DETACH) == -1:
            # Running between two stops: stop it first.
            self._ptrace(PTRACE_INTERRUPT)
            try:
                self._wait(time.monotonic() + 5)
            except H.Failure:
                pass
            self._ptrace(PTRACE_DETACH)
        self.attached = False


def accept_one(lst, timeout, what):
    """The next connection to the listening socket LST (the backend)."""
    lst.settimeout(timeout)
    try:
        conn, _ = lst.accept()
    except socket.timeout:
        raise H.Failure('timed out after %.1fs waiting for %s'
                        % (timeout, what))
    conn.settimeout(5)
    return conn


@h.case(timeout=60)
def last_acks_read_after_econnreset():
    # A worker that dies with a message of the master's unread leaves
    # ECONNRESET on the master's end, once; the acknowledgements it sent
    # before dying are still there behind it. The master must read them:
    # a socket the worker took, and read from, must not go to a new
    # worker, which would connect to a server again and carry on the
    # client's stream there.
    #
    # The reaping must come first: when the master's loop sees the
    # channel ready, its channel callback takes the ECONNRESET and the
    # reaping reads the rest anyway. So the master is held (ptrace) where
    # it is about to reap, after a SIGCHLD and before the worker acked and
    # died, as when the worker dies just while a SIGCHLD is being handled.
    # The backend is a socket of the test: it sees each connection baton
    # makes to it.
    lst = socket.socket()
    lst.bind((H.LOCALHOST, 0))
    lst.listen(16)
    port, sport = H.free_port(), H.free_port()
    stopped = []
    socks = [lst]
    parked = None
    try:
        b = h.start_baton(H.config(port, ['s0 127.0.0.1:%d'
                                          % lst.getsockname()[1]],
                                   workers=1, sport=sport))
        (w,) = b.wait_workers(1)
        base = H.fd_count(b.pid)
        check(H.get_stats(sport)['redispatched'] == 0, 'redispatched not 0 '
              'at start')
        wait_fds(b, base, 5, 'the master to close the /stats connection')
        os.kill(w, signal.SIGSTOP)
        stopped.append(w)
        H.poll_until(lambda: H.proc_state(w) == 'T', 5, 'worker %d to stop'
                     % w)
        c = H.connect(port)
        socks.append(c)
        H.poll_until(lambda: H.fd_count(b.pid) == base + 1 and
                     H.proc_state(b.pid) == 'S', 10,
                     'the master to accept the client and send it to the '
                     'stopped worker')
        parked = ParkedMaster(b.pid)
        # The worker takes the socket, acknowledges it (into the held
        # master's queue) before reading from it, and relays.
        os.kill(w, signal.SIGCONT)
        stopped.remove(w)
        first = accept_one(lst, 10, 'worker %d to connect to the backend '
                           'while the master is held' % w)
        socks.append(first)
        line = b'before the kill\n'
        c.sendall(line)
        got = H.recv_exact(first, len(line), timeout=10)
        check(got == line, 'the backend got %r, want %r' % (got, line))
        first.sendall(line)
        got = H.recv_exact(c, len(line), timeout=10)
        check(got == line, 'the client got %r back, want %r' % (got, line))
        os.kill(w, signal.SIGSTOP)
        stopped.append(w)
        H.poll_until(lambda: H.proc_state(w) == 'T', 5, 'worker %d to stop'
                     % w)
        # A message the worker will never read, sent on a copy of the
        # master's end of the channel.
        chans = H.steal_channels(b.pid)
        try:
            check(len(chans) == 1, 'the master has %d channels, want 1'
                  % len(chans))
            chans[0].send(CHAN_DRAIN)
        finally:
            close_all(chans)
        os.kill(w, signal.SIGKILL)
        stopped.remove(w)
        # Dead, its descriptors closed; the held master cannot reap it.
        H.poll_until(lambda: H.proc_state(w) in ('Z', None), 5,
                     'worker %d to die' % w)
        parked.release()
        # Its slot is filled again once it is reaped and what it did not
        # take is handed out: from then on nothing more is.
        b.wait_workers(1, timeout=15, exclude=[w])
        redispatched = H.get_stats(sport)['redispatched']
        # A second line: nobody may carry it to a server again.
        after = b'after the kill\n'
        try:
            c.sendall(after)
        except OSError as e:
            print('  note: the client could not send after the kill: %s' % e)
        echoed = bytearray()
        how = 'timeout'
        extra = []          # later connections to the backend
        relayed = bytearray()
        deadline = time.monotonic() + 10
        while how == 'timeout':
            left = deadline - time.monotonic()
            if left <= 0:
                break
            ready, _, _ = select.select([c, lst] + extra, [], [], left)
            for s in ready:
                if s is lst:
                    conn, _ = lst.accept()
                    socks.append(conn)
                    extra.append(conn)
                    continue
                try:
                    data = s.recv(65536)
                except (ConnectionResetError, BrokenPipeError):
                    data, reset = b'', True
                else:
                    reset = False
                if s is c:
                    if data:
                        echoed += data
                    else:
                        how = 'reset' if reset else 'eof'
                elif data:
                    relayed += data
                    s.sendall(data)         # the backend echoes
                else:
                    extra.remove(s)
        if not extra:
            # One late enough to miss the loop.
            ready, _, _ = select.select([lst], [], [], 1.0)
            if ready:
                conn, _ = lst.accept()
                socks.append(conn)
                extra.append(conn)
        errs = []
        if redispatched != 0:
            errs.append('/stats redispatched %d, want 0: the master handed '
                        'the dead worker\'s socket, which it had '
                        'acknowledged and read from, to a new worker'
                        % redispatched)
        if extra:
            errs.append('%d more connection(s) to the backend after the '
                        'worker died (it got %r): the client\'s stream went '
                        'on there' % (len(extra), bytes(relayed)))
        if echoed:
            errs.append('the client got %r after the kill' % bytes(echoed))
        if how == 'timeout':
            errs.append('the client\'s connection still open 10s after the '
                        'kill')
        check(not errs, '; '.join(errs))
        print('  client connection ended (%s), no second backend '
              'connection, redispatched 0' % how)
        wait_fds(b, base, 10, 'the master\'s descriptors back to baseline')
        b.check_running()
    finally:
        if parked is not None:
            parked.release()
        cont_all(stopped)
        close_all(socks)


if __name__ == '__main__':
    sys.exit(h.run())
