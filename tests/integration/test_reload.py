#!/usr/bin/python3
"""test_reload.py -- SIGHUP reload under load and its corner cases
(listeners kept, moved, added servers, invalid files, draining and
drain_timeout of the old generation, kill -9 during drain), the
acknowledged hand-off (a stopped worker's queued sockets re-dispatched),
SIGUSR1 log reopening, the pidfile and `user`."""

import os
import random
import re
import signal
import socket
import sys
import threading
import time

sys.dont_write_bytecode = True  # the source tree may be read-only
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402
from harness import check  # noqa: E402

h = H.Harness('test_reload', file_timeout=120)


# ------------------------------------------------------------- helpers

def conf(fronts, servers, sport, workers=2, drain='10s', extra_global=''):
    """A proxy.ini with [stats] on SPORT, frontends FRONTS = [(name, port)]
    all served by backend 'app' with SERVERS ('NAME HOST:PORT')."""
    lines = ['[global]',
             'workers = %d' % workers,
             'dispatch = roundrobin',
             'drain_timeout = %s' % drain,
             'log_level = info',
             extra_global,
             '',
             '[stats]',
             'listen = 127.0.0.1:%d' % sport,
             '']
    for name, port in fronts:
        lines += ['[frontend %s]' % name,
                  'listen = 127.0.0.1:%d' % port,
                  'backend = app',
                  'timeout_idle = 30s',
                  '']
    lines += ['[backend app]', 'balance = roundrobin']
    lines += ['server = %s' % s for s in servers]
    lines += ['connect_timeout = 1s', 'retries = 1', '']
    return '\n'.join(lines)


class Proxy:
    """A baton started with conf(); remembers its ports and config args."""

    def __init__(self, servers, nfronts=1, **kw):
        self.sport = H.free_port()
        self.fronts = [('web' if i == 0 else 'f%d' % i, H.free_port())
                       for i in range(nfronts)]
        self.servers = list(servers)
        self.kw = kw
        self.b = h.start_baton(self.text())
        self.port = self.fronts[0][1]

    def text(self):
        return conf(self.fronts, self.servers, self.sport, **self.kw)

    def stats(self):
        return H.get_stats(self.sport)

    def write(self, text=None):
        with open(self.b.config, 'w') as f:
            f.write(self.text() if text is None else text)

    def reload(self, text=None, timeout=5.0):
        """Write the config (TEXT or the current one), SIGHUP, and wait
        until /stats shows the next generation. Returns that generation."""
        want = self.stats()['generation'] + 1
        self.write(text)
        self.b.signal(signal.SIGHUP)
        H.poll_until(lambda: self.stats()['generation'] >= want, timeout,
                     '/stats generation %d after SIGHUP' % want)
        g = self.stats()['generation']
        check(g == want, 'generation %d after one SIGHUP, want %d'
              % (g, want))
        return g

    def workers_by(self, **match):
        """/stats workers whose fields equal MATCH."""
        return [w for w in self.stats()['workers']
                if all(w.get(k) == v for k, v in match.items())]

    def wait_gen_running(self, gen, n, timeout=5.0):
        """Wait until N workers of generation GEN are 'running'."""
        def ready():
            ws = self.workers_by(generation=gen, state='running')
            return ws if len(ws) == n else None
        return H.poll_until(ready, timeout, '%d running workers of '
                            'generation %d' % (n, gen))


def echo_servers(n=1, prefix='e'):
    bs = [h.start_backend('echo', name='%s%d' % (prefix, i))
          for i in range(n)]
    return ['%s 127.0.0.1:%d' % (e.name, e.port) for e in bs]


def holders(b, conns):
    """{socket: worker pid} for connections already echoed once."""
    return {c: H.poll_until(lambda: b.holder_of(c), 3,
                            'a worker holding the connection')
            for c in conns}


