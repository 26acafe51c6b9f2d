#!/usr/bin/python3
"""test_chaos.py -- about a minute of faults injected from outside while
clients move checked bytes through baton (issue 9, "A chaos test").

Topology: baton with 3 workers, 3 frontends (fa, fb, fc), each served by
its own backend (ba, bb, bc) of 2-3 backend.py servers in `name` mode: a
server writes its name and a newline on connect, then echoes every byte
and half-closes on the client's EOF. The name line tells the client which
backend served it (a port serving the wrong backend is seen at once), and
a client stream continued on a second server connection shows up as a
second name line in the middle of the echo (corruption, not a
reconnection nobody noticed).

Clients (10 threads of short connections, 4 of long-lived ones):
  short: connect, send a random payload (0 to 256 KiB, log-uniform), half-
         close, read to EOF; the echo must be NAME\\n + the payload
         (SHA-256 compared, first differing offset reported);
  long:  2-6 s of small request/response rounds, each echo checked
         exactly, then half-close and EOF with no byte more.
Each connection ends either OK or visibly to its client (refused, reset,
EOF before the full echo) within its own time bound; a connection still
unfinished past its bound (a hang), a byte wrong, duplicated or extra, or
the wrong backend is a failure.

A chaos thread, at random intervals, draws from shuffled decks (so every
kind happens at least once per deck): SIGKILL a worker (running, or now
and then a draining one); SIGSTOP a worker and SIGKILL it while stopped
(its queued sockets are re-dispatched); SIGSTOP a worker for a moment
then SIGCONT; a cascade (two workers stopped, a lull in which no client
starts a connection, one SIGKILLed so its sockets are handed over partly
to the stopped one, then a reload before that one is continued, or it is
continued and SIGKILLed too: the hand-off of a hand-off); SIGKILL a
backend server and restart it on the same port; reload a valid file
(dispatch, timeout_idle, server order and frontend order varied); reload
a file with a syntax error (refused, nothing changes); reload a file
whose new listen port is busy (bound by the test; refused, nothing
changes), with the frontends reordered and sometimes new frontends on
free ports before it; reload a valid file with the frontends reordered.
After each reload every frontend is probed once (its port must still
reach its own backend).

When the chaos stops: the clients' connections are counted against
/stats (connections.total, the sum of the frontends' totals and each
frontend's total), every worker of every generation but the current ones
has exited, the master's descriptor count is back to its idle baseline,
a final round of clean connections all succeed, and SIGTERM ends baton
with status 0 and no process left.

The random choices come from one seed, printed first; BATON_CHAOS_SEED=N
replays the same choices (timing still differs). BATON_CHAOS_SECONDS
changes the chaos duration (default 60).
"""

import collections
import hashlib
import os
import random
import re
import selectors
import signal
import socket
import sys
import threading
import time
import traceback

sys.dont_write_bytecode = True  # the source tree may be read-only
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402
from harness import check  # noqa: E402

h = H.Harness('test_chaos', file_timeout=145)

CHAOS_S = float(os.environ.get('BATON_CHAOS_SECONDS') or 60)
NWORKERS = 3
DRAIN_S = 2
KILL_GRACE_S = 5            # baton's backstop past drain_timeout
GROUPS = (('fa', 'ba', 'a', 3), ('fb', 'bb', 'b', 2), ('fc', 'bc', 'c', 3))
SHORT_THREADS = 10
LONG_THREADS = 4
MAX_PAYLOAD = 256 * 1024
CONNECT_TIMEOUT = 10.0
SHORT_TIMEOUT = 15.0        # whole short connection, connect to EOF
LONG_SLACK = 15.0           # a long one: its planned duration + this
LONG_MIN_S, LONG_MAX_S = 2.0, 6.0
FINAL_ROUND = 30
FINAL_TIMEOUT = 10.0

VISIBLE = ('refused', 'connect_error', 'reset', 'eof_early')
FAILED = ('timeout', 'connect_timeout', 'corrupt', 'wrong_backend', 'error')

_print_lock = threading.Lock()


def say(msg):
    with _print_lock:
        print(msg)
        sys.stdout.flush()


# ------------------------------------------------------------------- stats

def get_stats(sport):
    """H.get_stats, patient: a request cut without an answer (a fork at
    the wrong moment) or refused is retried; three in a row fail the
    case."""
    return H.get_stats(sport, timeout=5.0, patient=True)


def fd_targets(pid):
    """{fd: readlink target}, sockets annotated with their TCP ports."""
    out = {}
    try:
        names = os.listdir('/proc/%d/fd' % pid)
    except OSError:
        return out
    tcp = {r['inode']: r for r in H.tcp_table()}
    for fd in names:
        try:
            t = os.readlink('/proc/%d/fd/%s' % (pid, fd))
        except OSError:
            continue
        m = re.match(r'socket:\[(\d+)\]$', t)
        if m and int(m.group(1)) in tcp:
            r = tcp[int(m.group(1))]
            t += ' tcp %d->%d state %d' % (r['local_port'], r['remote_port'],
                                           r['state'])
        out[int(fd)] = t
    return out


# ---------------------------------------------------------------- topology

