#!/usr/bin/python3
"""test_upgrade.py -- SIGUSR2: the binary upgraded in place, under load.

baton runs from a copy of the binary under test; the test replaces that
file the way a package manager does (a new file renamed over the old)
and sends SIGUSR2. The master must keep its pid and its listening
sockets, start a new generation from the new file, let the old workers
drain, and lose no connection: neither new ones made all along nor
long-lived ones open across it. A file that fails its check (a program
that exits at once, one that is not a program, none at all) leaves the
old master serving as before.
"""

import os
import shutil
import signal
import socket
import sys
import threading
import time

sys.dont_write_bytecode = True  # the source tree may be read-only
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402
from harness import check  # noqa: E402

h = H.Harness('test_upgrade', file_timeout=120)


def installed():
    """A copy of the binary under test, in a directory of the case's."""
    d = h.path('bin')
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, 'baton')
    shutil.copy2(H.BATON, path)
    return path


def replace(path, data=None):
    """Put a new file at PATH as dpkg does: write aside, then rename."""
    tmp = path + '.new'
    if data is None:
        shutil.copy2(H.BATON, tmp)
    else:
        with open(tmp, 'wb') as f:
            f.write(data)
        os.chmod(tmp, 0o755)
    os.rename(tmp, path)


def start(handover=True):
    """An echo backend and baton run from installed(): (baton, the
    frontend's port, the stats port, the binary's path)."""
    be = h.start_backend('echo', name='echo')
    port, sport = H.free_port(), H.free_port()
    path = installed()
    text = H.config(port, ['s1 127.0.0.1:%d' % be.port], workers=2,
                    drain='20s', sport=sport,
                    extra_global='' if handover else 'handover = off')
    real = H.BATON
    H.BATON = path
    try:
        return h.start_baton(text), port, sport, path
    finally:
        H.BATON = real