def name_of(port):
    """Connect, read the backend's name line, echo once, close."""
    s = H.connect(port)
    try:
        line = H.recv_line(s, timeout=5).decode().strip()
        H.echo_ok(s, b'ping\n')
    finally:
        s.close()
    return line


def log_lines(path):
    try:
        with open(path, errors='replace') as f:
            return f.read().splitlines()
    except OSError:
        return []


def log_pid(line):
    m = re.search(r' baton\[(\d+)\] ', line)
    return int(m.group(1)) if m else None


# ------------------------------------------------------------ load clients

class Load:
    """THREADS clients each doing connect, send, echo, close in a loop
    until stop(); counts successes, failures and wrong bytes."""

    def __init__(self, port, threads=6, maxlen=4096):
        self.port = port
        self.maxlen = maxlen
        self.ok = 0
        self.failed = 0
        self.wrong = 0
        self.errors = []
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.threads = [threading.Thread(target=self.run, args=(i,),
                                         daemon=True)
                        for i in range(threads)]
        for t in self.threads:
            t.start()

    def note(self, kind, what):
        with self.lock:
            if kind == 'failed':
                self.failed += 1
            else:
                self.wrong += 1
            if len(self.errors) < 10:
                self.errors.append('%s %.3f: %s'
                                   % (kind, time.monotonic(), what))

    def one(self, rng, tid, n):
        head = b'%d:%d:' % (tid, n)
        payload = head + rng.randbytes(rng.randint(1, self.maxlen))
        try:
            s = H.connect(self.port, timeout=5)
        except OSError as e:
            self.note('failed', 'connect: %r' % e)
            return
        try:
            s.sendall(payload)
            got = bytearray()
            while len(got) < len(payload):
                data = s.recv(len(payload) - len(got))
                if not data:
                    break
                got += data
            if len(got) < len(payload):
                self.note('failed', 'EOF after %d of %d bytes'
                          % (len(got), len(payload)))
            elif bytes(got) != payload:
                self.note('wrong', 'sent %r... got %r...'
                          % (payload[:24], bytes(got[:24])))
            else:
                with self.lock:
                    self.ok += 1
        except OSError as e:
            self.note('failed', 'exchange: %r' % e)
        finally:
            s.close()

    def run(self, tid):
        rng = random.Random(tid)
        n = 0
        while not self.done.is_set():
            self.one(rng, tid, n)
            n += 1

    def stop(self):
        self.done.set()
        for t in self.threads:
            t.join(10)
        check(not any(t.is_alive() for t in self.threads),
              'a load thread is stuck')

    def report(self):
        return ('%d ok, %d failed, %d wrong bytes'
                % (self.ok, self.failed, self.wrong))


# ------------------------------------------------------------------ cases

@h.case
def ten_reloads_under_load():
    p = Proxy(echo_servers(2), workers=2, drain='10s')
    load = Load(p.port, threads=6)
    try:
        time.sleep(0.3)
        t0 = time.monotonic()
        for i in range(10):
            # Alternate a harmless change (timeout_idle) and the same file.
            text = p.text()
            if i % 2 == 0:
                text = text.replace('timeout_idle = 30s',
                                    'timeout_idle = 31s')
            p.reload(text)
            time.sleep(0.15)
        dt = time.monotonic() - t0
        time.sleep(0.3)
    finally:
        load.stop()
    print('  10 reloads in %.2fs under load: %s' % (dt, load.report()))
    check(load.failed == 0 and load.wrong == 0,
          '%s; first errors: %r' % (load.report(), load.errors))
    check(load.ok > 100, 'too little load to mean anything: %s'
          % load.report())
    st = p.stats()
    check(st['generation'] == 11 and st['reloads'] == 10 and
          st['reload_failures'] == 0,
          'generation %r reloads %r reload_failures %r, want 11, 10, 0'
          % (st['generation'], st['reloads'], st['reload_failures']))
    # The old generations drain (their connections were short) and go.
    def only_new():
        ws = p.stats()['workers']
        return len(ws) == 2 and all(w['generation'] == 11 and
                                    w['state'] == 'running' for w in ws)
    H.poll_until(only_new, 5, 'only the 2 workers of generation 11 in '
                 '/stats')
    p.b.wait_workers(2, timeout=5)