class Topology:
    """Ports, backend servers and the config texts built from them."""

    def __init__(self):
        self.sport = H.free_port()
        self.fport = {}          # frontend -> port
        self.backend_of = {}     # frontend -> backend
        self.servers = {}        # backend -> [server name]
        self.procs = {}          # server name -> H.Backend (the live one)
        self.names = {}          # frontend -> set of valid name lines
        for fname, bname, letter, n in GROUPS:
            self.fport[fname] = H.free_port()
            self.backend_of[fname] = bname
            self.servers[bname] = ['%s%d' % (letter, i) for i in range(n)]
            for s in self.servers[bname]:
                self.procs[s] = h.start_backend('name', name=s)
            self.names[fname] = {s.encode() + b'\n'
                                 for s in self.servers[bname]}
        self.fronts = [g[0] for g in GROUPS]
        self.all_names = set().union(*self.names.values())

    def text(self, order=None, backend_order=None, idle='30s',
             dispatch='roundrobin', srv_rng=None, sections=None):
        """proxy.ini. ORDER: frontend sections' order; SRV_RNG shuffles
        each backend's server lines; SECTIONS, [(frontend, port,
        backend)], replaces the frontend sections altogether."""
        lines = ['[global]',
                 'workers = %d' % NWORKERS,
                 'dispatch = %s' % dispatch,
                 'drain_timeout = %ds' % DRAIN_S,
                 'log_level = info',
                 '',
                 '[stats]',
                 'listen = 127.0.0.1:%d' % self.sport,
                 '']
        fronts = sections or [(f, self.fport[f], self.backend_of[f])
                              for f in (order or self.fronts)]
        for f, port, bname in fronts:
            lines += ['[frontend %s]' % f,
                      'listen = 127.0.0.1:%d' % port,
                      'backend = %s' % bname,
                      'timeout_idle = %s' % idle,
                      'max_connections = 1000',
                      '']
        for bname in (backend_order or sorted(self.servers)):
            lines += ['[backend %s]' % bname, 'balance = roundrobin']
            srvs = list(self.servers[bname])
            if srv_rng:
                srv_rng.shuffle(srvs)
            lines += ['server = %s 127.0.0.1:%d' % (s, self.procs[s].port)
                      for s in srvs]
            lines += ['connect_timeout = 1s', 'retries = 2', '']
        return '\n'.join(lines)

    def front_view(self, st):
        """[(name, listen)] of /stats frontends, in their order."""
        return [(f['name'], tuple(f['listen'])) for f in st['frontends']]

    def expected_view(self):
        return sorted((f, ('127.0.0.1:%d' % self.fport[f],))
                      for f in self.fronts)


# ----------------------------------------------------------------- clients

class Conn:
    """What one client connection did and saw."""

    def __init__(self, kind, cid, front, t_rel):
        self.kind = kind
        self.cid = cid
        self.front = front
        self.t0 = t_rel
        self.t1 = None
        self.lport = None
        self.size = 0
        self.sent = 0
        self.got = 0
        self.rounds = 0
        self.name = None
        self.outcome = None
        self.detail = ''

    def describe(self):
        return ('%s conn %s front %s local port %s: %s at %.2fs (started '
                '%.2fs, payload %d, sent %d, got %d, rounds %d, server %s)%s'
                % (self.kind, self.cid, self.front, self.lport, self.outcome,
                   self.t1 or -1, self.t0, self.size, self.sent, self.got,
                   self.rounds, self.name,
                   ': ' + self.detail if self.detail else ''))


def hexs(b, n=24):
    return bytes(b[:n]).hex() + ('...' if len(b) > n else '')


def first_diff(a, b):
    n = min(len(a), len(b))
    for i in range(0, n, 4096):
        if a[i:i + 4096] != b[i:i + 4096]:
            for j in range(i, min(i + 4096, n)):
                if a[j] != b[j]:
                    return j
    return n


