#!/usr/bin/python3
"""test_localerr.py -- a local shortage is not the server's fault.

When baton itself cannot make a connection (its descriptor table is full,
or it is out of buffers or local ports), the server has done nothing
wrong: the failure is the frontend's error, logged, not retried against
another server, and neither passive nor active health checks count it.
The shortage is made with prlimit(2) on a running worker or master: a
soft RLIMIT_NOFILE below the descriptors it needs next.
"""

import os
import resource
import sys

sys.dont_write_bytecode = True  # the source tree may be read-only
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402
from harness import check  # noqa: E402

h = H.Harness('test_localerr', file_timeout=90)
NOFILE = resource.RLIMIT_NOFILE


def lowest_free_fd(pid):
    used = {int(n) for n in os.listdir('/proc/%d/fd' % pid)}
    return next(i for i in range(len(used) + 1) if i not in used)


class Limited:
    """With this, PID may open descriptors below SOFT only."""

    def __init__(self, pid, soft):
        self.pid, self.soft = pid, soft

    def __enter__(self):
        self.old = resource.prlimit(self.pid, NOFILE)
        resource.prlimit(self.pid, NOFILE, (self.soft, self.old[1]))
        return self

    def __exit__(self, *exc):
        resource.prlimit(self.pid, NOFILE, self.old)


def server(st, name):
    return next(s for s in st['backends'][0]['servers'] if s['name'] == name)


def start(workers, extra_backend):
    s1 = h.start_backend('echo', name='s1')
    s2 = h.start_backend('echo', name='s2')
    port, sport = H.free_port(), H.free_port()
    b = h.start_baton(H.config(
        port, ['s1 127.0.0.1:%d' % s1.port, 's2 127.0.0.1:%d' % s2.port],
        workers=workers, retries=2, sport=sport,
        extra_backend=extra_backend))
    # Both servers seen up by the checks before anything is tried.
    H.poll_until(lambda: all(s['status'] == 'up' for s in
                             H.get_stats(sport)['backends'][0]['servers']),
                 10, 'both servers up')
    return b, port, sport


@h.case
def worker_out_of_descriptors_is_not_the_servers_fault():
    b, port, sport = start(1, 'check = tcp\ncheck_interval = 200ms\n'
                              'fall = 2\nmax_fails = 1')
    worker = b.workers()[0]
    idle = H.fd_count(worker)
    for i in range(3):
        H.echo_new(port, b'before %d\n' % i)
    # Those sessions closed in the worker too: its table is as at rest.
    H.poll_until(lambda: H.fd_count(worker) <= idle, 5,
                 'the worker to close its sessions')
    before = H.get_stats(sport)
    errors0 = before['frontends'][0]['errors']
    n = 20
    # The client's descriptor still arrives (it takes the lowest free
    # one); the socket for the server does not.
    with Limited(worker, lowest_free_fd(worker) + 1):
        for i in range(n):
            s = H.connect(port)
            try:
                s.sendall(b'x\n')
                how, dt = H.wait_closed(s, 5.0)
            finally:
                s.close()
            check(how in ('eof', 'reset'), 'client %d: %s after %.1fs '
                  'while the worker could not connect' % (i, how, dt))
        # Let the checks run: the servers are fine all along.
        H.poll_until(lambda: H.get_stats(sport)['frontends'][0]['errors']
                     >= errors0 + n, 5, 'the errors counted')
    st = H.get_stats(sport)
    for name in ('s1', 's2'):
        srv = server(st, name)
        check(srv['failures'] == server(before, name)['failures'],
              'a local error counted against %s: %r' % (name, srv))
        check(srv['status'] == 'up', '%s marked down: %r' % (name, srv))
    check(st['frontends'][0]['errors'] == errors0 + n,
          'frontend errors %d, want %d (one per client, no retries)'
          % (st['frontends'][0]['errors'], errors0 + n))
    text = b.log()
    check('is down' not in text and 'soft-down' not in text,
          'a server was taken down:\n%s' % b.log_tail())
    check('a local error' in text, 'the local error was not logged:\n%s'
          % b.log_tail())
    # Logged once, then counted ("... N more like this in the last
    # second"), not once per client.
    lines = [ln for ln in text.splitlines() if 'a local error' in ln]
    check(len(lines) <= 6, '%d lines for %d local errors:\n%s'
          % (len(lines), n, '\n'.join(lines[:8])))
    # The shortage over, the same worker serves again.
    for i in range(5):
        H.echo_new(port, b'after %d\n' % i)
    check(b.workers() == [worker], 'the worker was replaced')


@h.case
def master_out_of_descriptors_skips_health_checks():
    b, port, sport = start(1, 'check = tcp\ncheck_interval = 100ms\n'
                              'rise = 5\nfall = 1')
    # Not one descriptor more for the master, for about 12 checks.
    with Limited(b.pid, 3):
        H.poll_until(lambda: b.log().count('cannot check') >= 4, 5,
                     'health checks to meet the shortage')
    st = H.get_stats(sport, patient=True)
    for name in ('s1', 's2'):
        srv = server(st, name)
        check(srv['status'] == 'up', '%s marked down by checks the master '
              'could not make: %r' % (name, srv))
    check('is down' not in b.log(), 'a server was taken down:\n%s'
          % b.log_tail())
    for i in range(3):
        H.echo_new(port, b'after %d\n' % i)


if __name__ == '__main__':
    sys.exit(h.run())