@h.case
def reload_adds_a_server():
    a1 = h.start_backend('name', name='a1')
    a2 = h.start_backend('name', name='a2')
    p = Proxy(['a1 127.0.0.1:%d' % a1.port], workers=2)
    before = [name_of(p.port) for _ in range(6)]
    check(set(before) == {'a1'}, 'before the reload: %r' % before)
    p.servers.append('a2 127.0.0.1:%d' % a2.port)
    p.reload()
    after = [name_of(p.port) for _ in range(20)]
    n2 = after.count('a2')
    print('  after the reload: a1 %d, a2 %d of 20' % (after.count('a1'), n2))
    check(set(after) <= {'a1', 'a2'}, 'unknown servers: %r' % after)
    check(n2 >= 5, 'the added server a2 got %d of 20 connections: %r'
          % (n2, after))

    def a2_total():
        for be in p.stats()['backends']:
            for s in be['servers']:
                if s['name'] == 'a2' and s['total'] >= n2:
                    return s
        return None
    H.poll_until(a2_total, 3, '/stats to show server a2 with total >= %d'
                 % n2)


def listen_inode(port, pid):
    mine = H.socket_inodes(pid)
    ino = [r['inode'] for r in H.tcp_table()
           if r['local_port'] == port and r['state'] == H.TCP_LISTEN
           and r['inode'] in mine]
    return ino[0] if ino else None


@h.case
def reload_moves_one_listener_keeps_the_other():
    p = Proxy(echo_servers(1), nfronts=2, workers=2)
    web, old_alt = p.fronts[0][1], p.fronts[1][1]
    ino = listen_inode(web, p.b.pid)
    check(ino, 'no LISTEN socket of the master on %d' % web)
    for port in (web, old_alt):
        s = H.connect(port)
        H.echo_ok(s, b'before %d\n' % port)
        s.close()
    load = Load(web, threads=3)
    try:
        time.sleep(0.2)
        new_alt = H.free_port()
        p.fronts[1] = (p.fronts[1][0], new_alt)
        p.reload()
        time.sleep(0.3)
    finally:
        load.stop()
    print('  web during the reload: %s' % load.report())
    check(load.failed == 0 and load.wrong == 0,
          'the unchanged listener failed during the reload: %s; %r'
          % (load.report(), load.errors))
    check(load.ok > 10, 'too little load on web: %s' % load.report())
    r = H.try_connect(old_alt)
    check(r == 'refused', 'old port %d after the reload: %s, want refused'
          % (old_alt, r))
    s = H.connect(new_alt)
    try:
        H.echo_ok(s, b'moved\n')
    finally:
        s.close()
    ino2 = listen_inode(web, p.b.pid)
    check(ino2 == ino, 'listener on %d is a new socket (inode %r, was %r)'
          % (web, ino2, ino))
    fr = {f['name']: f['listen'] for f in p.stats()['frontends']}
    check(fr.get('f1') == ['127.0.0.1:%d' % new_alt],
          '/stats frontends: %r' % fr)