class Clients:
    """The client threads, their counts and the accepted-connection
    tally checked against /stats."""

    def __init__(self, topo, seed, t_start):
        self.topo = topo
        self.seed = seed
        self.t_start = t_start
        self.lock = threading.Lock()
        self.stop_ev = threading.Event()
        self.gate = threading.Event()     # cleared: start no connection
        self.gate.set()
        # Connections accepted by baton, as the clients saw them: every
        # connect() that returned success, per frontend. A successful
        # connect() means the handshake completed and the connection sits
        # in the master's listen queue (backlog 4096, far above the <= 15
        # connects in flight here, so none is dropped on overflow); the
        # master owns that listener for its whole life, so it accepts the
        # connection, whatever happens to it later: a worker SIGKILLed
        # before or after taking it, a re-dispatch, a drain cut, no server
        # reachable (counted in the frontend's errors, and in its total).
        # A refused or timed-out connect never reached the queue: not
        # counted. The /stats HTTP requests go to [stats], no frontend.
        self.accepted = collections.Counter()
        self.outcomes = collections.Counter()     # (kind, outcome) -> n
        self.rounds = 0
        self.bytes_checked = 0
        self.failures = collections.defaultdict(list)  # outcome -> Conn
        self.visible = []                         # Conn, first few visible
        self.nfail = 0
        self.threads = []

    def now(self):
        return time.monotonic() - self.t_start

    def start(self):
        for i in range(SHORT_THREADS):
            self.threads.append(threading.Thread(
                target=self._loop, args=('short', i), daemon=True))
        for i in range(LONG_THREADS):
            self.threads.append(threading.Thread(
                target=self._loop, args=('long', SHORT_THREADS + i),
                daemon=True))
        for t in self.threads:
            t.start()

    def stop(self, timeout):
        self.stop_ev.set()
        deadline = time.monotonic() + timeout
        for t in self.threads:
            t.join(max(0.1, deadline - time.monotonic()))
        return [t.name for t in self.threads if t.is_alive()]

    def _loop(self, kind, tid):
        rng = random.Random(self.seed * 1000 + tid + 1)
        n = 0
        while not self.stop_ev.is_set():
            if not self.gate.wait(0.05):
                continue
            front = rng.choice(self.topo.fronts)
            c = Conn(kind, '%d.%d' % (tid, n), front, self.now())
            try:
                if kind == 'short':
                    self.short(c, rng)
                else:
                    self.long(c, rng)
            except Exception:
                self.finish(c, 'error', traceback.format_exc(limit=4))
            n += 1
            time.sleep(rng.uniform(0, 0.02))

    # -- bookkeeping

    def finish(self, c, outcome, detail=''):
        if c.outcome is not None:
            return
        c.outcome, c.detail, c.t1 = outcome, detail, self.now()
        with self.lock:
            self.outcomes[(c.kind, outcome)] += 1
            if outcome in FAILED:
                self.nfail += 1
                if len(self.failures[outcome]) < 4:
                    self.failures[outcome].append(c)
            elif outcome in VISIBLE and len(self.visible) < 8:
                self.visible.append(c)
        if outcome in FAILED and self.nfail <= 5:
            say('  FAILED %s' % c.describe())

    def connect(self, c, timeout=CONNECT_TIMEOUT):
        """A connected socket, or None with C finished."""
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(timeout)
        try:
            s.connect((H.LOCALHOST, self.topo.fport[c.front]))
        except ConnectionRefusedError:
            s.close()
            self.finish(c, 'refused')
            return None
        except socket.timeout:
            s.close()
            self.finish(c, 'connect_timeout', 'no handshake within %.0fs'
                        % timeout)
            return None
        except OSError as e:
            s.close()
            self.finish(c, 'connect_error', repr(e))
            return None
        with self.lock:
            self.accepted[c.front] += 1
        c.lport = s.getsockname()[1]
        return s

    def check_name(self, c, line):
        """None if LINE (with its newline) names a server of C's
        frontend; else the outcome and detail."""
        c.name = line.decode(errors='replace').strip()
        if line in self.topo.names[c.front]:
            return None
        if line in self.topo.all_names:
            return ('wrong_backend', 'port %d of frontend %s answered by '
                    'server %r of another backend'
                    % (self.topo.fport[c.front], c.front, c.name))
        return 'corrupt', 'first line %r is no server name' % line[:40]

    def name_prefix_ok(self, c, got):
        """True if GOT (no newline yet) can still begin a valid name."""
        return any(n.startswith(bytes(got)) for n in self.topo.names[c.front])

    # -- a short connection

    def short(self, c, rng, timeout=SHORT_TIMEOUT, max_size=MAX_PAYLOAD):
        r = rng.random()
        if r < 0.05:
            size = 0
        else:
            size = min(max_size, int(2 ** rng.uniform(0, 18.01)))
        payload = rng.randbytes(size)
        c.size = size
        deadline = time.monotonic() + timeout
        s = self.connect(c, min(CONNECT_TIMEOUT, timeout))
        if s is None:
            return c
        try:
            self._short_exchange(c, s, payload, deadline, timeout)
        finally:
            s.close()
        return c

    def _short_exchange(self, c, s, payload, deadline, timeout):
        s.setblocking(False)
        sel = selectors.DefaultSelector()
        view = memoryview(payload)
        got = bytearray()
        size = len(payload)
        limit = size + 64 + 65536
        how = None       # how the connection ended: eof, reset, timeout
        why = ''
        try:
            if size == 0:
                s.shutdown(socket.SHUT_WR)
                sel.register(s, selectors.EVENT_READ)
            else:
                sel.register(s, selectors.EVENT_READ | selectors.EVENT_WRITE)
            while how is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    how = 'timeout'
                    break
                for _, ev in sel.select(min(left, 1.0)):
                    if ev & selectors.EVENT_WRITE and c.sent < size:
                        try:
                            k = s.send(view[c.sent:c.sent + 65536])
                        except (BlockingIOError, InterruptedError):
                            k = 0
                        except OSError as e:
                            how, why = 'reset', 'send: %r' % e
                            break
                        c.sent += k
                        if c.sent == size:
                            try:
                                s.shutdown(socket.SHUT_WR)
                            except OSError as e:
                                how, why = 'reset', 'shutdown: %r' % e
                                break
                            sel.modify(s, selectors.EVENT_READ)
                    if ev & selectors.EVENT_READ:
                        try:
                            data = s.recv(65536)
                        except (BlockingIOError, InterruptedError):
                            continue
                        except OSError as e:
                            how, why = 'reset', 'recv: %r' % e
                            break
                        if not data:
                            how = 'eof'
                            break
                        got += data
                        c.got = len(got)
                        if len(got) > limit:
                            how = 'overflow'
                            break
        finally:
            sel.close()
        self._judge_short(c, payload, got, how, why, timeout)

    def _judge_short(self, c, payload, got, how, why, timeout):
        size = len(payload)
        nl = got.find(b'\n')
        if nl < 0:
            if not self.name_prefix_ok(c, got):
                return self.finish(c, 'corrupt', 'got %r, not a server name '
                                   'line' % bytes(got[:40]))
            if how == 'timeout':
                return self.finish(c, 'timeout', 'no name line within %.0fs'
                                   ' (got %r)' % (timeout, bytes(got)))
            return self.finish(c, 'reset' if how == 'reset' else 'eof_early',
                               '%s before the server name line %s'
                               % (how, why))
        bad = self.check_name(c, bytes(got[:nl + 1]))
        if bad:
            return self.finish(c, *bad)
        body = memoryview(got)[nl + 1:]
        with self.lock:
            self.bytes_checked += len(body)
        if len(body) > size:
            off = first_diff(body, payload)
            more = bytes(body[size:])
            note = ''
            if off == size and more in self.topo.all_names:
                note = ('; the extra bytes are the name line of server '
                        '%s: the stream went on over a second server '
                        'connection' % more.decode().strip())
            return self.finish(c, 'corrupt', 'echo longer than the payload: '
                               '%d > %d bytes (first difference at %d: got %s'
                               ' %r want %s)%s'
                               % (len(body), size, off, hexs(body[off:]),
                                  bytes(body[off:off + 12]),
                                  hexs(payload[off:]), note))
        whole = len(body) == size
        want = payload if whole else payload[:len(body)]
        if hashlib.sha256(body).digest() != hashlib.sha256(want).digest():
            off = first_diff(body, want)
            return self.finish(c, 'corrupt', 'sha256 mismatch over %d echoed '
                               'bytes (payload %d, %s): first difference at '
                               'offset %d: got %s want %s'
                               % (len(body), size, how, off,
                                  hexs(body[off:]), hexs(want[off:])))
        if how == 'eof' and whole:
            return self.finish(c, 'ok')
        if how == 'timeout':
            stage = ('the whole echo came but no EOF' if whole else
                     '%d of %d echo bytes, %d of %d sent'
                     % (len(body), size, c.sent, size))
            return self.finish(c, 'timeout', 'unfinished after %.0fs: %s'
                               % (timeout, stage))
        if how == 'reset':
            return self.finish(c, 'reset', 'after %d of %d echo bytes: %s'
                               % (len(body), size, why))
        return self.finish(c, 'eof_early', 'EOF after %d of %d echo bytes '
                           '(%d sent)' % (len(body), size, c.sent))

    # -- a long-lived connection

    def long(self, c, rng):
        duration = rng.uniform(LONG_MIN_S, LONG_MAX_S)
        t0 = time.monotonic()
        deadline = t0 + duration + LONG_SLACK
        s = self.connect(c)
        if s is None:
            return
        buf = bytearray()

        def fill(need):
            """Read into BUF until it holds NEED bytes: None, or how the
            connection ended ('eof', 'reset: ...', 'timeout')."""
            while len(buf) < need:
                left = deadline - time.monotonic()
                if left <= 0:
                    return 'timeout'
                s.settimeout(left)
                try:
                    data = s.recv(65536)
                except socket.timeout:
                    return 'timeout'
                except OSError as e:
                    return 'reset: %r' % e
                if not data:
                    return 'eof'
                buf.extend(data)
                c.got += len(data)
            return None

        def ended(how, where, partial=b'', want=b''):
            if partial != want[:len(partial)]:
                off = first_diff(partial, want)
                return self.finish(c, 'corrupt', 'round %d: got %s want %s '
                                   '(offset %d) then %s'
                                   % (c.rounds, hexs(partial[off:]),
                                      hexs(want[off:]), off, how))
            if how == 'timeout':
                return self.finish(c, 'timeout', 'no progress until its '
                                   'bound (%.1fs planned + %.0fs) %s'
                                   % (duration, LONG_SLACK, where))
            return self.finish(c, 'reset' if how.startswith('reset')
                               else 'eof_early', '%s %s' % (how, where))

        try:
            # The server's name line first.
            while b'\n' not in buf:
                how = fill(len(buf) + 1)
                if how:
                    if not self.name_prefix_ok(c, buf):
                        return self.finish(c, 'corrupt', 'got %r, not a '
                                           'server name' % bytes(buf[:40]))
                    return ended(how, 'before the name line')
            nl = buf.index(b'\n')
            bad = self.check_name(c, bytes(buf[:nl + 1]))
            if bad:
                return self.finish(c, *bad)
            del buf[:nl + 1]
            if buf:
                return self.finish(c, 'corrupt', '%d bytes after the name '
                                   'line before anything was sent: %s'
                                   % (len(buf), hexs(buf)))
            while time.monotonic() - t0 < duration:
                msg = (b'%s/%d:' % (c.cid.encode(), c.rounds) +
                       rng.randbytes(rng.randint(1, 3000)))
                c.size += len(msg)
                left = deadline - time.monotonic()
                if left <= 0:
                    return ended('timeout', 'sending round %d' % c.rounds)
                s.settimeout(left)
                try:
                    s.sendall(msg)
                except socket.timeout:
                    return ended('timeout', 'sending round %d' % c.rounds)
                except OSError as e:
                    return ended('reset: %r' % e, 'sending round %d'
                                 % c.rounds, bytes(buf), msg)
                c.sent += len(msg)
                how = fill(len(msg))
                if how:
                    return ended(how, 'in round %d (%d of %d bytes back)'
                                 % (c.rounds, len(buf), len(msg)),
                                 bytes(buf), msg)
                if bytes(buf[:len(msg)]) != msg:
                    off = first_diff(buf, msg)
                    return self.finish(c, 'corrupt', 'round %d echo differs '
                                       'at offset %d: got %s want %s'
                                       % (c.rounds, off, hexs(buf[off:]),
                                          hexs(msg[off:])))
                if len(buf) > len(msg):
                    return self.finish(c, 'corrupt', 'round %d: %d bytes '
                                       'more than sent: %s'
                                       % (c.rounds, len(buf) - len(msg),
                                          hexs(buf[len(msg):])))
                del buf[:]
                c.rounds += 1
                with self.lock:
                    self.rounds += 1
                    self.bytes_checked += len(msg)
                time.sleep(rng.uniform(0.01, 0.12))
            try:
                s.shutdown(socket.SHUT_WR)
            except OSError as e:
                return ended('reset: %r' % e, 'at the half-close')
            how = fill(1)
            if how == 'eof':
                return self.finish(c, 'ok')
            if how is None:
                return self.finish(c, 'corrupt', '%d bytes after the last '
                                   'echo, nothing was sent: %s'
                                   % (len(buf), hexs(buf)))
            return ended(how, 'waiting for EOF after %d good rounds'
                         % c.rounds)
        finally:
            s.close()


