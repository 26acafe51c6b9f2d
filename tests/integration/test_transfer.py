#!/usr/bin/python3
"""test_transfer.py -- bulk data through baton: 64 MiB up and down intact,
half-close both ways, full duplex, and bounded memory with a slow reader."""

import hashlib
import os
import socket
import sys
import threading
import time

sys.dont_write_bytecode = True  # the source tree may be read-only
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402
from harness import check  # noqa: E402
import backend as B  # noqa: E402

h = H.Harness('test_transfer', file_timeout=150)
MiB = 1 << 20
STALL = 2.0       # seconds without data or EOF that mean a stall


def proxy_to(backend, workers=2):
    port = H.free_port()
    b = h.start_baton(H.config(port, ['s1 127.0.0.1:%d' % backend.port],
                               workers=workers))
    return port, b


def read_all(sock, timeout, expect=None, stall=STALL):
    """Read until EOF: (length, sha256 hex).

    Fails the case when nothing (neither data nor EOF) comes for STALL
    seconds, or EOF has not come after TIMEOUT seconds in all.
    """
    deadline = time.monotonic() + timeout
    hh = hashlib.sha256()
    total = 0
    while True:
        left = deadline - time.monotonic()
        check(left > 0, 'no EOF within %.0fs (%d bytes read)'
              % (timeout, total))
        sock.settimeout(min(left, stall))
        try:
            data = sock.recv(1 << 18)
        except socket.timeout:
            if time.monotonic() < deadline:
                raise H.Failure(stall_message(total, expect, stall))
            continue
        if not data:
            return total, hh.hexdigest()
        hh.update(data)
        total += len(data)


def stall_message(total, expect, stall):
    if expect is not None and total == expect:
        # The backend closed right after its last byte: once baton has
        # flushed that byte it must pass the EOF on, not wait for
        # timeout_idle.
        return ('all %d bytes arrived but no EOF within %.1fs: the '
                'backend\'s close was not passed on to the client'
                % (total, stall))
    return 'nothing for %.1fs after %d bytes (of %r)' % (stall, total, expect)