@h.case
def bind_failure_aborts_reload():
    # A new listen address that cannot be bound (someone else holds the
    # port) abandons the whole reload: nothing changes, nothing is lost.
    p = Proxy(echo_servers(1), nfronts=1, workers=2)
    before = p.stats()
    pids = sorted(w['pid'] for w in before['workers'])
    taken = socket.socket()
    taken.bind((H.LOCALHOST, 0))
    taken.listen(1)
    busy = taken.getsockname()[1]
    try:
        p.fronts.append(('f1', busy))
        p.write()
        p.b.signal(signal.SIGHUP)
        H.poll_until(lambda: p.stats()['reload_failures'] == 1, 5.0,
                     'reload_failures 1 after a reload that cannot bind')
        st = p.stats()
        check(st['generation'] == before['generation'] and
              st['reloads'] == before['reloads'],
              'generation %d, reloads %d after a failed reload'
              % (st['generation'], st['reloads']))
        check(sorted(w['pid'] for w in st['workers']) == pids,
              'workers changed: %r, were %r'
              % ([w['pid'] for w in st['workers']], pids))
        check([f['name'] for f in st['frontends']] == ['web'],
              'frontends after the failed reload: %r' % st['frontends'])
        s = H.connect(p.port)
        try:
            H.echo_ok(s, b'still serving\n')
        finally:
            s.close()
        check(any('cannot listen' in l and str(busy) in l
                  for l in log_lines(p.b.log_path)),
              'no "cannot listen" line naming port %d in the log' % busy)
    finally:
        taken.close()
    # Once the port is free, the same file loads.
    p.reload()
    s = H.connect(busy)
    try:
        H.echo_ok(s, b'now bound\n')
    finally:
        s.close()


@h.case
def invalid_file_keeps_old_config():
    p = Proxy(echo_servers(1), workers=2)
    pids = p.b.workers()
    c = H.connect(p.port)
    try:
        H.echo_ok(c, b'before\n')
        text = p.text().replace('[global]\n',
                                '[global]\nbogus_key = 1\n', 1)
        text = text.replace('server = e0 127.0.0.1:',
                            'server = zz 10.0.0.1:99999\nserver = e0 '
                            '127.0.0.1:', 1)
        lines = text.split('\n')
        bad1 = lines.index('bogus_key = 1') + 1
        bad2 = lines.index('server = zz 10.0.0.1:99999') + 1
        p.write(text)
        p.b.signal(signal.SIGHUP)
        H.poll_until(lambda: p.stats()['reload_failures'] == 1, 5,
                     'reload_failures to become 1')
        st = p.stats()
        check(st['generation'] == 1 and st['reloads'] == 0,
              'after an invalid file: generation %r reloads %r, want 1, 0'
              % (st['generation'], st['reloads']))
        H.echo_ok(c, b'old connection still served\n')
        for i in range(4):
            s = H.connect(p.port)
            H.echo_ok(s, b'new connection %d\n' % i)
            s.close()
        check(p.b.workers() == pids, 'workers changed: %r, were %r'
              % (p.b.workers(), pids))
        H.poll_until(lambda: 'reload failed' in p.b.log(), 3,
                     '"reload failed" in the log')
        log = p.b.log()
        for line, what in ((bad1, 'bogus_key'), (bad2, '99999')):
            pat = re.compile(r'proxy\.ini:%d: .*%s' % (line, what))
            check(pat.search(log), 'no error "proxy.ini:%d: ...%s" in the '
                  'log; log tail:\n%s' % (line, what, p.b.log_tail(10)))
        # A valid file afterwards reloads as usual.
        p.reload()
        st = p.stats()
        check(st['reload_failures'] == 1 and st['reloads'] == 1,
              'after a valid reload: reloads %r reload_failures %r'
              % (st['reloads'], st['reload_failures']))
        H.echo_ok(c, b'and after a good reload\n')
    finally:
        c.close()


