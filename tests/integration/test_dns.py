#!/usr/bin/python3
"""test_dns.py -- DNS service discovery: `server = NAME HOST:PORT resolve`
(every A record a server, NAME-1, NAME-2, ... stable by address) and
`discover = dns-srv:...` (servers, ports and weights from SRV records),
followed without a reload from a small DNS server in this test (Debian's
python3-dnslib), which adds, removes and changes records, then stops
answering: the backend keeps its last known servers."""

import collections
import http.client
import json
import os
import re
import select
import socket
import sys
import threading
import time

sys.dont_write_bytecode = True  # the source tree may be read-only
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402
from harness import check  # noqa: E402

try:
    from dnslib import A, QTYPE, RCODE, RR, SRV, DNSRecord
except ImportError:     # run with /usr/bin/python3 (python3-dnslib)
    DNSRecord = None

h = H.Harness('test_dns', file_timeout=300)


class DNS:
    """A UDP DNS server on 127.0.0.1 for the zone in self.records:
    (name, 'A' | 'SRV') -> list of rdata tuples, answered with self.ttl.
    With self.silent it reads queries and answers none."""

    def __init__(self):
        self.records = {}
        self.ttl = 1
        self.silent = False
        self.queries = collections.Counter()
        self.lock = threading.Lock()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(('127.0.0.1', 0))
        self.port = self.sock.getsockname()[1]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def set(self, name, qtype, rdatas):
        with self.lock:
            self.records[(name, qtype)] = list(rdatas)

    def answer(self, q):
        reply = q.reply()
        name = str(q.q.qname).rstrip('.')
        qtype = QTYPE[q.q.qtype]
        with self.lock:
            self.queries[(name, qtype)] += 1
            known = any(n == name for n, _ in self.records)
            rdatas = list(self.records.get((name, qtype), []))
        if not known:
            reply.header.rcode = RCODE.NXDOMAIN
        for r in rdatas:
            if qtype == 'A':
                reply.add_answer(RR(name, QTYPE.A, rdata=A(r),
                                    ttl=self.ttl))
            elif qtype == 'SRV':
                prio, weight, port, target = r
                reply.add_answer(RR(name, QTYPE.SRV, ttl=self.ttl,
                                    rdata=SRV(prio, weight, port, target)))
        return reply

    def run(self):
        while not self.stop.is_set():
            r, _, _ = select.select([self.sock], [], [], 0.1)
            if not r:
                continue
            try:
                data, peer = self.sock.recvfrom(4096)
                q = DNSRecord.parse(data)
            except Exception:  # noqa: BLE001 -- garbage: no answer
                continue
            if self.silent:
                continue
            self.sock.sendto(self.answer(q).pack(), peer)

    def close(self):
        self.stop.set()
        self.thread.join(2)
        self.sock.close()


def stats(sport):
    c = http.client.HTTPConnection(H.LOCALHOST, sport, timeout=5)
    try:
        c.request('GET', '/stats')
        r = c.getresponse()
        body = r.read()
    finally:
        c.close()
    check(r.status == 200, 'GET /stats: %d' % r.status)
    return json.loads(body.decode())


def servers(sport):
    """name -> server of backend app (those /stats shows)."""
    return {s['name']: s for s in stats(sport)['backends'][0]['servers']}


def names_seen(port, n):
    out = []
    for i in range(n):
        s = H.connect(port)
        try:
            out.append(H.recv_line(s, timeout=5).decode().strip())
            H.echo_ok(s, b'dns %d\n' % i)
        finally:
            s.close()
    return out


def conf(port, sport, dns, backend_lines, workers=2):
    return '\n'.join([
        '[global]', 'workers = %d' % workers, 'drain_timeout = 3s',
        'log_level = info', 'resolve_interval = 1s',
        'resolvers = 127.0.0.1:%d' % dns.port, '',
        '[frontend web]', 'listen = 127.0.0.1:%d' % port, 'backend = app',
        '', '[backend app]', 'balance = roundrobin'] + backend_lines + [
        'connect_timeout = 1s', '', '[stats]',
        'listen = 127.0.0.1:%d' % sport, ''])


def need_dnslib():
    if DNSRecord is None:
        raise H.Skip('python3-dnslib is not installed (run with '
                     '/usr/bin/python3)')


def addresses(sport):
    return {s['address']: n for n, s in servers(sport).items()}


@h.case(timeout=120)
def resolve_follows_a_records_without_reload():
    need_dnslib()
    dns = DNS()
    try:
        run_resolve(dns)
    finally:
        dns.close()


