#!/usr/bin/python3
"""test_handover.py -- live sessions move to the new generation on reload
(handover = on): long-lived streams both ways, some half-closed, some held
back by a slow reader, survive ten reloads with every byte intact and the
old generation gone within 3 s of each; sessions whose server is removed,
and TLS sessions, stay and drain; a reload during a reload; a worker
SIGKILLed on either side of a hand-over; handover = off keeps the old
behaviour."""

import os
import http.client
import json
import random
import re
import select
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True  # the source tree may be read-only
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402
from harness import check  # noqa: E402

h = H.Harness('test_handover', file_timeout=300)

OLD_GONE_S = 3.0        # an old generation exits this soon after a reload


# ------------------------------------------------------------- streams

class Stream(threading.Thread):
    """One client connection streaming pseudo-random bytes to the echo
    backend through baton and checking every byte that comes back, as it
    comes. Runs until stop is set, then ends its sending (HALFCLOSE: with
    shutdown(SHUT_WR), reading on to EOF; else reading until all came
    back, then closing). SLOW: stops reading for a while and meanwhile
    sends as fast as it can (up to BURST bytes), so that every buffer on
    the way fills up, baton's own too."""

    BURST = 12 << 20

    def __init__(self, port, seed, stop, halfclose=False, slow=False,
                 rate_ms=20, tls_ctx=None):
        super().__init__(daemon=True)
        self.stop = stop
        self.halfclose = halfclose
        self.slow = slow
        self.rate = rate_ms / 1000.0
        self.rng = random.Random(seed)
        self.sent = bytearray()
        self.got = 0
        self.result = None      # 'ok', 'cut: ...', 'wrong: ...'
        if slow:
            # A small receive window: the chain backs up into baton soon.
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
            s.settimeout(5)
            s.connect((H.LOCALHOST, port))
        else:
            s = H.connect(port, timeout=5)
        if tls_ctx is not None:
            s = tls_ctx.wrap_socket(s, server_hostname='localhost')
        self.sock = s

    def _check(self, data):
        want = self.sent[self.got:self.got + len(data)]
        if data != want:
            return 'wrong: %d bytes at %d differ from what was sent' % (
                len(data), self.got)
        self.got += len(data)
        return None

    def _recv(self):
        try:
            data = self.sock.recv(65536)
        except (ssl.SSLWantReadError, BlockingIOError):
            return None, False
        if not data:
            return None, True
        return data, False

    def run(self):
        try:
            self.result = self._run()
        except (OSError, ssl.SSLError) as e:
            self.result = 'cut: %r after %d of %d bytes' % (
                e, self.got, len(self.sent))
        finally:
            try:
                self.sock.close()
            except OSError:
                pass

    def _run(self):
        s = self.sock
        s.setblocking(False)
        t0 = time.monotonic()
        pause = (t0 + 0.3, t0 + 1.8) if self.slow else (0, 0)
        deadline = t0 + 120
        pending = b''
        next_send = t0
        sending = True
        while time.monotonic() < deadline:
            now = time.monotonic()
            if sending and not pending and self.stop.is_set():
                sending = False
                if self.halfclose:
                    s.shutdown(socket.SHUT_WR)
            if not sending and (self.halfclose is False and
                                self.got == len(self.sent)):
                return 'ok'
            reading = not (pause[0] <= now < pause[1])
            burst = not reading and len(self.sent) < self.BURST
            if sending and not pending and (now >= next_send or burst):
                n = 65536 if burst else self.rng.randint(1, 8192)
                pending = self.rng.randbytes(n)
                self.sent += pending
                next_send = now + self.rng.uniform(0, 2 * self.rate)
            rl = [s] if reading else []
            wl = [s] if pending else []
            r, w, _ = select.select(rl, wl, [], 0.02)
            if w and pending:
                try:
                    n = s.send(pending)
                    pending = pending[n:]
                except (BlockingIOError, ssl.SSLWantWriteError):
                    pass
            if r or (reading and isinstance(s, ssl.SSLSocket) and
                     s.pending()):
                while True:
                    data, eof = self._recv()
                    if eof:
                        if sending or self.got < len(self.sent):
                            return 'cut: EOF after %d of %d bytes' % (
                                self.got, len(self.sent))
                        return 'ok'
                    if data is None:
                        break
                    bad = self._check(data)
                    if bad:
                        return bad
        return 'cut: not done in time (%d of %d bytes back)' % (
            self.got, len(self.sent))