@h.case
def long_connection_survives_reload_draining_listed():
    p = Proxy(echo_servers(1), workers=2, drain='10s',
              extra_global='handover = off')
    c = H.connect(p.port)
    try:
        H.echo_ok(c, b'before the reload\n')
        w = holders(p.b, [c])[c]
        p.reload()
        p.wait_gen_running(2, 2)

        def listed():
            ws = p.stats()['workers']
            old = [x for x in ws if x['generation'] == 1]
            return ws if ([x['pid'] for x in old] == [w] and
                          old[0]['state'] == 'draining') else None
        ws = H.poll_until(listed, 3, 'only worker %d of generation 1 listed, '
                          'state draining' % w)
        print('  workers: %r' % [(x['pid'], x['generation'], x['state'])
                                 for x in ws])
        for i in range(3):
            H.echo_ok(c, b'after the reload %d\n' % i)
            time.sleep(0.1)
        check(H.proc_alive(w), 'draining worker %d exited with a '
              'connection open' % w)
        check([x['state'] for x in p.workers_by(pid=w)] == ['draining'],
              'worker %d in /stats: %r' % (w, p.workers_by(pid=w)))
        s = H.connect(p.port)
        H.echo_ok(s, b'a new connection\n')
        check(holders(p.b, [s])[s] != w, 'a new connection went to the '
              'draining worker %d' % w)
        s.close()
    finally:
        c.close()
    t0 = time.monotonic()
    H.poll_until(lambda: not H.proc_alive(w), 3,
                 'draining worker %d to exit once its connection closed' % w)
    H.poll_until(lambda: not p.workers_by(pid=w), 3,
                 'worker %d to leave /stats' % w)
    print('  old worker gone %.2fs after the close'
          % (time.monotonic() - t0))
    ws = p.stats()['workers']
    check(len(ws) == 2 and all(x['generation'] == 2 for x in ws),
          'workers after the drain: %r' % ws)


@h.case
def drain_timeout_closes_old_connection():
    p = Proxy(echo_servers(1), workers=2, drain='1s',
              extra_global='handover = off')
    c = H.connect(p.port)
    try:
        H.echo_ok(c, b'before\n')
        w = holders(p.b, [c])[c]
        t0 = time.monotonic()
        p.reload()
        H.echo_ok(c, b'still open during the drain\n')
        how, _ = H.wait_closed(c, 4)
        dt = time.monotonic() - t0
    finally:
        c.close()
    print('  old connection ended (%s) %.2fs after SIGHUP' % (how, dt))
    check(how in ('eof', 'reset'), 'old connection still open %.1fs after '
          'SIGHUP with drain_timeout 1s' % dt)
    check(dt >= 0.8, 'closed %.2fs after SIGHUP, before drain_timeout (1s)'
          % dt)
    H.poll_until(lambda: not H.proc_alive(w), 2,
                 'old worker %d to exit after drain_timeout' % w)
    H.poll_until(lambda: not p.workers_by(pid=w), 2,
                 'old worker %d to leave /stats' % w)
    log = p.b.log()
    check('past drain_timeout: killing' not in log,
          'the master had to SIGKILL the old worker:\n%s' % p.b.log_tail(10))
    check(re.search(r'pid %d, generation 1\) finished' % w, log),
          'no "finished" line for worker %d:\n%s' % (w, p.b.log_tail(10)))


