#!/usr/bin/python3
"""test_instances.py -- many baton instances behind one address:
`balance = source` is rendezvous hashing of the client address over
server names and weights, so instances with the same servers send a
client to the same server, whatever order the file lists them in."""

import collections
import os
import sys

sys.dont_write_bytecode = True  # the source tree may be read-only
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402
from harness import check  # noqa: E402

h = H.Harness('test_instances', file_timeout=240)

N_CLIENTS = 200


def instance_conf(port, servers, workers):
    lines = ['[global]', 'workers = %d' % workers, 'drain_timeout = 2s',
             'log_level = info', '',
             '[frontend web]', 'listen = 127.0.0.1:%d' % port,
             'backend = app', 'accept_proxy = v1', '',
             '[backend app]', 'balance = source']
    lines += ['server = %s' % s for s in servers]
    lines += ['connect_timeout = 1s', '']
    return '\n'.join(lines)


def client_addr(i):
    return '10.%d.%d.%d' % (i % 7, (i * 37) % 251, 1 + i % 250)


def server_for(port, i):
    """The server a client at client_addr(i) reaches through PORT."""
    s = H.connect(port)
    try:
        s.sendall(('PROXY TCP4 %s 127.0.0.1 %d 80\r\n'
                   % (client_addr(i), 1024 + i)).encode())
        name = H.recv_line(s, timeout=5).decode().strip()
        H.echo_ok(s, b'client %d\n' % i)
    finally:
        s.close()
    return name


@h.case(timeout=180)
def two_instances_send_each_client_to_the_same_server():
    names = ['s1', 's2', 's3', 's4', 's5']
    weights = {'s1': 3, 's2': 1, 's3': 1, 's4': 2, 's5': 1}
    bk = [h.start_backend('name', name=n) for n in names]
    servers = ['%s 127.0.0.1:%d weight=%d' % (b.name, b.port, weights[b.name])
               for b in bk]
    pa, pb = H.free_port(), H.free_port()
    # The same servers; the second file lists them in the other order
    # and runs another number of workers.
    h.start_baton(instance_conf(pa, servers, 2), name='a.ini')
    h.start_baton(instance_conf(pb, list(reversed(servers)), 3),
                  name='b.ini')
    got_a = [server_for(pa, i) for i in range(N_CLIENTS)]
    got_b = [server_for(pb, i) for i in range(N_CLIENTS)]
    differ = [(client_addr(i), got_a[i], got_b[i]) for i in range(N_CLIENTS)
              if got_a[i] != got_b[i]]
    check(not differ, '%d of %d clients reach another server through the '
          'other instance, first: %r' % (len(differ), N_CLIENTS, differ[:5]))
    # The same client again, through either: the same server.
    again = [server_for(pb if i % 2 else pa, i) for i in range(0, 40)]
    check(again == got_a[:40], 'a client moved between connections')
    # Spread by weight: s1 (3) and s4 (2) take more than the others.
    c = collections.Counter(got_a)
    check(set(c) == set(names), 'not every server is used: %r' % dict(c))
    check(c['s1'] > c['s2'] and c['s1'] > c['s3'] and c['s1'] > c['s5'] and
          c['s4'] > c['s2'], 'weights not followed: %r' % dict(c))


if __name__ == '__main__':
    sys.exit(h.run())
