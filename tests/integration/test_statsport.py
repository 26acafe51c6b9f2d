#!/usr/bin/python3
"""test_statsport.py -- the stats port is bounded: slow and idle clients
cannot hold the master's descriptors.

A request must arrive whole within 5 s of the connection's start or of
the previous request, however its bytes trickle in (libevent's own
timeout restarts with every byte); at most 64 connections are open at
once (fewer under a low descriptor limit: limit / 8), the rest wait in
the listen backlog; a keep-alive client that keeps asking is not cut.
"""

import os
import re
import resource
import select
import sys
import time

sys.dont_write_bytecode = True  # the source tree may be read-only
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402
from harness import check  # noqa: E402

h = H.Harness('test_statsport', file_timeout=120)
DEADLINE = 5.0
SLACK = 2.0
CAP = 64


def start():
    be = h.start_backend('echo', name='echo')
    port, sport = H.free_port(), H.free_port()
    b = h.start_baton(H.config(port, ['s1 127.0.0.1:%d' % be.port],
                               workers=1, sport=sport))
    H.get_stats(sport)
    return b, port, sport


@h.case(timeout=60)
def trickled_request_closed_at_deadline():
    b, port, sport = start()
    request = b'GET /stats HTTP/1.1\r\nHost: x\r\nX-Pad: ' + b'a' * 200
    socks = [H.connect(sport) for _ in range(20)]
    t0 = time.monotonic()
    closed = {}
    sent = 0
    try:
        # One byte per connection every 0.2 s: never a whole request,
        # always a byte within libevent's timeout.
        while len(closed) < len(socks) and \
                time.monotonic() - t0 < DEADLINE + SLACK + 3:
            for i, s in enumerate(socks):
                if i in closed:
                    continue
                try:
                    s.send(request[sent % len(request):][:1])
                except OSError:
                    closed[i] = time.monotonic() - t0
            sent += 1
            r, _, _ = select.select([s for i, s in enumerate(socks)
                                     if i not in closed], [], [], 0.2)
            for s in r:
                i = socks.index(s)
                try:
                    data = s.recv(4096)
                except OSError:
                    data = b''
                check(data == b'', 'a partial request got an answer: %r'
                      % data[:80])
                closed[i] = time.monotonic() - t0
            # Meanwhile, whole requests are answered.
            if sent % 5 == 0:
                H.get_stats(sport)
        check(len(closed) == len(socks), '%d of %d trickling connections '
              'still open after %.1fs' % (len(socks) - len(closed),
                                           len(socks), DEADLINE + SLACK + 3))
        late = max(closed.values())
        check(DEADLINE * 0.8 <= min(closed.values()) and
              late <= DEADLINE + SLACK, 'closed after %.2f..%.2fs, want '
              '%.1f..%.1fs' % (min(closed.values()), late, DEADLINE * 0.8,
                               DEADLINE + SLACK))
    finally:
        for s in socks:
            s.close()
    H.echo_new(port, b'frontend fine\n')


@h.case(timeout=60)
def connections_capped_and_released():
    b, port, sport = start()
    # (the stats request of start() may still hold one descriptor)
    base = H.fd_count(b.pid) - 1
    idle = H.open_many(sport, 3 * CAP)
    try:
        H.poll_until(lambda: H.fd_count(b.pid) >= base + CAP, 5,
                     'the master to take %d stats connections' % CAP)
        time.sleep(0.5)     # would it take more? (it must not)
        n = H.fd_count(b.pid)
        check(n <= base + CAP + 1, 'the master holds %d descriptors for %d '
              'idle stats clients; at most %d expected'
              % (n - base, 3 * CAP, CAP))
        # The frontends do not notice.
        for i in range(5):
            H.echo_new(port, b'while capped %d\n' % i)
    finally:
        for s in idle:
            s.close()
    # Closed clients free their slots at once; /stats answers again.
    st = H.get_stats(sport, patient=True)
    check(st['connections']['total'] >= 5, 'stats: %r' % st['connections'])
    H.poll_until(lambda: H.fd_count(b.pid) <= base + 2, 5 * DEADLINE,
                 'the master back to its descriptors')
    b.check_running()
    check(not re.search(r'accept: |cannot accept|accept on', b.log()),
          'accept errors logged:\n%s'
          % b.log_tail())


@h.case(timeout=60)
def keepalive_client_not_cut():
    b, port, sport = start()
    s = H.connect(sport)
    try:
        t0 = time.monotonic()
        n = 0
        # Longer than the deadline, asking every 0.5 s on one connection.
        while time.monotonic() - t0 < DEADLINE * 1.6:
            s.sendall(b'GET /stats HTTP/1.1\r\nHost: x\r\n\r\n')
            head = b''
            while b'\r\n\r\n' not in head:
                chunk = s.recv(65536)
                check(chunk != b'', 'keep-alive connection cut after '
                      '%.1fs, %d requests' % (time.monotonic() - t0, n))
                head += chunk
            check(head.startswith(b'HTTP/1.1 200'), 'reply %r' % head[:40])
            hdr, _, body = head.partition(b'\r\n\r\n')
            length = int([ln.split(b':')[1] for ln in hdr.split(b'\r\n')
                          if ln.lower().startswith(b'content-length')][0])
            body += H.recv_exact(s, length - len(body)) \
                if length > len(body) else b''
            n += 1
            time.sleep(0.5)
    finally:
        s.close()


@h.case(timeout=60)
def accept_failure_backs_off():
    """With not one descriptor to spare, accept on the stats port fails:
    the port pauses and tries again, it does not spin or flood the log."""
    b, port, sport = start()
    lines0 = len(b.log().splitlines())
    old = resource.prlimit(b.pid, resource.RLIMIT_NOFILE)
    resource.prlimit(b.pid, resource.RLIMIT_NOFILE, (3, old[1]))
    try:
        c = H.connect(sport)    # the kernel completes it; accept fails
        t0, c0 = time.monotonic(), H.cpu_seconds(b.pid)
        time.sleep(2.0)         # the measurement window
        cpu = (H.cpu_seconds(b.pid) - c0) / (time.monotonic() - t0)
    finally:
        resource.prlimit(b.pid, resource.RLIMIT_NOFILE, old)
    try:
        lines = b.log().splitlines()[lines0:]
        print('  master CPU %.1f%% of a core, %d log lines in 2 s'
              % (cpu * 100, len(lines)))
        check(cpu < 0.20, 'the master used %.0f%% of a core on failing '
              'accepts' % (cpu * 100))
        check(len(lines) < 50, '%d log lines in 2 s:\n%s'
              % (len(lines), '\n'.join(lines[-5:])))
        check(any('stats: accept' in ln for ln in lines),
              'the failure was not logged:\n%s' % b.log_tail())
        # Room again: the waiting client is taken and answered.
        c.sendall(b'GET /stats HTTP/1.0\r\n\r\n')
        c.settimeout(5)
        check(c.recv(12).startswith(b'HTTP/1.'), 'no answer after the '
              'shortage')
    finally:
        c.close()
    H.get_stats(sport)


if __name__ == '__main__':
    sys.exit(h.run())