@h.case
def kill9_of_draining_worker_not_respawned():
    p = Proxy(echo_servers(1), workers=2, drain='10s',
              extra_global='handover = off')
    conns = []
    try:
        for i in range(6):
            c = H.connect(p.port)
            conns.append(c)
            H.echo_ok(c, b'conn %d\n' % i)
        held = holders(p.b, conns)
        old = sorted(set(held.values()))
        check(len(old) == 2, 'connections held by %r, want both workers'
              % old)
        p.reload()
        new = sorted(x['pid'] for x in p.wait_gen_running(2, 2))
        victim, other = old
        os.kill(victim, signal.SIGKILL)
        for c in conns:
            if held[c] == victim:
                how, _ = H.wait_closed(c, 3)
                check(how in ('eof', 'reset'), 'connection of the killed '
                      'worker still open: %s' % how)
        # The clients see the close before the master reaps the worker:
        # /stats may list it until then.
        H.poll_until(lambda: victim not in {x['pid'] for x in
                                            p.stats()['workers']}, 5,
                     'the killed worker to leave /stats')
        # Watch for a respawn for a while: the process list and /stats.
        deadline = time.monotonic() + 1.0
        allowed = set(new) | {other}
        while time.monotonic() < deadline:
            kids = set(p.b.workers())
            check(kids <= allowed, 'new worker pid(s) %r after kill -9 of '
                  'draining worker %d (old %r, new %r)'
                  % (sorted(kids - allowed), victim, old, new))
            listed = {x['pid'] for x in p.stats()['workers']}
            check(listed <= allowed, '/stats lists %r after the kill, want '
                  'a subset of %r' % (sorted(listed), sorted(allowed)))
            time.sleep(0.05)
        check(not H.proc_alive(victim), 'killed worker %d alive' % victim)
        ws = p.stats()['workers']
        check(sorted((x['pid'], x['generation'], x['state']) for x in ws) ==
              sorted([(other, 1, 'draining')] +
                     [(n, 2, 'running') for n in new]),
              '/stats workers after the kill: %r' % ws)
        for i, c in enumerate(conns):
            if held[c] == other:
                H.echo_ok(c, b'survivor %d\n' % i)
        for i in range(4):
            s = H.connect(p.port)
            H.echo_ok(s, b'fresh %d\n' % i)
            s.close()
    finally:
        for c in conns:
            c.close()
    H.poll_until(lambda: not H.proc_alive(other), 3,
                 'the other old worker %d to exit after its last close'
                 % other)
    now = p.b.wait_workers(2, timeout=3)
    check(sorted(now) == new, 'workers at the end %r, want the new '
          'generation untouched %r' % (now, new))
    log = p.b.log()
    check(not re.search(r'worker \d+ restarts in', log),
          'a respawn was scheduled:\n%s' % p.b.log_tail(10))


def unanswered(clients, settle=0.4, limit=3.0):
    """[True if nothing arrived yet] per client, once the answer stopped
    changing for SETTLE seconds (at most LIMIT)."""
    def peek():
        out = []
        for c in clients:
            c.settimeout(0.02)
            try:
                out.append(not c.recv(1, socket.MSG_PEEK))
            except socket.timeout:
                out.append(True)
        return out
    waiting, since = peek(), time.monotonic()
    deadline = since + limit
    while time.monotonic() < deadline:
        time.sleep(0.05)
        now = peek()
        if now != waiting:
            waiting, since = now, time.monotonic()
        elif time.monotonic() - since >= settle:
            break
    return waiting


@h.case
def stopped_worker_sockets_redispatched():
    servers = []
    for n in ('n0', 'n1'):
        b = h.start_backend('name', name=n)
        servers.append('%s 127.0.0.1:%d' % (n, b.port))
    p = Proxy(servers, workers=2, drain='10s')
    victim, other = p.b.workers()
    check(p.stats()['redispatched'] == 0, 'redispatched not 0 at start')
    os.kill(victim, signal.SIGSTOP)
    clients = []
    try:
        for i in range(20):
            c = H.connect(p.port)
            c.sendall(b'hello %d\n' % i)
            clients.append(c)
        # Those on the live worker are served; the others wait.
        waiting = unanswered(clients)
        nwait = sum(waiting)
        print('  %d of 20 clients unanswered while worker %d is stopped'
              % (nwait, victim))
        check(nwait > 0, 'no client waits on the stopped worker %d: '
              'dispatch did not give it any' % victim)
        os.kill(victim, signal.SIGKILL)
        bad = []
        for i, c in enumerate(clients):
            try:
                line = H.recv_line(c, timeout=5).decode().strip()
                check(line in ('n0', 'n1'), 'client %d: name %r' % (i, line))
                got = H.recv_exact(c, len(b'hello %d\n' % i), timeout=5)
                check(got == b'hello %d\n' % i, 'client %d: echo %r'
                      % (i, got))
                H.echo_ok(c, b'and more %d\n' % i)
            except H.Failure as e:
                bad.append('client %d (%s): %s'
                           % (i, 'waiting' if waiting[i] else 'served', e))
        check(not bad, '%d of 20 clients not served after the kill: %s'
              % (len(bad), '; '.join(bad[:5])))
    finally:
        for c in clients:
            c.close()
    st = p.stats()
    print('  redispatched = %d (%d clients had waited)'
          % (st['redispatched'], nwait))
    check(st['redispatched'] > 0, '/stats redispatched is %r, want > 0'
          % st['redispatched'])
    now = p.b.wait_workers(2, timeout=5, exclude=[victim])
    check(other in now, 'the other worker %d was replaced too: %r'
          % (other, now))


