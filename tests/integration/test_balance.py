#!/usr/bin/python3
"""test_balance.py -- round-robin and weighted round-robin across real
backend processes, seen from the client through baton."""

import collections
import os
import sys

sys.dont_write_bytecode = True  # the source tree may be read-only
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402
from harness import check  # noqa: E402

h = H.Harness('test_balance', file_timeout=120)


def names_seen(port, n):
    """Open N connections one after another; the backend name of each."""
    out = []
    for i in range(n):
        s = H.connect(port)
        try:
            line = H.recv_line(s, timeout=5)
            H.echo_ok(s, b'ping %d\n' % i)
        finally:
            s.close()
        out.append(line.decode().strip())
    return out


def start(servers, workers, weights=(1, 1)):
    backends = [h.start_backend('name', name=n) for n in servers]
    port = H.free_port()
    conf = H.config(port, ['%s 127.0.0.1:%d weight=%d' % (b.name, b.port, w)
                           for b, w in zip(backends, weights)],
                    workers=workers)
    h.start_baton(conf)
    return port


@h.case
def roundrobin_one_worker_alternates():
    port = start(['a1', 'a2'], workers=1)
    seq = names_seen(port, 20)
    check(set(seq) == {'a1', 'a2'}, 'servers seen: %r' % seq)
    for i in range(1, len(seq)):
        check(seq[i] != seq[i - 1], 'not alternating at %d: %r' % (i, seq))


@h.case
def roundrobin_two_workers_even():
    port = start(['a1', 'a2'], workers=2)
    seq = names_seen(port, 40)
    c = collections.Counter(seq)
    check(set(c) == {'a1', 'a2'}, 'servers seen: %r' % dict(c))
    check(abs(c['a1'] - c['a2']) <= 2,
          'uneven over 40 connections with 2 workers: %r' % dict(c))


@h.case
def weights_3_to_1_smooth_one_worker():
    port = start(['a1', 'a2'], workers=1, weights=(3, 1))
    seq = names_seen(port, 40)
    c = collections.Counter(seq)
    check(c['a1'] == 30 and c['a2'] == 10, 'counts over 40: %r' % dict(c))
    # Smooth WRR: every run of 4 consecutive picks holds exactly one a2.
    for i in range(len(seq) - 3):
        check(seq[i:i + 4].count('a2') == 1,
              'not smooth at %d: %r' % (i, seq))


@h.case
def weights_3_to_1_over_400():
    port = start(['a1', 'a2'], workers=2, weights=(3, 1))
    seq = names_seen(port, 400)
    c = collections.Counter(seq)
    share = c['a1'] / 400.0
    print('  a1:a2 = %d:%d (a1 share %.3f)' % (c['a1'], c['a2'], share))
    check(set(c) == {'a1', 'a2'}, 'servers seen: %r' % dict(c))
    check(0.72 <= share <= 0.78,
          'a1 share %.3f not within 0.75 +- 0.03: %r' % (share, dict(c)))


if __name__ == '__main__':
    sys.exit(h.run())