# ------------------------------------------------------------------- chaos

class Chaos(threading.Thread):
    """Faults at random intervals; every action logged with its time."""

    DECK = ['kill', 'stop_kill', 'stop_cont', 'stop_cont', 'cascade',
            'backend', 'backend', 'reload', 'reload_reorder',
            'reload_invalid', 'reload_busy']

    def __init__(self, topo, b, clients, seed, t_start, tracker):
        super().__init__(daemon=True)
        self.topo = topo
        self.b = b
        self.clients = clients
        self.rng = random.Random(seed)
        self.t_start = t_start
        self.tracker = tracker
        self.stop_ev = threading.Event()
        self.counts = collections.Counter()
        self.problems = []
        self.timeline = []
        self.stopped = set()           # pids we SIGSTOPped, not yet CONTed
        self.good_text = None
        self.order = list(topo.fronts)
        self.deck = []

    def log(self, msg):
        line = '[%6.2fs] %s' % (time.monotonic() - self.t_start, msg)
        self.timeline.append(line)
        say('  chaos ' + line)

    def problem(self, msg):
        self.log('PROBLEM: ' + msg)
        self.problems.append('[%.2fs] %s' % (time.monotonic() - self.t_start,
                                             msg))

    def stats(self):
        return get_stats(self.topo.sport)

    def run(self):
        try:
            while not self.stop_ev.wait(self.rng.uniform(0.3, 1.5)):
                if not self.b.alive():
                    self.problem('the master exited (status %r)'
                                 % self.b.proc.poll())
                    break
                if not self.deck:
                    self.deck = list(self.DECK)
                    self.rng.shuffle(self.deck)
                act = self.deck.pop()
                getattr(self, 'do_' + act)()
                if not self.b.alive():
                    self.problem('the master exited (status %r) after %s'
                                 % (self.b.proc.poll(), act))
                    break
        except H.Failure as e:
            self.problem(str(e))
        except Exception:
            self.problem('chaos thread: ' + traceback.format_exc())
        finally:
            for pid in list(self.stopped):
                try:
                    os.kill(pid, signal.SIGCONT)
                except OSError:
                    pass
            self.stopped.clear()

    # -- workers

    def pick_worker(self, draining_too=False):
        """(pid, label) of a worker to hit, or None. A running worker of
        the current generation is hit only while another one runs, so the
        respawn back-off never leaves no worker at all."""
        st = self.stats()
        live = set(self.b.workers())
        gen = st['generation']
        running = [w for w in st['workers'] if w['generation'] == gen and
                   w['state'] == 'running' and w['pid'] in live]
        draining = [w for w in st['workers'] if w['state'] == 'draining'
                    and w['pid'] in live]
        if draining_too and draining and self.rng.random() < 0.3:
            w = self.rng.choice(draining)
        elif len(running) >= 2:
            w = self.rng.choice(running)
        else:
            return None
        return w['pid'], '%s worker %d (gen %d)' % (w['state'], w['pid'],
                                                    w['generation'])

    def wait_gone(self, pid, what):
        H.poll_until(lambda: not H.proc_alive(pid), 5, what)

    def do_kill(self):
        v = self.pick_worker(draining_too=True)
        if v is None:
            self.log('kill: skipped, fewer than 2 running workers')
            self.counts['skipped'] += 1
            return
        pid, label = v
        self.tracker.note(pid)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:  # a draining one that just finished
            self.log('kill: %s had exited already' % label)
            self.counts['skipped'] += 1
            return
        self.log('SIGKILL %s' % label)
        self.counts['worker_kill'] += 1
        self.wait_gone(pid, 'SIGKILLed worker %d to go' % pid)

    def do_stop_kill(self):
        v = self.pick_worker()
        if v is None:
            self.log('stop+kill: skipped, fewer than 2 running workers')
            self.counts['skipped'] += 1
            return
        pid, label = v
        self.tracker.note(pid)
        pause = self.rng.uniform(0.3, 1.0)
        os.kill(pid, signal.SIGSTOP)
        self.log('SIGSTOP %s, SIGKILL in %.2fs' % (label, pause))
        time.sleep(pause)
        os.kill(pid, signal.SIGKILL)
        self.counts['worker_stop_kill'] += 1
        self.wait_gone(pid, 'stopped then SIGKILLed worker %d to go' % pid)

    def do_stop_cont(self):
        v = self.pick_worker(draining_too=True)
        if v is None:
            st = self.stats()
            live = set(self.b.workers())
            ws = [w for w in st['workers'] if w['pid'] in live]
            if not ws:
                self.log('stop+cont: skipped, no worker')
                self.counts['skipped'] += 1
                return
            w = self.rng.choice(ws)
            v = (w['pid'], '%s worker %d (gen %d)' % (
                w['state'], w['pid'], w['generation']))
        pid, label = v
        self.tracker.note(pid)
        pause = self.rng.uniform(0.2, 2.0)
        self.stopped.add(pid)
        try:
            os.kill(pid, signal.SIGSTOP)
            self.log('SIGSTOP %s for %.2fs' % (label, pause))
            time.sleep(pause)
        finally:
            try:
                os.kill(pid, signal.SIGCONT)
            except OSError:
                pass
            self.stopped.discard(pid)
        self.counts['worker_stop_cont'] += 1

    def do_cascade(self):
        """Two workers stopped at once, then a lull in the traffic (no
        client starts a connection; those in flight go on), then one of
        the two is SIGKILLed while the other is still stopped: the dead
        one's unread sockets are handed over, some to the stopped one,
        queued there behind newer sockets and the last it gets. Then
        either a reload while it is still stopped (it wakes up draining,
        so it gets nothing more) or it is continued and SIGKILLed a
        moment later; the clients resume after that."""
        st = self.stats()
        live = set(self.b.workers())
        gen = st['generation']
        running = [w['pid'] for w in st['workers'] if w['generation'] == gen
                   and w['state'] == 'running' and w['pid'] in live]
        if len(running) < 3:
            self.log('cascade: skipped, fewer than 3 running workers')
            self.counts['skipped'] += 1
            return
        a, other = self.rng.sample(sorted(running), 2)
        pause = self.rng.uniform(0.3, 1.0)
        variant = self.rng.choice(['reload', 'kill'])
        self.log('cascade: SIGSTOP workers %d and %d; in %.2fs a lull, '
                 'SIGKILL %d, then %s' % (
                     a, other, pause, a,
                     'a reload, then SIGCONT %d' % other
                     if variant == 'reload' else
                     'SIGCONT and SIGKILL %d' % other))

        def cont():
            if other in self.stopped:
                self.stopped.discard(other)
                try:
                    os.kill(other, signal.SIGCONT)
                except OSError:
                    pass
        try:
            for pid in (a, other):
                self.tracker.note(pid)
                self.stopped.add(pid)
                os.kill(pid, signal.SIGSTOP)
            time.sleep(pause)
            self.clients.gate.clear()
            time.sleep(0.2)     # connects in flight reach the master
            os.kill(a, signal.SIGKILL)
            self.stopped.discard(a)
            self.wait_gone(a, 'SIGKILLed worker %d to go' % a)
            time.sleep(0.05)
            if variant == 'reload':
                self.do_reload(then=cont)
            else:
                cont()
                time.sleep(self.rng.uniform(0.05, 0.5))
                os.kill(other, signal.SIGKILL)
                self.wait_gone(other, 'SIGKILLed worker %d to go' % other)
        finally:
            cont()
            self.clients.gate.set()
        self.counts['cascade_' + variant] += 1

    # -- backends

    def do_backend(self):
        srv = self.rng.choice(sorted(self.topo.procs))
        old = self.topo.procs[srv]
        down = self.rng.uniform(0.1, 1.5)
        old.proc.kill()
        old.proc.wait(5)
        if old.proc.stdout:
            old.proc.stdout.close()
        self.log('SIGKILL backend server %s (port %d), restart in %.2fs'
                 % (srv, old.port, down))
        time.sleep(down)
        why = None
        for _ in range(5):
            try:
                self.topo.procs[srv] = h.start_backend(
                    'name', name=srv, port=old.port)
                break
            except H.Failure as e:
                why = str(e)
                time.sleep(0.3)
        else:
            raise H.Failure('backend %s could not restart on port %d: %s'
                            % (srv, old.port, why))
        self.counts['backend_restart'] += 1

    # -- reloads

    def write(self, text):
        tmp = self.b.config + '.tmp'
        with open(tmp, 'w') as f:
            f.write(text)
        os.replace(tmp, self.b.config)

    def other_order(self):
        order = list(self.order)
        while order == self.order:
            self.rng.shuffle(order)
        return order

    def valid_text(self, reorder):
        order = self.other_order() if reorder else self.order
        border = sorted(self.topo.servers)
        if reorder:
            self.rng.shuffle(border)
        text = self.topo.text(
            order=order, backend_order=border,
            idle=self.rng.choice(['30s', '31s', '45s']),
            dispatch=self.rng.choice(['roundrobin', 'leastconn']),
            srv_rng=self.rng if self.rng.random() < 0.5 else None)
        return order, text

    def sighup(self, text, before, label):
        """Write TEXT, SIGHUP, wait for the outcome: 'ok' or 'failed'."""
        self.write(text)
        self.b.signal(signal.SIGHUP)
        self.log('SIGHUP: %s' % label)
        g0, f0 = before['generation'], before['reload_failures']

        def outcome():
            st = self.stats()
            if st['generation'] != g0 or st['reload_failures'] != f0:
                return st
            return None
        st = H.poll_until(outcome, 10, 'the outcome of the reload (%s)'
                          % label, interval=0.05)
        if st['reload_failures'] == f0 + 1 and st['generation'] == g0:
            return 'failed', st
        if st['generation'] == g0 + 1 and st['reload_failures'] == f0:
            return 'ok', st
        return 'odd', st

    def probe_all(self, why):
        """One short connection per frontend: its port must reach its own
        backend (counted like every client connection)."""
        for f in self.topo.fronts:
            c = Conn('probe', 'after %s' % why, f, self.clients.now())
            self.clients.short(c, self.rng, max_size=4096)

    def do_reload(self, reorder=None, then=None):
        """A valid reload; THEN() runs once its outcome is known."""
        if reorder is None:
            reorder = self.rng.random() < 0.3
        before = self.stats()
        order, text = self.valid_text(reorder)
        try:
            how, st = self.sighup(text, before, 'valid file%s'
                                  % (', frontends reordered %s'
                                     % ','.join(order) if reorder else ''))
        finally:
            if then:
                then()
        if how != 'ok':
            self.counts['reload_bad'] += 1
            self.problem('a valid reload: generation %d -> %d, '
                         'reload_failures %d -> %d; log:\n%s'
                         % (before['generation'], st['generation'],
                            before['reload_failures'], st['reload_failures'],
                            self.b.log_tail(15)))
            self.write(self.good_text)
            return
        self.good_text, self.order = text, order
        self.counts['reload_ok_reordered' if reorder else 'reload_ok'] += 1
        view = sorted(self.topo.front_view(st))
        if view != self.topo.expected_view():
            self.problem('frontends after a valid reload: %r, want %r'
                         % (view, self.topo.expected_view()))
        gen = st['generation']

        def running():
            ws = [w for w in self.stats()['workers']
                  if w['generation'] == gen and w['state'] == 'running']
            return len(ws) == NWORKERS
        try:
            H.poll_until(running, 15, '%d running workers of generation %d'
                         % (NWORKERS, gen), interval=0.1)
        except H.Failure as e:
            self.problem(str(e))
        self.probe_all('reload to generation %d' % gen)

    def do_reload_reorder(self):
        self.do_reload(reorder=True)

    def refused(self, kind, text, label, extra_check=None):
        before = self.stats()
        how, st = self.sighup(text, before, label)
        self.write(self.good_text)
        if how != 'failed':
            self.counts['reload_bad'] += 1
            self.problem('%s was not refused: generation %d -> %d, '
                         'reload_failures %d -> %d'
                         % (label, before['generation'], st['generation'],
                            before['reload_failures'],
                            st['reload_failures']))
            return
        self.counts[kind] += 1
        # Nothing changed: same generation, same frontends in the same
        # order with the same addresses, the same workers listed.
        time.sleep(0.1)
        st = self.stats()
        if self.topo.front_view(st) != self.topo.front_view(before):
            self.problem('frontends changed by %s: %r, were %r'
                         % (label, self.topo.front_view(st),
                            self.topo.front_view(before)))
        if st['generation'] != before['generation']:
            self.problem('generation changed by %s: %d -> %d'
                         % (label, before['generation'], st['generation']))
        if extra_check:
            extra_check()
        self.probe_all(label)

    def do_reload_invalid(self):
        order, text = self.valid_text(self.rng.random() < 0.5)
        lines = text.split('\n')
        bad = self.rng.choice(['this line is no ini', '[frontend broken',
                               'listen 127.0.0.1:1'])
        at = self.rng.randrange(1, len(lines))
        lines.insert(at, bad)
        self.refused('reload_refused_invalid', '\n'.join(lines),
                     'syntax error %r at line %d' % (bad, at + 1))

    def do_reload_busy(self):
        """A file that cannot be loaded: one listen port in it is bound
        by the test. Frontends reordered, so the ports taken over would
        get other indices, and sometimes one or two new frontends on
        free ports before it, so the indices reach past the running
        configuration's frontends. Nothing may change: not the
        frontends, not what each port serves, no new port left open."""
        taken = socket.socket()
        try:
            taken.bind((H.LOCALHOST, 0))
            taken.listen(1)
            busy = taken.getsockname()[1]
            order = self.other_order()
            border = sorted(self.topo.servers)
            self.rng.shuffle(border)
            sections = [(f, self.topo.fport[f], self.topo.backend_of[f])
                        for f in order]
            fresh = []
            for i in range(self.rng.randint(0, 2)):
                port = H.free_port()
                fresh.append(port)
                sections.insert(self.rng.randrange(len(sections) + 1),
                                ('fy%d' % i, port, self.rng.choice(border)))
            if self.rng.random() < 0.5:
                sections.insert(self.rng.randrange(len(sections) + 1),
                                ('fx', busy, self.rng.choice(border)))
                what = 'new frontend fx on busy port %d' % busy
            else:
                f = self.rng.choice(self.topo.fronts)
                sections = [(n, busy if n == f else p, b)
                            for n, p, b in sections]
                what = 'frontend %s moved to busy port %d' % (f, busy)
            text = self.topo.text(backend_order=border, sections=sections)
            label = '%s; frontend sections %s' % (
                what, ','.join(n for n, _, _ in sections))

            def untouched():
                mine = H.socket_inodes(self.b.pid)
                held = [r for r in H.tcp_table()
                        if r['local_port'] in [busy] + fresh and
                        r['inode'] in mine]
                if held:
                    self.problem('the master holds a socket on port(s) %r '
                                 'of the failed reload: %r'
                                 % ([busy] + fresh, held))
            self.refused('reload_refused_busy', text, label, untouched)
        finally:
            taken.close()