@h.case
def sigusr1_reopens_moved_log_file():
    logf = h.path('baton.log')
    p = Proxy(echo_servers(1), workers=2,
              extra_global='log_file = %s\naccess_log = on' % logf)
    try:
        _sigusr1_case(p, logf)
    except H.Failure:
        for f in (logf, logf + '.1'):
            print('---- %s ----\n%s' % (f, '\n'.join(log_lines(f)[-15:])))
        raise


def _sigusr1_case(p, logf):
    workers = p.b.workers()

    def access_line(path, port, pids):
        for line in log_lines(path):
            if (' 127.0.0.1:%d ' % port) in line and log_pid(line) in pids:
                return line
        return None

    def one_conn():
        s = H.connect(p.port)
        port = s.getsockname()[1]
        H.echo_ok(s, b'log me\n')
        s.close()
        return port

    port = one_conn()
    H.poll_until(lambda: access_line(logf, port, workers), 3,
                 'an access log line from a worker in %s' % logf)
    os.rename(logf, logf + '.1')
    p.b.signal(signal.SIGUSR1)
    H.poll_until(lambda: os.path.exists(logf), 3,
                 'SIGUSR1 to create a new %s' % logf)
    H.poll_until(lambda: [ln for ln in log_lines(logf)
                          if 'log file reopened' in ln and
                          log_pid(ln) == p.b.pid], 3,
                 'the master\'s "log file reopened" in the new file')
    # Each worker writes its access lines to the new file.
    seen = set()
    for i in range(8):
        port = one_conn()
        line = H.poll_until(lambda: access_line(logf, port, workers), 3,
                            'the access line of connection %d in the new '
                            'file' % i)
        seen.add(log_pid(line))
        check(not access_line(logf + '.1', port, workers),
              'connection %d logged in the moved file' % i)
    check(seen == set(workers), 'access lines in the new file from %r, '
          'want every worker %r' % (sorted(seen), workers))
    # Workers forked after the reopen (a reload) log there too.
    p.reload()
    new = [x['pid'] for x in p.wait_gen_running(2, 2)]
    H.poll_until(lambda: [ln for ln in log_lines(logf)
                          if 'SIGHUP' in ln and log_pid(ln) == p.b.pid], 3,
                 'the master\'s SIGHUP line in the new file')
    port = one_conn()
    H.poll_until(lambda: access_line(logf, port, new), 3,
                 'a new-generation worker\'s access line in the new file')


def keepalive_get(sock, path='/stats', timeout=3.0):
    """One HTTP/1.1 GET on an open keep-alive SOCK: (status, body), or
    (None, why) when the connection ends before a full response."""
    sock.sendall(b'GET %s HTTP/1.1\r\nHost: baton\r\n\r\n' % path.encode())
    deadline = time.monotonic() + timeout
    buf = b''
    while True:
        head, sep, rest = buf.partition(b'\r\n\r\n')
        if sep:
            m = re.search(rb'(?im)^content-length:\s*(\d+)', head)
            if m and len(rest) >= int(m.group(1)):
                return int(head.split()[1]), rest[:int(m.group(1))]
        left = deadline - time.monotonic()
        if left <= 0:
            return None, 'no full response within %.1fs (got %r)' % (
                timeout, buf[:60])
        sock.settimeout(left)
        try:
            data = sock.recv(65536)
        except socket.timeout:
            continue
        except OSError as e:
            return None, repr(e)
        if not data:
            return None, 'EOF after %d bytes' % len(buf)
        buf += data