def run_resolve(dns):
    bport = H.free_port()
    # One backend per loopback address, all on the same port.
    bk = {ip: h.start_backend('name', name='b' + ip.split('.')[-1],
                              host=ip, port=bport)
          for ip in ('127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5')}
    dns.set('web.baton.test', 'A', ['127.0.0.2', '127.0.0.3'])
    port, sport = H.free_port(), H.free_port()
    b = h.start_baton(conf(port, sport, dns, [
        'server = web web.baton.test:%d resolve weight=2' % bport]))
    want = {'127.0.0.2:%d' % bport, '127.0.0.3:%d' % bport}
    H.poll_until(lambda: set(addresses(sport)) == want, 10,
                 'the two A records as servers')
    sv = servers(sport)
    check(set(sv) == {'web-1', 'web-2'} and
          all(s['weight'] == 2 and s['status'] == 'up' for s in sv.values()),
          'servers from DNS: %r' % sv)
    first = addresses(sport)
    check(set(names_seen(port, 10)) == {'b2', 'b3'}, 'traffic not on both')

    # A record added: a third server; the others keep their names.
    dns.set('web.baton.test', 'A', ['127.0.0.2', '127.0.0.3', '127.0.0.4'])
    H.poll_until(lambda: len(servers(sport)) == 3, 10, 'the third server')
    now = addresses(sport)
    check(all(now[a] == first[a] for a in first), 'names moved: %r -> %r'
          % (first, now))
    check(now['127.0.0.4:%d' % bport] == 'web-3', 'new name %r' % now)
    H.poll_until(lambda: 'b4' in names_seen(port, 6), 10,
                 'traffic to the added server')

    # A record removed: its server drains (a held connection finishes),
    # then it is gone; new connections never reach it.
    held = None
    for _ in range(12):
        s = H.connect(port)
        if H.recv_line(s).strip() == b'b2':
            held = s
            break
        s.close()
    check(held is not None, 'no connection reached b2')
    dns.set('web.baton.test', 'A', ['127.0.0.3', '127.0.0.4'])
    name2 = first['127.0.0.2:%d' % bport]
    H.poll_until(lambda: servers(sport).get(name2, {}).get('status') ==
                 'drain', 10, '%s to drain' % name2)
    check('b2' not in names_seen(port, 12), 'a removed server got traffic')
    H.echo_ok(held, b'still here\n')
    held.close()
    H.poll_until(lambda: name2 not in servers(sport), 10,
                 '%s to be gone' % name2)

    # A record changed: .3 replaced by .5, in one answer.
    dns.set('web.baton.test', 'A', ['127.0.0.4', '127.0.0.5'])
    want = {'127.0.0.4:%d' % bport, '127.0.0.5:%d' % bport}
    H.poll_until(lambda: set(addresses(sport)) == want, 10,
                 'the changed record followed')
    check(addresses(sport)['127.0.0.4:%d' % bport] == 'web-3',
          'web-3 renamed: %r' % addresses(sport))
    H.poll_until(lambda: set(names_seen(port, 8)) == {'b4', 'b5'}, 10,
                 'traffic on .4 and .5 only')

    # DNS stops answering: the last known set stays, logged once.
    dns.silent = True
    b.wait_log(r'dns: app/web \(web\.baton\.test\): .*keeping the last 2 '
               r'servers', timeout=15)
    time.sleep(4)       # several more failed rounds
    check(len(re.findall(r'keeping the last', b.log())) == 1,
          'the failure logged more than once')
    check(set(addresses(sport)) == want, 'servers lost while DNS is down: %r'
          % addresses(sport))
    check(set(names_seen(port, 8)) == {'b4', 'b5'}, 'traffic while DNS '
          'is down')
    # An empty answer keeps them too; then DNS answers again.
    dns.set('web.baton.test', 'A', [])
    dns.silent = False
    H.poll_until(lambda: dns.queries[('web.baton.test', 'A')] > 0 and
                 time.sleep(2.5) is None, 10, 'an empty answer')
    check(set(addresses(sport)) == want, 'an empty answer emptied the '
          'backend: %r' % addresses(sport))
    dns.set('web.baton.test', 'A', ['127.0.0.5'])
    b.wait_log(r'dns: app/web \(web\.baton\.test\) answers again', timeout=15)
    H.poll_until(lambda: set(addresses(sport)) == {'127.0.0.5:%d' % bport},
                 10, 'the last change followed')
    check(len(re.findall(r'keeping the last', b.log())) == 1,
          'the failure logged more than once')
    check(stats(sport)['generation'] == 1, 'a reload happened')
    check(stats(sport)['frontends'][0]['errors'] == 0, 'connections failed')
    del bk