class Prober(threading.Thread):
    """New connections one after another, each echo checked, until
    stopped; every failure is kept."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port = port
        self.ok = 0
        self.failures = []
        self.halt = threading.Event()

    def run(self):
        i = 0
        while not self.halt.is_set() and i < 100000:
            i += 1
            payload = b'probe %d\n' % i
            try:
                s = socket.create_connection((H.LOCALHOST, self.port),
                                             timeout=5)
                try:
                    s.sendall(payload)
                    got = H.recv_exact(s, len(payload), timeout=5)
                finally:
                    s.close()
                if got != payload:
                    self.failures.append('probe %d: got %r' % (i, got))
                else:
                    self.ok += 1
            except Exception as e:     # refused, reset, timeout: all count
                self.failures.append('probe %d: %r' % (i, e))
            time.sleep(0.002)

    def stop(self):
        self.halt.set()
        self.join(10)


def gen_workers(sport, gen):
    return [w for w in H.get_stats(sport)['workers']
            if w['generation'] == gen]


@h.case(timeout=90)
def upgrade_under_load_loses_nothing():
    # handover off: the long-lived connections stay in the old workers
    b, port, sport, path = start(handover=False)
    long_lived = H.open_echoing(port, 30, 'before')
    for i in range(20):
        H.echo_new(port, b'warm %d\n' % i)
    total0 = H.get_stats(sport)['connections']['total']
    prober = Prober(port)
    prober.start()
    try:
        H.poll_until(lambda: prober.ok >= 20, 10, 'probes before')
        replace(path)
        ino = os.stat(path).st_ino
        b.signal(signal.SIGUSR2)
        H.poll_until(lambda: len([w for w in gen_workers(sport, 2)
                                  if w['state'] == 'running']) == 2, 10,
                     'two running workers of generation 2')
        ok_at_upgrade = prober.ok
        H.poll_until(lambda: prober.ok >= ok_at_upgrade + 50, 10,
                     'probes after')
    finally:
        prober.stop()
    check(not prober.failures, '%d of %d new connections failed across '
          'the upgrade: %s' % (len(prober.failures), prober.ok +
                               len(prober.failures), prober.failures[:5]))
    check(b.alive() and b.pid == b.proc.pid, 'the master is gone')
    check(os.stat('/proc/%d/exe' % b.pid).st_ino == ino,
          'the master does not run the new file')
    st = H.get_stats(sport)
    check(st['pid'] == b.pid and st['generation'] == 2,
          'pid %r generation %r after the upgrade' % (st['pid'],
                                                      st['generation']))
    check(st['connections']['total'] >= total0 + prober.ok - 5,
          'totals not carried over: %d, was %d before'
          % (st['connections']['total'], total0))
    old = gen_workers(sport, 1)
    check(len(old) == 2 and all(w['state'] == 'draining' and w['version']
                                for w in old),
          'the old workers are not shown draining: %r' % old)
    # The long-lived connections live on in the old workers, which the
    # new image hears from over their channels.
    H.all_echo(long_lived, 'after')
    H.poll_until(lambda: sum(w['active'] for w in gen_workers(sport, 1))
                 == 30, 5, 'the old workers to report 30 open connections')
    # A second upgrade while they drain: they are carried over again.
    replace(path)
    b.signal(signal.SIGUSR2)
    H.poll_until(lambda: len([w for w in gen_workers(sport, 3)
                              if w['state'] == 'running']) == 2, 10,
                 'two running workers of generation 3')
    # (generation 2's workers, idle, may have finished already)
    check(len(gen_workers(sport, 1)) == 2, 'after two upgrades: %r'
          % H.get_stats(sport)['workers'])
    H.all_echo(long_lived, 'twice')
    H.poll_until(lambda: sum(w['active'] for w in gen_workers(sport, 1))
                 == 30, 5, 'the oldest workers heard from after two upgrades')
    for s in long_lived:
        s.close()
    H.poll_until(lambda: not gen_workers(sport, 1) and
                 not gen_workers(sport, 2), 10, 'the old workers to finish')
    H.echo_new(port, b'done\n')
    b.wait_log(r'worker \d \(pid \d+, generation 1, baton ')


@h.case(timeout=90)
def upgrade_hands_sessions_over():
    """With handover = on the new image asks the old binary's workers for
    their live sessions, as a reload does: they move, and the old workers
    exit at once. Twice in a row."""
    b, port, sport, path = start()
    long_lived = H.open_echoing(port, 30, 'before')
    H.poll_until(lambda: H.get_stats(sport)['connections']['active'] == 30,
                 5, '30 open connections in /stats')
    for gen in (2, 3):
        replace(path)
        b.signal(signal.SIGUSR2)
        t0 = time.monotonic()
        H.poll_until(lambda: [w['generation'] for w in
                              H.get_stats(sport)['workers']] == [gen, gen],
                     10, 'only the 2 workers of generation %d' % gen)
        gone = time.monotonic() - t0
        print('  upgrade to generation %d: the old workers gone after '
              '%.2fs' % (gen, gone))
        check(gone < 5, 'old workers stayed %.1fs' % gone)
        H.all_echo(long_lived, 'after %d' % gen)
        H.poll_until(lambda: sum(f['handed_over'] for f in H.get_stats(
            sport)['frontends']) == 30 * (gen - 1), 3,
            '%d sessions handed over' % (30 * (gen - 1)))
    for s in long_lived:
        s.close()
    H.poll_until(lambda: H.get_stats(sport)['connections']['active'] == 0,
                 5, 'every connection closed')


@h.case(timeout=60)
def failed_upgrades_keep_the_old_master():
    b, port, sport, path = start()
    workers = b.workers()
    fds = H.fd_count(b.pid)
    bad = [('a program that exits at once', b'#!/bin/sh\nexit 1\n'),
           ('not a program', b'\x7fELF garbage' + os.urandom(256)),
           ('a program that hangs', b'#!/bin/sh\nexec sleep 30\n'),
           ('no file at all', None)]
    for n, (what, data) in enumerate(bad, 1):
        if data is None:
            os.unlink(path)
        else:
            replace(path, data)
        b.signal(signal.SIGUSR2)
        # The master serves while the new file is checked (a hang too).
        t0 = time.monotonic()
        H.echo_new(port, b'during %d\n' % n)
        H.get_stats(sport, timeout=1.0)
        check(time.monotonic() - t0 < 1.0, 'the master stalled for %.1fs '
              'checking %s' % (time.monotonic() - t0, what))
        H.poll_until(lambda: b.log().count('upgrade failed') >= n, 10,
                     'the upgrade to %s to fail' % what)
        st = H.get_stats(sport)
        check(st['generation'] == 1 and b.workers() == workers,
              '%s: generation %d, workers %r (were %r)'
              % (what, st['generation'], b.workers(), workers))
        H.echo_new(port, b'still here %d\n' % n)
    check(H.fd_count(b.pid) <= fds + 1, 'descriptors %d, were %d'
          % (H.fd_count(b.pid), fds))
    # And a good file after all that still works.
    replace(path)
    b.signal(signal.SIGUSR2)
    H.poll_until(lambda: H.get_stats(sport, patient=True)['generation'] == 2,
                 10, 'generation 2')
    H.echo_new(port, b'upgraded\n')


if __name__ == '__main__':
    sys.exit(h.run())