@h.case
def stats_connection_survives_fork():
    """An open keep-alive connection to [stats] must survive the master
    forking workers (a reload, a respawn): the children must not touch
    the master's HTTP connections."""
    p = Proxy(echo_servers(1), workers=2, drain='10s')
    results = []
    for what in ('SIGHUP', 'kill -9 of a worker'):
        c = H.connect(p.sport)
        try:
            status, body = keepalive_get(c)
            check(status == 200, 'first GET /stats: %r %r' % (status, body))
            if what == 'SIGHUP':
                p.reload()
                p.wait_gen_running(p.stats()['generation'], 2)
            else:
                old = p.b.workers()
                os.kill(old[0], signal.SIGKILL)
                p.b.wait_workers(2, timeout=5, exclude=[old[0]])
            time.sleep(0.2)
            status, body = keepalive_get(c)
            results.append((what, status, body if status is None else
                            'ok' if status == 200 else body[:60]))
        finally:
            c.close()
    print('  second GET on the kept-alive connection: %r' % results)
    bad = [r for r in results if r[1] != 200]
    check(not bad, 'a keep-alive /stats connection opened before a fork '
          'was cut: %s' % '; '.join('after %s: %s' % (w, why)
                                    for w, _, why in bad))


@h.case
def pidfile_written_and_removed():
    pidf = h.path('baton.pid')
    p = Proxy(echo_servers(1), workers=1,
              extra_global='pidfile = %s' % pidf)
    with open(pidf) as f:
        text = f.read()
    check(text == '%d\n' % p.b.pid, 'pidfile holds %r, want %r'
          % (text, '%d\n' % p.b.pid))
    p.reload()
    with open(pidf) as f:
        check(f.read() == text, 'pidfile changed by a reload')
    p.b.signal(signal.SIGTERM)
    rc = p.b.wait_exit(5)
    check(rc == 0, 'exit status %r after SIGTERM, want 0' % rc)
    check(not os.path.exists(pidf), 'pidfile %s still there after a clean '
          'exit' % pidf)


def proc_ids(pid):
    """(real uid, effective uid, real gid, effective gid) of PID."""
    with open('/proc/%d/status' % pid) as f:
        st = dict(ln.split(':', 1) for ln in f.read().splitlines()
                  if ':' in ln)
    uid = [int(x) for x in st['Uid'].split()]
    gid = [int(x) for x in st['Gid'].split()]
    return uid[0], uid[1], gid[0], gid[1]


@h.case
def workers_run_as_configured_user():
    if os.geteuid() != 0:
        raise H.Skip('not root: `user = nobody` needs baton started as '
                     'root to drop privileges')
    import pwd
    try:
        pw = pwd.getpwnam('nobody')
    except KeyError:
        raise H.Skip('no user "nobody" on this system')
    want = (pw.pw_uid, pw.pw_uid, pw.pw_gid, pw.pw_gid)
    p = Proxy(echo_servers(1), workers=2, extra_global='user = nobody')

    def check_ids(workers):
        check(proc_ids(p.b.pid)[:2] == (0, 0), 'master uid %r, want root'
              % (proc_ids(p.b.pid),))
        for w in workers:
            got = proc_ids(w)
            check(got == want, 'worker %d runs as uid/euid/gid/egid %r, '
                  'want %r (nobody)' % (w, got, want))
    check_ids(p.b.workers())
    s = H.connect(p.port)
    H.echo_ok(s, b'served by nobody\n')
    s.close()
    # New workers after a reload drop too; the master could still bind.
    p.fronts.append(('f1', H.free_port()))
    p.reload()
    new = [x['pid'] for x in p.wait_gen_running(2, 2)]
    check_ids(new)
    s = H.connect(p.fronts[1][1])
    H.echo_ok(s, b'new listener after reload\n')
    s.close()


if __name__ == '__main__':
    sys.exit(h.run())