def rounds_of(par, seconds, max_rounds, fn):
    """Run FN in PAR threads at a time, round after round, for SECONDS (at
    most MAX_ROUNDS rounds); (results, seconds taken). FN returns None or
    what went wrong."""
    results = []

    def one():
        try:
            results.append(fn())
        except (H.Failure, OSError) as e:
            results.append(str(e))
    t0 = time.monotonic()
    rounds = 0
    while time.monotonic() - t0 < seconds and rounds < max_rounds:
        ts = [threading.Thread(target=one, daemon=True) for _ in range(par)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(40)
        rounds += 1
    check(len(results) == rounds * par, 'only %d of %d runs ended'
          % (len(results), rounds * par))
    return results, time.monotonic() - t0


@h.case(timeout=60)
def upload_64mib_sha256_after_half_close():
    size = 64 * MiB
    port, _ = proxy_to(h.start_backend('sha256', name='sum'))
    s = H.connect(port, timeout=30)
    try:
        hh = hashlib.sha256()
        t0 = time.monotonic()
        for chunk in B.pattern_chunks(size):
            s.sendall(chunk)
            hh.update(chunk)
        s.shutdown(socket.SHUT_WR)
        try:
            line = H.recv_line(s, timeout=10)
        except H.Failure as e:
            raise H.Failure('no digest within 10s of the half-close (%s): '
                            'the client\'s EOF did not reach the backend' % e)
        dt = time.monotonic() - t0
        check(line.decode().strip() == hh.hexdigest(),
              'backend got different bytes: sha256 %r, sent %s'
              % (line, hh.hexdigest()))
        how, _ = H.wait_closed(s, 5)
        check(how == 'eof', 'after the digest: %s, want eof' % how)
        print('  upload 64 MiB: %.0f MiB/s' % (size / MiB / dt))
    finally:
        s.close()


@h.case(timeout=60)
def download_64mib_intact():
    size = 64 * MiB
    port, _ = proxy_to(h.start_backend('stream', size, name='stream'))
    s = H.connect(port, timeout=30)
    try:
        t0 = time.monotonic()
        total, digest = read_all(s, 40, size)
        dt = time.monotonic() - t0
    finally:
        s.close()
    check(total == size, 'got %d bytes, want %d' % (total, size))
    check(digest == B.pattern_sha256(size), 'downloaded bytes differ')
    print('  download 64 MiB: %.0f MiB/s' % (size / MiB / dt))


@h.case(timeout=40)
def download_after_client_half_close():
    # The client is done sending before anything comes back: its EOF must
    # reach the backend but the other direction must go on to the end.
    size = 8 * MiB
    port, _ = proxy_to(h.start_backend('stream', size, name='stream'))
    s = H.connect(port, timeout=10)
    try:
        s.sendall(b'request\n')
        s.shutdown(socket.SHUT_WR)
        total, digest = read_all(s, 30, size)
    finally:
        s.close()
    check(total == size, 'got %d bytes after half-close, want %d'
          % (total, size))
    check(digest == B.pattern_sha256(size), 'downloaded bytes differ')


@h.case(timeout=30)
def drip_after_client_half_close():
    # Short reads after the client's EOF: the proxy has shut the server's
    # write side, so the server's socket hangs up as soon as it is done;
    # but until its FIN comes, a short read is not the end (the end of
    # a direction is taken from a short read only once EPOLLRDHUP said so).
    count = 20
    port, _ = proxy_to(h.start_backend('drip', 20, count, name='drip'))
    s = H.connect(port, timeout=10)
    try:
        s.sendall(b'request\n')
        s.shutdown(socket.SHUT_WR)
        total, _ = read_all(s, 20, count)
    finally:
        s.close()
    check(total == count, 'got %d of %d bytes dripped after half-close'
          % (total, count))


@h.case(timeout=60)
def echo_16mib_full_duplex():
    # Both directions at once: a relay that blocks one way while the other
    # is full deadlocks here.
    size = 16 * MiB
    port, _ = proxy_to(h.start_backend('echo', name='echo'))
    s = H.connect(port, timeout=30)
    sent = hashlib.sha256()
    err = []

    def sender():
        try:
            for chunk in B.pattern_chunks(size):
                sent.update(chunk)
                s.sendall(chunk)
            s.shutdown(socket.SHUT_WR)
        except OSError as e:
            err.append(e)
    t = threading.Thread(target=sender, daemon=True)
    t.start()
    try:
        total, digest = read_all(s, 45, size)
        t.join(10)
    finally:
        s.close()
    check(not err, 'sending failed: %r' % err)
    check(total == size, 'echoed %d bytes, want %d' % (total, size))
    check(digest == sent.hexdigest(), 'echoed bytes differ')


@h.case(timeout=60)
def eof_follows_last_byte_every_time():
    # Many downloads, 4 at a time, for a few seconds: every one must end
    # with the backend's EOF right after its last byte. A relay that loses
    # an EOF which arrives while data is still pending shows up here as a
    # stall (it would only end at timeout_idle).
    size, par, seconds, max_rounds = 16 * MiB, 4, 5.0, 200
    port, _ = proxy_to(h.start_backend('stream', size, name='stream'))

    def one():
        s = H.connect(port, timeout=5)
        try:
            total, _ = read_all(s, 30, size, stall=1.5)
            return None if total == size else ('got %d of %d bytes'
                                               % (total, size))
        finally:
            s.close()
    results, dt = rounds_of(par, seconds, max_rounds, one)
    bad = [r for r in results if r]
    print('  %d downloads of %d MiB in %.1fs, %d bad'
          % (len(results), size // MiB, dt, len(bad)))
    check(not bad, '%d of %d downloads failed, first: %s'
          % (len(bad), len(results), bad[0] if bad else ''))


@h.case(timeout=60)
def half_close_reaches_slow_backend():
    # The mirror case: the client's EOF arrives while baton still holds
    # data for a slow backend; it must reach the backend once that is
    # flushed, or the backend never replies.
    size = 8 * MiB
    port, _ = proxy_to(h.start_backend('sha256', name='slowsum',
                                       options=['--read-delay-ms', '1']))
    want = B.pattern_sha256(size)

    def one():
        s = H.connect(port, timeout=30)
        try:
            for chunk in B.pattern_chunks(size):
                s.sendall(chunk)
            s.shutdown(socket.SHUT_WR)
            try:
                line = H.recv_line(s, timeout=3)
            except H.Failure as e:
                return ('no digest within 3s of the half-close (%s): the '
                        'client\'s EOF did not reach the backend' % e)
            if line.decode().strip() != want:
                return 'digest mismatch'
            return None
        finally:
            s.close()
    results, dt = rounds_of(4, 5.0, 100, one)
    bad = [r for r in results if r]
    print('  %d uploads of %d MiB in %.1fs, %d bad'
          % (len(results), size // MiB, dt, len(bad)))
    check(not bad, '%d of %d uploads failed, first: %s'
          % (len(bad), len(results), bad[0] if bad else ''))


class SlowReader(threading.Thread):
    """Reads SOCK at about RATE bytes/s for SECONDS, then stops."""

    def __init__(self, sock, rate, seconds):
        super().__init__(daemon=True)
        self.sock, self.rate, self.seconds = sock, rate, seconds
        self.total = 0
        self.error = None

    def run(self):
        try:
            t0 = time.monotonic()
            while time.monotonic() - t0 < self.seconds:
                self.sock.settimeout(5)
                data = self.sock.recv(64 * 1024)
                if not data:
                    self.error = 'EOF after %d bytes' % self.total
                    return
                self.total += len(data)
                ahead = self.total / self.rate - (time.monotonic() - t0)
                if ahead > 0:
                    time.sleep(min(ahead, 0.5))
        except OSError as e:
            self.error = '%s after %d bytes' % (e, self.total)


@h.case(timeout=60)
def slow_reader_bounded_memory():
    # The backend can push 400 MiB per connection at loopback speed; two
    # clients take 3 MiB/s each for 10 s. Without backpressure baton would
    # buffer hundreds of MiB. A small ASan quarantine keeps freed memory
    # from counting as growth under --enable-sanitizers (ignored otherwise).
    nconn, rate, seconds, limit_mib = 2, 3 * MiB, 10, 16
    backend = h.start_backend('stream', 400 * MiB, name='firehose')
    port = H.free_port()
    asan = os.environ.get('ASAN_OPTIONS', '')
    asan = (asan + ':' if asan else '') + 'quarantine_size_mb=4'
    b = h.start_baton(H.config(port, ['s1 127.0.0.1:%d' % backend.port],
                               workers=2), env_extra={'ASAN_OPTIONS': asan})
    base = b.rss_kib()
    socks, readers = [], []
    try:
        for _ in range(nconn):
            s = H.connect(port)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 256 * 1024)
            socks.append(s)
            readers.append(SlowReader(s, rate, seconds))
        for r in readers:
            r.start()
        peak = base
        deadline = time.monotonic() + seconds + 10
        while any(r.is_alive() for r in readers):
            check(time.monotonic() < deadline, 'slow readers did not finish')
            peak = max(peak, b.rss_kib())
            time.sleep(0.1)
        b.check_running()
    finally:
        for s in socks:
            s.close()
    for r in readers:
        check(r.error is None, 'slow reader: %s' % r.error)
        check(r.total >= rate * seconds * 0.5,
              'slow reader got only %d bytes in %ds' % (r.total, seconds))
    grow = (peak - base) / 1024.0
    print('  RSS master+workers: base %.1f MiB, peak %.1f MiB, growth %.1f '
          'MiB with %d slow readers (%.0f MiB read)'
          % (base / 1024.0, peak / 1024.0, grow, nconn,
             sum(r.total for r in readers) / MiB))
    check(grow < limit_mib, 'baton RSS grew %.1f MiB with %d slow readers '
          '(limit %d MiB)' % (grow, nconn, limit_mib))


if __name__ == '__main__':
    sys.exit(h.run())