class Tracker(threading.Thread):
    """Notes every worker baton forks (pid and start time), every 0.2 s
    and on demand, through the harness's own tracking too."""

    def __init__(self, b):
        super().__init__(daemon=True)
        self.b = b
        self.seen = {}
        self.lock = threading.Lock()
        self.stop_ev = threading.Event()

    def note(self, pid):
        st = H.proc_stat(pid)
        if st:
            with self.lock:
                self.seen.setdefault(pid, st[3])

    def scan(self):
        if not self.b.alive():
            return
        for pid, comm in self.b.children():
            if comm == 'baton-worker':
                self.note(pid)

    def run(self):
        while not self.stop_ev.wait(0.2):
            try:
                self.scan()
            except Exception:
                pass

    def alive(self, exclude=()):
        """Tracked workers still running (same pid and start time)."""
        out = []
        with self.lock:
            items = list(self.seen.items())
        for pid, start in items:
            if pid in exclude:
                continue
            st = H.proc_stat(pid)
            if st and st[3] == start and st[1] not in ('Z', 'X'):
                out.append(pid)
        return sorted(out)


# ------------------------------------------------------------------- case

def interesting_log(b, n=30):
    """The last N lines of the log that are not per-connection noise."""
    try:
        lines = b.log().splitlines()
    except OSError:
        return '(no log)'
    keep = [ln for ln in lines if re.search(
        r'warn|error|crit|reload|worker|signal|Sanitizer|listen', ln, re.I)]
    return '\n'.join(keep[-n:])