def start_streams(port, n, stop, **kw):
    """N streams: every third half-closes, every fourth reads slowly."""
    out = []
    for i in range(n):
        plain = kw.get('tls_ctx') is None    # TLS: no TCP half-close
        out.append(Stream(port, 1000 + i, stop,
                          halfclose=(i % 3 == 1 and plain),
                          slow=(i % 4 == 2), **kw))
    for s in out:
        s.start()
    return out


def finish(streams, stop, timeout=60):
    stop.set()
    for s in streams:
        s.join(timeout)
    return [s.result for s in streams]


def check_all_ok(results):
    bad = [r for r in results if r != 'ok']
    check(not bad, '%d of %d streams not intact: %r'
          % (len(bad), len(results), bad[:5]))


def check_prefixes(results):
    """Cut is allowed (a worker was killed), mangled never."""
    wrong = [r for r in results if r is None or r.startswith('wrong')]
    check(not wrong, 'streams mangled or unfinished: %r' % wrong[:5])


# ------------------------------------------------------------- proxies

def conf(port, sport, servers, workers=2, handover='on', drain='30s',
         tls=None, log_level='info'):
    lines = ['[global]', 'workers = %d' % workers,
             'drain_timeout = %s' % drain, 'log_level = %s' % log_level,
             'handover = %s' % handover, '',
             '[stats]', 'listen = 127.0.0.1:%d' % sport, '',
             '[frontend web]', 'listen = 127.0.0.1:%d' % port,
             'backend = app', 'timeout_idle = 60s']
    if tls:
        lines += ['tls_cert = %s' % tls[0], 'tls_key = %s' % tls[1]]
    lines += ['', '[backend app]', 'balance = roundrobin']
    lines += ['server = %s' % s for s in servers]
    lines += ['connect_timeout = 2s', '']
    return '\n'.join(lines)


class Proxy:
    def __init__(self, servers, **kw):
        self.port = H.free_port()
        self.sport = H.free_port()
        self.servers = list(servers)
        self.kw = kw
        self.b = h.start_baton(self.text())

    def text(self):
        return conf(self.port, self.sport, self.servers, **self.kw)

    def stats(self):
        return H.get_stats(self.sport)

    def reload(self, text=None):
        """Write the file, SIGHUP, wait until the generation moved on."""
        gen = self.stats()['generation']
        h.write_file('proxy.ini', text or self.text())
        self.b.signal(signal.SIGHUP)
        H.poll_until(lambda: self.stats()['generation'] == gen + 1, 10,
                     'generation %d' % (gen + 1))
        return time.monotonic()

    def old_workers(self):
        st = self.stats()
        return [w for w in st['workers'] if w['generation'] <
                st['generation']]

    def handed_over(self):
        return sum(f['handed_over'] for f in self.stats()['frontends'])

    def wait_active(self, n, timeout=10):
        H.poll_until(lambda: self.stats()['connections']['active'] == n,
                     timeout, '%d active connections in /stats' % n)


def echo_servers(n, options=()):
    return ['e%d 127.0.0.1:%d' % (i, h.start_backend(
        'echo', name='e%d' % i, options=options).port) for i in range(n)]


# ------------------------------------------------------------- cases

@h.case(timeout=150)
def streams_survive_ten_reloads():
    # log_level debug: the log says what each taken-over session carried
    p = Proxy(echo_servers(2), workers=2, log_level='debug')
    stop = threading.Event()
    n = 24
    streams = start_streams(p.port, n, stop)
    try:
        p.wait_active(n)
        worst = 0.0
        for i in range(10):
            t = p.reload()
            # The old generation is gone well before the next reload.
            H.poll_until(lambda: not p.old_workers(), OLD_GONE_S,
                         'the old generation to exit (reload %d)' % (i + 1))
            worst = max(worst, time.monotonic() - t)
            p.wait_active(n, timeout=3)
        print('  10 reloads, %d live streams: slowest old generation '
              'gone %.2fs after its reload' % (n, worst))
        H.poll_until(lambda: p.handed_over() == 10 * n, 3,
                     'handed_over to reach %d' % (10 * n))
    finally:
        results = finish(streams, stop)
    check_all_ok(results)
    sent = sum(len(s.sent) for s in streams)
    print('  %d streams, %d bytes each way, all intact' % (n, sent))
    check(sent > n * 10000, 'too little data to mean anything: %d' % sent)
    H.poll_until(lambda: p.stats()['connections']['active'] == 0, 5,
                 'every connection closed')
    p.b.check_clean_exits()
    # The slow readers filled every buffer: some sessions moved with
    # bytes read and not yet written, each way, and none was lost.
    carried = re.findall(r'taken over: (\d+) bytes on their way to the '
                         r'server, (\d+) to the client', p.b.log())
    up = sum(1 for a, b in carried if int(a) > 0)
    down = sum(1 for a, b in carried if int(b) > 0)
    print('  %d sessions taken over, %d with bytes for the server, %d '
          'with bytes for the client' % (len(carried), up, down))
    check(len(carried) == 10 * n, 'the log shows %d sessions taken over'
          % len(carried))
    check(down > 0, 'no session moved with bytes on their way to its '
          'slow reader: the test did not fill the buffers')