@h.case(timeout=120)
def srv_records_give_servers_ports_and_weights():
    need_dnslib()
    dns = DNS()
    try:
        run_srv(dns)
    finally:
        dns.close()


def run_srv(dns):
    bk = {n: h.start_backend('name', name=n) for n in ('t1', 't2', 't3')}
    srv = '_app._tcp.baton.test'
    for n in bk:
        dns.set('%s.baton.test' % n, 'A', ['127.0.0.1'])
    dns.set(srv, 'SRV', [(10, 5, bk['t1'].port, 't1.baton.test'),
                         (10, 1, bk['t2'].port, 't2.baton.test'),
                         (20, 1, bk['t3'].port, 't3.baton.test')])
    port, sport = H.free_port(), H.free_port()
    b = h.start_baton(conf(port, sport, dns, ['discover = dns-srv:%s' % srv],
                           workers=1))
    H.poll_until(lambda: len(servers(sport)) == 3, 10, 'three SRV servers')
    sv = servers(sport)
    byport = {int(s['address'].rsplit(':', 1)[1]): s for s in sv.values()}
    t1, t2, t3 = (byport[bk[n].port] for n in ('t1', 't2', 't3'))
    check(t1['name'] == 't1.baton.test-1' and t1['weight'] == 5 and
          not t1['backup'], 't1: %r' % t1)
    check(t2['weight'] == 1 and not t2['backup'], 't2: %r' % t2)
    check(t3['backup'], 't3 (priority 20) not a backup: %r' % t3)
    c = collections.Counter(names_seen(port, 36))
    check(c == {'t1': 30, 't2': 6}, 'weights 5:1 over 36: %r' % dict(c))

    # Weight changed, t1 removed: followed.
    dns.set(srv, 'SRV', [(10, 3, bk['t2'].port, 't2.baton.test'),
                         (20, 1, bk['t3'].port, 't3.baton.test')])
    H.poll_until(lambda: 't1.baton.test-1' not in servers(sport), 10,
                 't1 to go')
    check(servers(sport)['t2.baton.test-1']['weight'] == 3, 'weight not '
          'followed: %r' % servers(sport))
    check(set(names_seen(port, 6)) == {'t2'}, 'traffic after the change')
    # The primary gone from DNS: the backup serves.
    dns.set(srv, 'SRV', [(20, 1, bk['t3'].port, 't3.baton.test')])
    H.poll_until(lambda: set(names_seen(port, 4)) == {'t3'}, 10,
                 'the backup (now the only one) to serve')
    # No SRV record at all: the last known set stays.
    dns.set(srv, 'SRV', [])
    b.wait_log(r'dns: app \(SRV %s\): no record: keeping the last 1 '
               r'servers' % re.escape(srv), timeout=10)
    check(set(names_seen(port, 4)) == {'t3'}, 'emptied by an empty answer')
    check(stats(sport)['generation'] == 1, 'a reload happened')


@h.case(timeout=60)
def reload_keeps_what_dns_found():
    need_dnslib()
    dns = DNS()
    try:
        bport = H.free_port()
        for ip in ('127.0.0.2', '127.0.0.3'):
            h.start_backend('name', name='b' + ip[-1], host=ip, port=bport)
        dns.set('web.baton.test', 'A', ['127.0.0.2', '127.0.0.3'])
        port, sport = H.free_port(), H.free_port()
        b = h.start_baton(conf(port, sport, dns, [
            'server = web web.baton.test:%d resolve' % bport]))
        H.poll_until(lambda: len(servers(sport)) == 2, 10, 'two servers')
        before = addresses(sport)
        # DNS goes quiet, then a reload: the servers stay, same names.
        dns.silent = True
        b.signal(1)     # SIGHUP
        H.poll_until(lambda: stats(sport)['generation'] == 2, 10,
                     'the reload')
        check(addresses(sport) == before, 'after the reload: %r -> %r'
              % (before, addresses(sport)))
        check(set(names_seen(port, 6)) == {'b2', 'b3'}, 'traffic after the '
              'reload with DNS down')
    finally:
        dns.close()


if __name__ == '__main__':
    sys.exit(h.run())