def settle_fds(pid, timeout=5.0):
    """The master's descriptor count once it stayed the same for 0.5 s."""
    last, since = H.fd_count(pid), time.monotonic()
    deadline = since + timeout
    while time.monotonic() < deadline:
        time.sleep(0.1)
        now = H.fd_count(pid)
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= 0.5:
            break
    return last


@h.case(timeout=140)
def chaos_minute():
    env_seed = os.environ.get('BATON_CHAOS_SEED')
    seed = int(env_seed) if env_seed else random.SystemRandom().randrange(
        1, 1 << 31)
    say('  seed %d (replay the same choices: BATON_CHAOS_SEED=%d), chaos '
        '%.0fs' % (seed, seed, CHAOS_S))
    H.raise_nofile(4096)
    topo = Topology()
    b = h.start_baton(topo.text(), timeout=15)
    problems = []
    tracker = Tracker(b)
    tracker.scan()
    tracker.start()
    clients = chaos = None
    summary = {}
    try:
        _chaos_run(topo, b, seed, tracker, problems, summary)
    finally:
        tracker.stop_ev.set()
        say('  ---- summary (seed %d) ----' % seed)
        for k, v in summary.items():
            say('  %s: %s' % (k, v))
    if problems:
        say('  ---- %d problem(s), seed %d ----' % (len(problems), seed))
        for p in problems:
            say('  - ' + p)
        say('  ---- master log, notable lines ----\n' + interesting_log(b))
    check(not problems, '%d problem(s) (seed %d), first: %s'
          % (len(problems), seed, problems[0][:400] if problems else ''))