@h.case(timeout=90)
def removed_server_sessions_stay():
    servers = echo_servers(2)
    p = Proxy(servers, workers=1)
    stop = threading.Event()
    streams = start_streams(p.port, 8, stop)
    try:
        p.wait_active(8)
        per = {b['name']: b for b in p.stats()['backends'][0]['servers']}
        on_e1 = per['e1']['active']
        check(on_e1 == 4, 'e1 has %d of 8 sessions' % on_e1)
        p.servers = servers[:1]         # e1 removed
        p.reload()
        H.poll_until(lambda: p.handed_over() == 8 - on_e1, 3,
                     '%d sessions handed over' % (8 - on_e1))
        old = p.old_workers()
        check(len(old) == 1, 'old workers: %r' % old)
        ho = old[0].get('handover')
        check(ho and ho['staying']['server'] == on_e1 and
              old[0]['active'] == on_e1,
              'the old worker should say it keeps %d sessions of the '
              'removed server: %r' % (on_e1, old[0]))
    finally:
        results = finish(streams, stop)
    check_all_ok(results)
    H.poll_until(lambda: not p.old_workers(), 5,
                 'the old worker to exit once its sessions ended')


@h.case(timeout=90)
def drained_server_sessions_stay():
    """A server drained through the API keeps its sessions on the old
    generation across a reload; the others move."""
    p = Proxy(echo_servers(2), workers=1)
    stop = threading.Event()
    streams = start_streams(p.port, 8, stop)
    try:
        p.wait_active(8)
        c = http.client.HTTPConnection(H.LOCALHOST, p.sport, timeout=5)
        c.request('POST', '/api/backends/app/servers/e1',
                  body=json.dumps({'state': 'drain'}),
                  headers={'Content-Type': 'application/json'})
        r = c.getresponse()
        check(r.status == 200, 'drain e1: %d %r' % (r.status, r.read()))
        c.close()
        per = {b['name']: b for b in p.stats()['backends'][0]['servers']}
        on_e1 = per['e1']['active']
        check(per['e1']['status'] == 'drain' and on_e1 == 4,
              'e1: %r' % per['e1'])
        p.reload()
        H.poll_until(lambda: p.handed_over() == 8 - on_e1, 3,
                     '%d sessions handed over' % (8 - on_e1))
        old = p.old_workers()
        check(len(old) == 1 and old[0]['active'] == on_e1 and
              old[0]['handover']['staying']['server'] == on_e1,
              'the old worker should keep the drained server\'s %d: %r'
              % (on_e1, old))
    finally:
        results = finish(streams, stop)
    check_all_ok(results)


@h.case(timeout=90)
def tls_sessions_stay():
    cert, key = h.path('cert.pem'), h.path('key.pem')
    r = subprocess.run(['openssl', 'req', '-x509', '-newkey', 'rsa:2048',
                        '-nodes', '-keyout', key, '-out', cert, '-days',
                        '2', '-subj', '/CN=localhost'],
                       capture_output=True, timeout=60)
    if r.returncode != 0:
        raise H.Skip('openssl cannot make a certificate: %r' % r.stderr)
    ctx = ssl.create_default_context(cafile=cert)
    ctx.check_hostname = False
    p = Proxy(echo_servers(1), workers=1, tls=(cert, key))
    stop = threading.Event()
    streams = start_streams(p.port, 4, stop, tls_ctx=ctx)
    try:
        p.wait_active(4)
        p.reload()
        H.poll_until(lambda: p.old_workers() and
                     (p.old_workers()[0].get('handover') or {}).get(
                         'staying', {}).get('tls') == 4, 3,
                     'the old worker to say it keeps 4 TLS sessions')
        check(p.handed_over() == 0, 'a TLS session was handed over')
    finally:
        results = finish(streams, stop)
    check_all_ok([r for r in results])


