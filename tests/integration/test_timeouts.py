#!/usr/bin/python3
"""test_timeouts.py -- timeout_idle: an idle connection is closed, one with
bytes moving in either direction (or both) stays open."""

import hashlib
import os
import socket
import sys
import time

sys.dont_write_bytecode = True  # the source tree may be read-only
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402
from harness import check  # noqa: E402

h = H.Harness('test_timeouts', file_timeout=90)
IDLE = 1.0          # timeout_idle in seconds
SLACK = 1.5         # how late baton may close


def proxy_to(backend):
    port = H.free_port()
    h.start_baton(H.config(port, ['s1 127.0.0.1:%d' % backend.port],
                           workers=2, idle='%dms' % int(IDLE * 1000)))
    return port


@h.case
def idle_connection_closed():
    port = proxy_to(h.start_backend('echo', name='echo'))
    for i in range(2):
        s = H.connect(port)
        try:
            H.echo_ok(s, b'once\n')
            how, dt = H.wait_closed(s, IDLE + SLACK + 3)
        finally:
            s.close()
        check(how in ('eof', 'reset'), 'idle connection %d still open after '
              '%.1fs (timeout_idle %.1fs)' % (i, dt, IDLE))
        check(IDLE * 0.8 <= dt <= IDLE + SLACK,
              'idle connection %d closed after %.2fs, want %.1f..%.1fs'
              % (i, dt, IDLE * 0.8, IDLE + SLACK))


@h.case
def both_ways_activity_keeps_open():
    port = proxy_to(h.start_backend('echo', name='echo'))
    s = H.connect(port)
    try:
        t0 = time.monotonic()
        n = 0
        while time.monotonic() - t0 < 3 * IDLE:
            H.echo_ok(s, b'%d' % (n % 10), timeout=2)
            n += 1
            time.sleep(IDLE / 2)
        H.echo_ok(s, b'still here\n')
        # Then quiet: now it must go.
        how, dt = H.wait_closed(s, IDLE + SLACK + 3)
        check(how in ('eof', 'reset') and dt <= IDLE + SLACK + 0.5,
              'after going quiet: %s after %.2fs' % (how, dt))
    finally:
        s.close()


@h.case
def download_only_activity_keeps_open():
    # The backend sends one byte every half timeout; the client sends
    # nothing. Bytes move one way only, so the connection is not idle.
    count = 6
    port = proxy_to(h.start_backend('drip', int(IDLE * 500), count,
                                     name='drip'))
    s = H.connect(port)
    try:
        got = b''
        deadline = time.monotonic() + count * IDLE / 2 + 5
        while True:
            check(time.monotonic() < deadline, 'drip did not finish')
            s.settimeout(max(0.1, deadline - time.monotonic()))
            try:
                data = s.recv(16)
            except ConnectionResetError:
                raise H.Failure('reset after %d of %d bytes' % (len(got),
                                                               count))
            if not data:
                break
            got += data
    finally:
        s.close()
    check(got == b'.' * count, 'connection closed after %d of %d drip '
          'bytes (download-only traffic must count as activity)'
          % (len(got), count))


@h.case
def upload_only_activity_keeps_open():
    # The client sends a byte every half timeout and gets nothing back
    # until its half-close: bytes move one way only, so not idle.
    port = proxy_to(h.start_backend('sha256', name='sum'))
    s = H.connect(port)
    try:
        sent = b''
        t0 = time.monotonic()
        while time.monotonic() - t0 < 3 * IDLE:
            try:
                s.sendall(b'u')
            except OSError as e:
                raise H.Failure('send failed after %.1fs: %s'
                                % (time.monotonic() - t0, e))
            sent += b'u'
            time.sleep(IDLE / 2)
        s.shutdown(socket.SHUT_WR)
        try:
            line = H.recv_line(s, timeout=5)
        except H.Failure as e:
            raise H.Failure('upload-only connection did not survive %.1fs '
                            'of one-way traffic: %s' % (3 * IDLE, e))
        check(line.strip().decode() == hashlib.sha256(sent).hexdigest(),
              'digest mismatch: %r' % line)
    finally:
        s.close()


if __name__ == '__main__':
    sys.exit(h.run())