def _chaos_run(topo, b, seed, tracker, problems, summary):
    st = get_stats(topo.sport)
    check(st['generation'] == 1, '/stats generation %r at start'
          % st['generation'])
    H.poll_until(lambda: len([w for w in get_stats(topo.sport)['workers']
                              if w['state'] == 'running']) == NWORKERS,
                 10, '%d running workers at start' % NWORKERS)
    base_fds = settle_fds(b.pid)
    base_targets = fd_targets(b.pid)
    say('  master pid %d: %d descriptors when idle' % (b.pid, base_fds))

    t_start = time.monotonic()
    clients = Clients(topo, seed, t_start)
    chaos = Chaos(topo, b, clients, seed, t_start, tracker)
    chaos.good_text = topo.text()
    clients.start()
    chaos.start()
    try:
        while time.monotonic() - t_start < CHAOS_S:
            time.sleep(0.25)
            if not b.alive() or not chaos.is_alive():
                break
    finally:
        chaos.stop_ev.set()
        chaos.join(30)
        t_chaos = time.monotonic() - t_start
        # Each connection ends within its own bound; allow that much.
        stuck = clients.stop(LONG_MAX_S + LONG_SLACK + 5)
        t_clients = time.monotonic() - t_start
        summary['chaos'] = ('%.1fs, clients done at %.1fs; %s'
                            % (t_chaos, t_clients, dict(chaos.counts)))
        summary['connections'] = _outcome_text(clients)
        summary['accepted per frontend (client side)'] = dict(
            clients.accepted)
    if chaos.is_alive():
        problems.append('the chaos thread did not stop within 30s')
    problems.extend(chaos.problems)
    if stuck:
        problems.append('client threads still running past every bound: %r'
                        % stuck)
    for outcome in FAILED:
        n = sum(v for (k, o), v in clients.outcomes.items() if o == outcome)
        if n:
            problems.append('%d connection(s) failed: %s, e.g.\n      %s'
                            % (n, outcome, '\n      '.join(
                                c.describe()
                                for c in clients.failures[outcome])))
    if clients.visible:
        say('  first visible failures (allowed):')
        for c in clients.visible[:5]:
            say('    ' + c.describe())
    if not b.alive():
        problems.append('baton exited during the chaos with status %r; log '
                        'tail:\n%s' % (b.proc.poll(), b.log_tail(30)))
        return

    # -- the dust settles: only the current generation, all running
    gen = get_stats(topo.sport)['generation']

    def settled():
        ws = get_stats(topo.sport)['workers']
        ok = (len(ws) == NWORKERS and
              all(w['generation'] == gen and w['state'] == 'running'
                  for w in ws) and
              sorted(w['pid'] for w in ws) == sorted(b.workers()))
        return ws if ok else None
    try:
        ws = H.poll_until(settled, DRAIN_S + KILL_GRACE_S + 5,
                          'only %d running workers of generation %d, listed '
                          'and alive' % (NWORKERS, gen), interval=0.1)
        current = [w['pid'] for w in ws]
    except H.Failure as e:
        problems.append('%s; /stats workers %r, children %r'
                        % (e, get_stats(topo.sport)['workers'],
                           b.children()))
        current = b.workers()
    tracker.scan()
    left = tracker.alive(exclude=current)
    if left:
        problems.append('workers of earlier generations or killed slots '
                        'still alive: %r (current: %r)' % (left, current))

    # -- baton still serves: a final round, every connection clean
    final = Clients(topo, seed + 1, time.monotonic())
    rng = random.Random(seed + 2)
    bad = []
    for i in range(FINAL_ROUND):
        c = Conn('final', str(i), topo.fronts[i % len(topo.fronts)], 0)
        final.short(c, rng, timeout=FINAL_TIMEOUT)
        if c.outcome != 'ok':
            bad.append(c.describe())
    summary['final round'] = '%d of %d clean' % (FINAL_ROUND - len(bad),
                                                  FINAL_ROUND)
    if bad:
        problems.append('final round: %d of %d connections not clean: %s'
                        % (len(bad), FINAL_ROUND, '; '.join(bad[:3])))

    # -- /stats totals equal what the clients saw accepted
    want = clients.accepted + final.accepted
    want_total = sum(want.values())

    def totals(st):
        per = {f['name']: f['total'] for f in st['frontends']}
        return (st['connections']['total'], sum(per.values()), per)

    def match():
        st = get_stats(topo.sport)
        t, fsum, per = totals(st)
        return (t == want_total and fsum == want_total and
                per == dict(want)) and st
    try:
        H.poll_until(match, 5, 'the /stats totals', interval=0.1)
        time.sleep(1.2)                  # counters up to 1 s stale
        ok = match()
    except H.Failure:
        ok = False
    st = get_stats(topo.sport)
    t, fsum, per = totals(st)
    summary['/stats'] = ('connections.total %d, sum of frontends %d %r, '
                         'redispatched %s, reloads %d, reload_failures %d, '
                         'generation %d; clients saw %d accepted %r'
                         % (t, fsum, per, st.get('redispatched'),
                            st['reloads'], st['reload_failures'],
                            st['generation'], want_total, dict(want)))
    if not ok:
        problems.append('/stats totals differ from the %d connections the '
                        'clients made that were accepted: connections.total '
                        '%d, sum of frontends %d, per frontend %r, want %r'
                        % (want_total, t, fsum, per, dict(want)))

    # -- the master's descriptors back to idle
    def fds_back():
        n = H.fd_count(b.pid)
        return abs(n - base_fds) <= 1 and n
    try:
        n = H.poll_until(fds_back, 10, 'the master\'s descriptors back to '
                         '%d' % base_fds, interval=0.1)
        summary['master descriptors'] = '%d (idle baseline %d)' % (
            n, base_fds)
    except H.Failure:
        now = fd_targets(b.pid)
        extra = sorted('%d: %s' % (fd, t) for fd, t in now.items()
                       if base_targets.get(fd) != t)
        gone = sorted('%d: %s' % (fd, t) for fd, t in base_targets.items()
                      if now.get(fd) != t)
        problems.append('the master holds %d descriptors, %d when idle at '
                        'start; new/changed: %s; gone: %s'
                        % (len(now), base_fds, extra[:20], gone[:20]))
        summary['master descriptors'] = '%d (idle baseline %d)' % (
            len(now), base_fds)

    # -- SIGTERM: exit 0, nothing left
    tracker.scan()
    b.signal(signal.SIGTERM)
    rc = b.wait_exit(DRAIN_S + KILL_GRACE_S + 5)
    summary['exit status after SIGTERM'] = rc
    if rc != 0:
        problems.append('exit status %r after SIGTERM, want 0' % rc)
    try:
        H.poll_until(lambda: not tracker.alive(), 5,
                     'every worker to exit with the master')
    except H.Failure:
        problems.append('workers left after the master exited: %r'
                        % tracker.alive())
    summary['workers forked in all'] = len(tracker.seen)


def _outcome_text(clients):
    parts = []
    for kind in ('short', 'long', 'probe'):
        oc = {o: n for (k, o), n in clients.outcomes.items() if k == kind}
        if oc:
            parts.append('%s %s' % (kind, ', '.join(
                '%s %d' % (o, n) for o, n in sorted(oc.items()))))
    return '; '.join(parts) + ('; %d long rounds, %.1f MiB checked'
                               % (clients.rounds,
                                  clients.bytes_checked / 1048576.0))


if __name__ == '__main__':
    sys.exit(h.run())