@h.case(timeout=120)
def reload_during_reload():
    """SIGHUP again while the first reload's hand-over may be running (the
    master handles signals one at a time; two close together may also
    merge into one reload, which is fine: it is a signal)."""
    p = Proxy(echo_servers(2), workers=2)
    stop = threading.Event()
    n = 16
    streams = start_streams(p.port, n, stop)
    try:
        p.wait_active(n)
        for delay in (0, 0.001, 0.002, 0.005, 0.01):
            gen = p.stats()['generation']
            h.write_file('proxy.ini', p.text())
            p.b.signal(signal.SIGHUP)
            time.sleep(delay)
            p.b.signal(signal.SIGHUP)
            H.poll_until(lambda: p.stats()['generation'] > gen, 10,
                         'a reload')
            H.poll_until(lambda: not p.old_workers(), OLD_GONE_S,
                         'the old generations to exit')
            p.wait_active(n, timeout=3)
    finally:
        results = finish(streams, stop)
    check_all_ok(results)


def new_worker_pid(p, old):
    """The first worker pid not in OLD, as soon as it exists."""
    return H.poll_until(lambda: next((w for w in p.b.workers()
                                      if w not in old), None), 5,
                        'a new worker')


@h.case(timeout=120)
def kill_receiving_worker_mid_handover():
    p = Proxy(echo_servers(2), workers=2)
    stop = threading.Event()
    n = 40
    streams = start_streams(p.port, n, stop)
    fds_before = H.fd_count(p.b.pid)
    try:
        p.wait_active(n)
        old = set(p.b.workers())
        h.write_file('proxy.ini', p.text())
        p.b.signal(signal.SIGHUP)
        victim = new_worker_pid(p, old)
        os.kill(victim, signal.SIGKILL)
        H.poll_until(lambda: not p.old_workers(), 5,
                     'the old generation to exit')
        p.b.wait_workers(2, exclude=[victim])
    finally:
        results = finish(streams, stop)
    check_prefixes(results)
    ok = results.count('ok')
    print('  %d streams intact, %d cut with the killed worker' % (
        ok, n - ok))
    check(ok >= n // 4, 'only %d of %d streams survived' % (ok, n))
    H.poll_until(lambda: H.fd_count(p.b.pid) <= fds_before, 5,
                 'the master back to %d descriptors' % fds_before)


def stopped_sender(kill):
    """One old worker is stopped (SIGSTOP) when the reload asks for its
    sessions: the other's move at once. Then it is killed (its sessions
    go with it, never half-moved or mangled) or continued (it answers
    late, and its sessions move then)."""
    p = Proxy(echo_servers(2), workers=2)
    stop = threading.Event()
    n = 20
    streams = start_streams(p.port, n, stop)
    fds_before = H.fd_count(p.b.pid)
    try:
        p.wait_active(n)
        old = p.b.workers()
        os.kill(old[0], signal.SIGSTOP)
        p.reload()
        H.poll_until(lambda: [w['pid'] for w in p.old_workers()] ==
                     [old[0]], OLD_GONE_S, 'the running old worker to exit')
        held = p.old_workers()[0]['active']
        check(held > 0, 'the stopped worker holds nothing')
        os.kill(old[0], signal.SIGKILL if kill else signal.SIGCONT)
        H.poll_until(lambda: not p.old_workers(), OLD_GONE_S,
                     'the stopped old worker to go')
        p.wait_active(n - held if kill else n, timeout=3)
    finally:
        results = finish(streams, stop)
    check_prefixes(results)
    ok = results.count('ok')
    print('  %s: %d streams intact, %d cut' % (
        'killed' if kill else 'continued', ok, n - ok))
    check(ok == (n - held if kill else n), '%d streams intact, want %d'
          % (ok, n - held if kill else n))
    H.poll_until(lambda: H.fd_count(p.b.pid) <= fds_before, 5,
                 'the master back to %d descriptors' % fds_before)


@h.case(timeout=120)
def sender_killed_while_asked():
    stopped_sender(kill=True)


@h.case(timeout=120)
def sender_answers_late():
    stopped_sender(kill=False)


@h.case(timeout=90)
def replaced_worker_gets_its_share():
    """A worker dies and its replacement starts empty: the survivor hands
    it sessions until both hold about as many."""
    p = Proxy(echo_servers(2), workers=2)
    stop = threading.Event()
    n = 20
    streams = start_streams(p.port, n, stop)
    try:
        p.wait_active(n)
        time.sleep(1.1)     # lived long enough: replaced without back-off
        victim = p.b.workers()[0]
        os.kill(victim, signal.SIGKILL)
        p.b.wait_workers(2, exclude=[victim])

        def shares():
            ws = [w for w in p.stats()['workers']
                  if w['state'] == 'running']
            return len(ws) == 2 and sorted(w['active'] for w in ws)
        got = H.poll_until(lambda: shares() and min(shares()) > 0 and
                           shares(), 5, 'the replacement to get sessions')
        check(abs(got[0] - got[1]) <= 1 and sum(got) > 0,
              'shares after the replacement: %r' % got)
        print('  after the replacement: %r sessions per worker' % got)
    finally:
        results = finish(streams, stop)
    check_prefixes(results)
    ok = results.count('ok')
    check(ok == sum(got), '%d streams intact, want the %d that lived'
          % (ok, sum(got)))


@h.case(timeout=90)
def more_workers_on_reload_share_the_sessions():
    """From one worker to three: the sessions it held spread over all
    three, instead of staying where they were accepted."""
    p = Proxy(echo_servers(1), workers=1)
    stop = threading.Event()
    n = 12
    streams = start_streams(p.port, n, stop)
    try:
        p.wait_active(n)
        p.kw['workers'] = 3
        p.reload()
        H.poll_until(lambda: not p.old_workers(), OLD_GONE_S,
                     'the old worker to exit')

        def shares():
            ws = p.stats()['workers']
            return len(ws) == 3 and sorted(w['active'] for w in ws)
        got = H.poll_until(lambda: shares() == [4, 4, 4] and shares(), 3,
                           'four sessions on each of the three workers')
        print('  one worker to three: %r sessions each' % got)
    finally:
        results = finish(streams, stop)
    check_all_ok(results)


@h.case(timeout=120)
def drain_waits_for_room_on_a_full_channel():
    """The reload's CHAN_DRAIN finds a worker's channel full (the worker
    is stopped while the master keeps handing it sockets): it is sent
    again once there is room, not replaced by a SIGTERM, which would make
    the worker drain on its own and hand nothing over."""
    p = Proxy(echo_servers(1), workers=2)
    stop = threading.Event()
    n = 6
    streams = start_streams(p.port, n, stop)
    try:
        p.wait_active(n)
        a = p.b.workers()[0]
        os.kill(a, signal.SIGSTOP)
        # Sockets for it pile up on its channel until it is full.
        socks = []
        for _ in range(1500):
            try:
                socks.append(H.connect(p.port, timeout=5))
            except OSError:
                break
        p.reload()
        os.kill(a, signal.SIGCONT)
        for c in socks:
            c.close()
        H.poll_until(lambda: not p.old_workers(), 5,
                     'the old workers to hand over and exit')
        # (with the streams, some of those sockets' sessions move too)
        H.poll_until(lambda: p.handed_over() >= n, 3,
                     'at least the %d streams handed over' % n)
        check('drains on its own' not in p.b.log(),
              'a worker drained on its own:\n%s' % p.b.log_tail())
    finally:
        results = finish(streams, stop)
    check_all_ok(results)


@h.case(timeout=90)
def stop_while_sessions_on_their_way():
    """The master stops (SIGTERM) while an old worker still holds credit:
    what it sends then goes back to it, and finishes there; the master
    exits 0 once every stream is done."""
    p = Proxy(echo_servers(1), workers=1, drain='30s')
    stop = threading.Event()
    n = 6
    streams = start_streams(p.port, n, stop)
    try:
        p.wait_active(n)
        old = p.b.workers()[0]
        os.kill(old, signal.SIGSTOP)
        p.reload()
        p.b.signal(signal.SIGTERM)
        H.poll_until(lambda: H.try_connect(p.port) == 'refused', 5,
                     'the listener to close')
        os.kill(old, signal.SIGCONT)
    finally:
        results = finish(streams, stop)
    check_all_ok(results)
    rc = p.b.wait_exit(10)
    check(rc == 0, 'the master exited with %r' % rc)


@h.case(timeout=60)
def handover_off_sessions_stay():
    p = Proxy(echo_servers(1), workers=1, handover='off')
    stop = threading.Event()
    streams = start_streams(p.port, 4, stop)
    try:
        p.wait_active(4)
        p.reload()
        time.sleep(0.5)     # time a hand-over would take: nothing moves
        old = p.old_workers()
        check(len(old) == 1 and old[0]['active'] == 4 and
              'handover' not in old[0],
              'with handover = off the old worker keeps its 4: %r' % old)
        check(p.handed_over() == 0, 'something was handed over')
    finally:
        results = finish(streams, stop)
    check_all_ok(results)


if __name__ == '__main__':
    h.run()
