"""harness.py -- shared helpers for baton's integration tests.

A test file builds a Harness, registers its cases with @h.case and ends
with sys.exit(h.run()). The harness gives each file its own temp dir (kept
when a case fails), starts baton and backend processes, finds baton's
workers and sockets through /proc, bounds every case in time with
SIGALRM, and stops every process it started, by pid, on every path
(case end, failure, timeout, a signal to the test, interpreter exit).
It also has the small helpers the tests share: clients that echo, /stats
read from baton's [stats] port, copies of a process's channels taken with
pidfd_getfd(2) (a case that needs them is skipped where that is not
permitted).

Exit status of run(): 0 all passed (or some skipped), 1 a case failed,
77 every case skipped. Standard library only; run with /usr/bin/python3.
"""

import atexit
import ctypes
import errno
import http.client
import json
import os
import random
import re
import resource
import select
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
BATON = os.environ.get('BATON') or os.path.join(REPO, 'src', 'baton')
PYTHON = '/usr/bin/python3'
BACKEND = os.path.join(HERE, 'backend.py')
LOCALHOST = '127.0.0.1'

SKIP_STATUS = 77
STOP_GRACE = 3.0        # seconds between SIGTERM and SIGKILL at cleanup
SANITIZER_RE = re.compile(r'(ERROR|WARNING): [A-Za-z]+Sanitizer|'
                          r'runtime error: ')


class Failure(AssertionError):
    """A test expectation did not hold."""


class Skip(Exception):
    """The case cannot run here; the message says why."""


class CaseTimeout(BaseException):
    """The case ran past its time bound (raised from SIGALRM)."""


class Interrupted(BaseException):
    """The test process itself got SIGTERM/SIGINT/SIGHUP."""


def check(cond, msg):
    """Fail the running case with MSG unless COND holds."""
    if not cond:
        raise Failure(msg)


def poll_until(fn, timeout, what, interval=0.02):
    """Call FN until it returns a true value, at most TIMEOUT seconds.

    Returns that value; fails the case with 'timed out waiting for WHAT'.
    """
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise Failure('timed out after %.1fs waiting for %s'
                          % (timeout, what))
        time.sleep(interval)


# ------------------------------------------------------------------ /proc

def proc_stat(pid):
    """(comm, state, ppid, starttime) of PID, or None if it is gone."""
    try:
        with open('/proc/%d/stat' % pid) as f:
            data = f.read()
    except OSError:
        return None
    lp, rp = data.index('('), data.rindex(')')
    comm = data[lp + 1:rp]
    rest = data[rp + 2:].split()
    # rest[0] is field 3 (state); starttime is field 22.
    return comm, rest[0], int(rest[1]), int(rest[19])


def proc_state(pid):
    """The state letter of PID (R, S, T, Z...), None if it is gone."""
    st = proc_stat(pid)
    return st[1] if st else None


def proc_alive(pid):
    """True while PID exists and is not a zombie."""
    st = proc_stat(pid)
    return st is not None and st[1] not in ('Z', 'X')


def proc_children(ppid):
    """[(pid, comm)] of the live processes whose parent is PPID."""
    out = []
    for name in os.listdir('/proc'):
        if not name.isdigit():
            continue
        st = proc_stat(int(name))
        if st and st[2] == ppid and st[1] not in ('Z', 'X'):
            out.append((int(name), st[0]))
    return sorted(out)


def proc_rss_kib(pid):
    """VmRSS of PID in KiB, 0 if it is gone."""
    try:
        with open('/proc/%d/status' % pid) as f:
            for line in f:
                if line.startswith('VmRSS:'):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_seconds(pid):
    """User + system CPU time PID has used, in seconds."""
    with open('/proc/%d/stat' % pid) as f:
        data = f.read()
    rest = data[data.rindex(')') + 2:].split()
    return (int(rest[11]) + int(rest[12])) / os.sysconf('SC_CLK_TCK')


def fd_count(pid):
    """Open descriptors of PID, -1 if it is gone."""
    try:
        return len(os.listdir('/proc/%d/fd' % pid))
    except OSError:
        return -1


def socket_inodes(pid):
    """Set of socket inodes among PID's open fds (empty if it is gone)."""
    out = set()
    fddir = '/proc/%d/fd' % pid
    try:
        names = os.listdir(fddir)
    except OSError:
        return out
    for fd in names:
        try:
            target = os.readlink(os.path.join(fddir, fd))
        except OSError:
            continue
        m = re.match(r'socket:\[(\d+)\]$', target)
        if m:
            out.add(int(m.group(1)))
    return out


TCP_LISTEN = 0x0A
TCP_ESTABLISHED = 0x01


def tcp_table():
    """Entries of /proc/net/tcp and tcp6 as dicts.

    Keys: local_port, remote_port, state (int), inode (int), family.
    """
    rows = []
    for fam in ('tcp', 'tcp6'):
        try:
            with open('/proc/net/' + fam) as f:
                lines = f.read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            p = line.split()
            if len(p) < 10:
                continue
            rows.append({
                'family': fam,
                'local_port': int(p[1].rsplit(':', 1)[1], 16),
                'remote_port': int(p[2].rsplit(':', 1)[1], 16),
                'state': int(p[3], 16),
                'inode': int(p[9]),
            })
    return rows


# --------------------------------------------------------------- channels

SYS_PIDFD_GETFD = 438   # x86_64 and aarch64 alike


def steal_channels(pid):
    """Copies of PID's AF_UNIX SOCK_SEQPACKET sockets (its channels to the
    master or to its workers), taken with pidfd_getfd(2): what the test
    sends on one, the peer reads as if PID sent it. The caller closes them.

    Skip where that is not permitted (it needs root and Linux >= 5.6).
    """
    libc = ctypes.CDLL(None, use_errno=True)
    try:
        pidfd = os.pidfd_open(pid)
    except (AttributeError, OSError) as e:
        raise Skip('pidfd_open unavailable: %s' % e)
    found = []
    try:
        for name in os.listdir('/proc/%d/fd' % pid):
            try:
                if not os.readlink('/proc/%d/fd/%s' % (pid, name)).startswith(
                        'socket:'):
                    continue
            except OSError:
                continue
            fd = libc.syscall(SYS_PIDFD_GETFD, pidfd, int(name), 0)
            if fd < 0:
                e = ctypes.get_errno()
                if e in (errno.EPERM, errno.ENOSYS):
                    raise Skip('pidfd_getfd: %s (needs root and Linux '
                               '>= 5.6)' % os.strerror(e))
                continue
            s = socket.socket(fileno=fd)
            if s.family == socket.AF_UNIX and s.type == socket.SOCK_SEQPACKET:
                found.append(s)
            else:
                s.detach()
                os.close(fd)
    finally:
        os.close(pidfd)
    return found


# ---------------------------------------------------------------- clients

def connect(port, timeout=5.0, host=LOCALHOST):
    """A blocking TCP socket connected to HOST:PORT with a timeout."""
    fam = socket.AF_INET6 if ':' in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect((host, port))
    except BaseException:
        s.close()
        raise
    return s


def try_connect(port, timeout=2.0):
    """'ok' (socket closed again), 'refused', or the error's name."""
    try:
        s = connect(port, timeout)
    except ConnectionRefusedError:
        return 'refused'
    except OSError as e:
        return type(e).__name__ + ':' + str(e)
    s.close()
    return 'ok'


def recv_line(sock, timeout=5.0, limit=4096):
    """Read up to and including b'\\n'; fails the case on EOF or timeout."""
    deadline = time.monotonic() + timeout
    buf = b''
    while not buf.endswith(b'\n'):
        left = deadline - time.monotonic()
        check(left > 0, 'no full line within %.1fs (got %r)' % (timeout, buf))
        sock.settimeout(left)
        try:
            data = sock.recv(1)
        except socket.timeout:
            raise Failure('no full line within %.1fs (got %r)'
                          % (timeout, buf))
        check(data, 'connection closed before a full line (got %r)' % buf)
        buf += data
        check(len(buf) <= limit, 'line too long: %r' % buf[:80])
    return buf


def recv_exact(sock, n, timeout=5.0):
    """Read exactly N bytes; fails the case on EOF or timeout."""
    deadline = time.monotonic() + timeout
    buf = bytearray()
    while len(buf) < n:
        left = deadline - time.monotonic()
        check(left > 0, 'got %d of %d bytes within %.1fs'
              % (len(buf), n, timeout))
        sock.settimeout(left)
        try:
            data = sock.recv(n - len(buf))
        except socket.timeout:
            continue
        check(data, 'connection closed after %d of %d bytes' % (len(buf), n))
        buf += data
    return bytes(buf)


def echo_ok(sock, payload, timeout=5.0):
    """Send PAYLOAD and check the same bytes come back."""
    sock.sendall(payload)
    got = recv_exact(sock, len(payload), timeout)
    check(got == payload, 'echo mismatch: sent %r got %r'
          % (payload[:40], got[:40]))


def open_echoing(port, n, tag='hello'):
    """N clients of PORT, each echoed b'TAG <i>\\n' once; left open."""
    socks = []
    for i in range(n):
        s = connect(port)
        echo_ok(s, b'%s %d\n' % (tag.encode(), i))
        socks.append(s)
    return socks


def tls_client_hello():
    """The bytes a TLS client sends first (its ClientHello), from
    Python's ssl module talking to memory."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname='localhost')
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()


def open_many(port, n):
    """N non-blocking connects to PORT, left for the kernel to complete
    (and, past the backlog, to retry): sockets that are held, not used."""
    socks = []
    for _ in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        try:
            s.connect((LOCALHOST, port))
        except BlockingIOError:
            pass
        socks.append(s)
    return socks


def all_echo(socks, tag):
    """Each of SOCKS still echoes (b'TAG <i>\\n'); fails naming the first
    that does not."""
    for i, s in enumerate(socks):
        try:
            echo_ok(s, b'%s %d\n' % (tag.encode(), i))
        except (Failure, OSError) as e:
            raise Failure('connection %d stopped echoing (%s): %s'
                          % (i, tag, e))


def echo_new(port, payload, timeout=5.0):
    """A new client of PORT: PAYLOAD echoed once, then closed."""
    s = connect(port)
    try:
        echo_ok(s, payload, timeout)
    finally:
        s.close()


def wait_closed(sock, timeout):
    """Wait until the peer closes SOCK, discarding data.

    Returns ('eof' | 'reset' | 'timeout', seconds waited).
    """
    t0 = time.monotonic()
    deadline = t0 + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return 'timeout', time.monotonic() - t0
        sock.settimeout(left)
        try:
            data = sock.recv(65536)
        except socket.timeout:
            return 'timeout', time.monotonic() - t0
        except (ConnectionResetError, BrokenPipeError):
            return 'reset', time.monotonic() - t0
        if not data:
            return 'eof', time.monotonic() - t0


def raise_nofile(want):
    """Raise our fd limit to WANT; Skip if the hard limit is lower."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < want:
        raise Skip('RLIMIT_NOFILE hard limit %d < %d needed' % (hard, want))
    if soft != resource.RLIM_INFINITY and soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


_PORTS_GIVEN = set()
_PORT_RNG = random.Random(os.getpid() * 1000003 + time.monotonic_ns())


def _below_ephemeral():
    """(low, high) of the ports below the kernel's ephemeral range, or
    None when that range starts too low to leave room."""
    try:
        with open('/proc/sys/net/ipv4/ip_local_port_range') as f:
            low = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return (10000, low - 1) if low > 12000 else None


def free_port():
    """A TCP port on 127.0.0.1 that nothing uses right now, and one this
    process has not been given before.

    It is picked below the ephemeral range, so no outgoing connection (of
    this or a concurrent test) takes it as its source port before the
    server meant for it binds it; and never twice, since the kernel may
    well pick the same free port twice in a row, and a test that asks for
    a listen port and a dead port must not get one port for both."""
    window = _below_ephemeral()
    for _ in range(1000):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            if window:
                s.bind((LOCALHOST, _PORT_RNG.randint(*window)))
            else:
                s.bind((LOCALHOST, 0))
            port = s.getsockname()[1]
        except OSError:
            continue
        finally:
            s.close()
        if port not in _PORTS_GIVEN:
            _PORTS_GIVEN.add(port)
            return port
    raise Failure('no fresh free port in 1000 tries')


_DEAD = []


def dead_port():
    """A port on 127.0.0.1 that refuses connections for as long as this
    process runs: bound by a socket of ours that never listens, so no
    other process can start listening there meanwhile."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((LOCALHOST, 0))
    _DEAD.append(s)
    _PORTS_GIVEN.add(s.getsockname()[1])
    return s.getsockname()[1]


def blackhole():
    """(port, keep): a port whose connects hang (SYNs dropped).

    A listener with backlog 0 whose one queue slot is taken: Linux drops
    further SYNs, so a connect there only ends by its own timeout. Keep
    KEEP (the sockets) referenced while the port must stay a blackhole.
    """
    lst = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lst.bind((LOCALHOST, 0))
    lst.listen(0)
    port = lst.getsockname()[1]
    keep = [lst]
    for _ in range(4):
        c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        c.settimeout(0.3)
        keep.append(c)
        try:
            c.connect((LOCALHOST, port))
        except socket.timeout:
            return port, keep
    raise Skip('cannot make a blackhole port: SYNs are not dropped here')


# -------------------------------------------------------------- processes

class Backend:
    """A running backend.py process."""

    def __init__(self, proc, port, name, mode):
        self.proc = proc
        self.pid = proc.pid
        self.port = port
        self.name = name
        self.mode = mode

    def __repr__(self):
        return 'Backend(%s %s port %d pid %d)' % (self.name, self.mode,
                                                   self.port, self.pid)


class Baton:
    """A running baton master, started by Harness.start_baton."""

    def __init__(self, harness, proc, config, log_path, ports, nworkers):
        self.h = harness
        self.proc = proc
        self.pid = proc.pid
        self.config = config
        self.log_path = log_path
        self.ports = ports
        self.nworkers = nworkers

    def children(self):
        kids = proc_children(self.pid)
        for pid, _ in kids:
            self.h._note_descendant(pid)
        return kids

    def workers(self):
        """Sorted pids of the master's children named baton-worker."""
        return [pid for pid, comm in self.children() if comm == 'baton-worker']

    def wait_workers(self, n, timeout=10.0, exclude=()):
        """Wait until exactly N workers run, none of them in EXCLUDE."""
        def ok():
            self.check_running()
            w = self.workers()
            return w if len(w) == n and not set(w) & set(exclude) else None
        try:
            return poll_until(ok, timeout, '%d baton-worker children of %d'
                              % (n, self.pid))
        except Failure as e:
            raise Failure('%s; children now: %r' % (e, self.children()))

    def alive(self):
        return self.proc.poll() is None

    def check_running(self):
        rc = self.proc.poll()
        check(rc is None, 'baton (pid %d) exited with status %r'
              % (self.pid, rc))

    def signal(self, sig):
        self.check_running()
        os.kill(self.pid, sig)

    def wait_exit(self, timeout):
        """Exit status once the master exits, or None after TIMEOUT s."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def rss_kib(self):
        """Summed VmRSS of the master and its workers, in KiB."""
        return sum(proc_rss_kib(p) for p in [self.pid] + self.workers())

    def inodes(self):
        """{pid: socket inodes} for the master and each worker."""
        return {p: socket_inodes(p) for p in [self.pid] + self.workers()}

    def holder_of(self, client_sock):
        """Pid of the worker holding the accepted end of CLIENT_SOCK.

        That end has our local port as its remote port and one of baton's
        listen ports as its local port. None if no worker holds it.
        """
        cport = client_sock.getsockname()[1]
        inodes = {r['inode'] for r in tcp_table()
                  if r['remote_port'] == cport
                  and r['local_port'] in self.ports
                  and r['state'] == TCP_ESTABLISHED}
        for pid in self.workers():
            if socket_inodes(pid) & inodes:
                return pid
        return None

    def log_tail(self, n=40):
        try:
            with open(self.log_path, errors='replace') as f:
                return ''.join(f.readlines()[-n:])
        except OSError as e:
            return '(no log: %s)\n' % e

    def log(self):
        with open(self.log_path, errors='replace') as f:
            return f.read()

    def wait_log(self, pattern, timeout=5.0):
        """The match of regex PATTERN in the log, once there is one."""
        rx = re.compile(pattern)
        return poll_until(lambda: rx.search(self.log()), timeout,
                          'log line matching %r' % pattern)

    def check_clean_exits(self):
        """No worker exited with a status or was killed, says the log."""
        check(not re.search(r'exited with status|killed by signal',
                            self.log()),
              'a worker did not end cleanly:\n%s' % self.log_tail())


def become_subreaper():
    """Adopt orphaned descendants (workers whose master died), so they are
    reaped here instead of lingering as zombies under a non-reaping init."""
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(36, 1, 0, 0, 0)      # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        pass


class Harness:
    """One test file: its temp dir, cases, processes and time bounds."""

    def __init__(self, name, file_timeout=120):
        self.name = name
        self.file_timeout = file_timeout
        self.start = time.monotonic()
        self.cases = []
        self.procs = []          # every Popen we started, all cases
        self.case_procs = []     # those of the running case
        self.descendants = {}    # pid -> starttime of baton's children seen
        self.batons = []         # Batons of the running case
        self.case_dir = None
        self.failed = False
        self.tmp = tempfile.mkdtemp(prefix='baton-%s-' % name)
        become_subreaper()
        atexit.register(self.cleanup_all)
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, self._on_signal)
        signal.signal(signal.SIGALRM, self._on_alarm)

    # -- signals

    def _on_signal(self, signum, frame):
        raise Interrupted('test process got signal %d' % signum)

    def _on_alarm(self, signum, frame):
        raise CaseTimeout('case ran past its time bound')

    # -- cases

    def case(self, fn=None, timeout=60):
        """Decorator registering FN as a case bounded to TIMEOUT seconds."""
        def reg(f):
            self.cases.append((f.__name__, f, timeout))
            return f
        return reg(fn) if fn is not None else reg

    def run(self):
        """Run every case; print one line each; return the exit status."""
        if not os.access(BATON, os.X_OK):
            print('SKIP: %s: baton binary not found at %s (set BATON)'
                  % (self.name, BATON))
            self._remove_tmp()
            return SKIP_STATUS
        npass = nfail = nskip = 0
        # BATON_CASES=a,b runs only those cases (for debugging one case).
        only = [c for c in os.environ.get('BATON_CASES', '').split(',') if c]
        for name, fn, timeout in self.cases:
            if only and name not in only:
                continue
            status = self._run_case(name, fn, timeout)
            if status == 'PASS':
                npass += 1
            elif status == 'SKIP':
                nskip += 1
            else:
                nfail += 1
        self.cleanup_all()
        print('%s: %d passed, %d failed, %d skipped'
              % (self.name, npass, nfail, nskip))
        if nfail:
            print('temp dir kept: %s' % self.tmp)
            return 1
        self._remove_tmp()
        return SKIP_STATUS if nskip and not npass else 0

    def _run_case(self, name, fn, timeout):
        left = self.file_timeout - (time.monotonic() - self.start)
        if left < 1:
            print('FAIL: %s: file time bound of %ds used up before it ran'
                  % (name, self.file_timeout))
            return 'FAIL'
        self.case_dir = os.path.join(self.tmp, name)
        os.makedirs(self.case_dir, exist_ok=True)
        self.case_procs, self.batons = [], []
        t0 = time.monotonic()
        status, why = 'PASS', ''
        signal.alarm(max(1, int(min(timeout, left))))
        try:
            fn()
        except Skip as e:
            status, why = 'SKIP', str(e)
        except Failure as e:
            status, why = 'FAIL', str(e)
        except CaseTimeout:
            status, why = 'FAIL', 'time bound of %ds exceeded' % min(timeout,
                                                                     left)
            traceback.print_exc(file=sys.stdout)
        except Interrupted as e:
            signal.alarm(0)
            print('FAIL: %s: %s' % (name, e))
            self._dump_logs()
            self.cleanup_all()
            print('temp dir kept: %s' % self.tmp)
            sys.stdout.flush()
            os._exit(1)
        except Exception as e:
            status, why = 'FAIL', 'unexpected %s: %s' % (type(e).__name__, e)
            traceback.print_exc(file=sys.stdout)
        finally:
            signal.alarm(0)
        if status == 'FAIL':
            self.failed = True
            self._dump_logs()
        self._stop_case_procs()
        report = self._sanitizer_report()
        if report and status != 'FAIL':
            status, why = 'FAIL', 'sanitizer report in %s' % report[0]
            print('---- %s ----\n%s---- end ----' % report)
        dt = time.monotonic() - t0
        print('%s: %s (%.1fs)%s' % (status, name, dt,
                                    ': ' + why if why else ''))
        sys.stdout.flush()
        return status

    def _sanitizer_report(self):
        """(log path, excerpt) of the first ASan/LSan/UBSan report in a
        log of this case's batons (read after they stopped), or None."""
        for b in self.batons:
            try:
                text = b.log()
            except OSError:
                continue
            m = SANITIZER_RE.search(text)
            if m:
                start = text.rfind('\n', 0, m.start()) + 1
                return b.log_path, ''.join(
                    text[start:].splitlines(True)[:40])
        return None

    def _dump_logs(self):
        for b in self.batons:
            print('---- tail of baton log %s (pid %d, rc %r) ----'
                  % (b.log_path, b.pid, b.proc.poll()))
            sys.stdout.write(b.log_tail())
            print('---- end of log ----')

    # -- files

    def path(self, name):
        """NAME inside the running case's own directory."""
        return os.path.join(self.case_dir or self.tmp, name)

    def write_file(self, name, text):
        p = self.path(name)
        with open(p, 'w') as f:
            f.write(text)
        return p

    # -- processes

    def _spawn(self, argv, **kw):
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                             start_new_session=False, **kw)
        self.procs.append(p)
        self.case_procs.append(p)
        return p

    def _note_descendant(self, pid):
        if pid not in self.descendants:
            st = proc_stat(pid)
            if st:
                self.descendants[pid] = st[3]

    def start_backend(self, mode, *args, name='backend', port=0,
                      host=LOCALHOST, timeout=30.0, options=()):
        """Start backend.py [OPTIONS] MODE ARGS; wait for 'READY <port>'
        (a bound, not a pause: a loaded sanitizer run can take seconds)."""
        argv = ([PYTHON, BACKEND, '--host', host, '--port', str(port),
                 '--name', name] + list(options) + [mode]
                + [str(a) for a in args])
        errlog = open(self.path('backend-%s.err' % name), 'ab')
        try:
            p = self._spawn(argv, stdout=subprocess.PIPE, stderr=errlog)
        finally:
            errlog.close()
        deadline = time.monotonic() + timeout
        line = b''
        while not line.endswith(b'\n'):
            left = deadline - time.monotonic()
            if left <= 0 or p.poll() is not None:
                raise Failure('backend %s %s did not become ready (rc %r, '
                              'got %r)' % (name, mode, p.poll(), line))
            r, _, _ = select.select([p.stdout], [], [], left)
            if r:
                c = os.read(p.stdout.fileno(), 1)
                if not c:
                    continue
                line += c
        m = re.match(rb'READY (\d+)\n$', line)
        check(m, 'backend said %r, not READY <port>' % line)
        return Backend(p, int(m.group(1)), name, mode)

    def start_baton(self, config_text, name='proxy.ini', env_extra=None,
                    timeout=10.0, wait=True, preexec_fn=None):
        """Write CONFIG_TEXT and run baton -c on it.

        With WAIT, returns once the master holds a listening socket on every
        `listen` port of the file and the configured number of workers runs.
        PREEXEC_FN runs in the child before baton starts (a seccomp filter,
        say). BATON_TEST_IO_URING in the environment sets io_uring = in
        every file that does not (a run of the suite on the epoll path).
        """
        config_text = with_io_uring(config_text)
        cfg = self.write_file(name, config_text)
        log_path = self.path(name + '.log')
        ports = [int(m) for m in re.findall(r'(?m)^\s*listen\s*=\s*\S*:(\d+)',
                                            config_text)]
        m = re.search(r'(?m)^\s*workers\s*=\s*(\d+)', config_text)
        nworkers = int(m.group(1)) if m else None
        env = dict(os.environ)
        if env_extra:
            env.update(env_extra)
        with open(log_path, 'ab') as log:
            p = self._spawn([BATON, '-c', cfg], stdout=log, stderr=log,
                            env=env, preexec_fn=preexec_fn)
        b = Baton(self, p, cfg, log_path, ports, nworkers)
        self.batons.append(b)
        if wait:
            self.wait_listening(b, timeout)
            if nworkers:
                b.wait_workers(nworkers, timeout)
        return b

    def wait_listening(self, b, timeout=10.0):
        """Wait until B's master has a LISTEN socket on each of its ports."""
        def ready():
            b.check_running()
            mine = socket_inodes(b.pid)
            up = {r['local_port'] for r in tcp_table()
                  if r['state'] == TCP_LISTEN and r['inode'] in mine}
            return set(b.ports) <= up
        poll_until(ready, timeout, 'baton to listen on %r' % b.ports)

    def stop_proc(self, p, grace=STOP_GRACE):
        """SIGTERM P, SIGKILL it after GRACE seconds; reap it."""
        if p.poll() is not None:
            return
        if p.args and p.args[0] == BATON:
            for pid, _ in proc_children(p.pid):
                self._note_descendant(pid)
        try:
            p.terminate()
            p.wait(grace)
        except subprocess.TimeoutExpired:
            p.kill()
            try:
                p.wait(grace)
            except subprocess.TimeoutExpired:
                print('warning: pid %d survived SIGKILL' % p.pid)
        except OSError:
            pass

    def _kill_descendants(self):
        # Workers baton forked; the master should end them, but a broken
        # master must not leave them behind. Match starttime: pids recycle.
        # As a subreaper we inherit orphaned workers: reap those too.
        for pid, start in list(self.descendants.items()):
            st = proc_stat(pid)
            if st and st[3] == start:
                if st[1] not in ('Z', 'X'):
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except OSError:
                        pass
                if st[2] == os.getpid():
                    try:
                        os.waitpid(pid, 0)
                    except ChildProcessError:
                        pass
            self.descendants.pop(pid, None)

    def _stop_case_procs(self):
        for p in reversed(self.case_procs):
            self.stop_proc(p)
            for stream in (p.stdout, p.stderr):
                if stream:
                    stream.close()
        self._kill_descendants()
        self.case_procs = []

    def cleanup_all(self):
        """Stop every process this file started. Safe to call twice."""
        signal.alarm(0)
        for p in reversed(self.procs):
            self.stop_proc(p, grace=1.0)
        self._kill_descendants()

    def _remove_tmp(self):
        shutil.rmtree(self.tmp, ignore_errors=True)


# ------------------------------------------------------------ config bits

def with_io_uring(text):
    """TEXT with `io_uring = $BATON_TEST_IO_URING` in [global], unless it
    says already or the variable is unset."""
    mode = os.environ.get('BATON_TEST_IO_URING')
    if not mode or re.search(r'(?m)^\s*io_uring\s*=', text):
        return text
    if re.search(r'(?m)^\s*\[global\]', text):
        return re.sub(r'(?m)^(\s*\[global\]\s*)$',
                      lambda m: m.group(1) + '\nio_uring = ' + mode, text,
                      count=1)
    return '[global]\nio_uring = %s\n\n%s' % (mode, text)


def config(frontend_port, servers, workers=2, drain='5s', idle='30s',
           connect_timeout='1s', retries=2, extra_global='',
           extra_backend='', sport=None):
    """A proxy.ini with one frontend 'web' on FRONTEND_PORT and backend 'app'
    and, with SPORT, a [stats] section listening there (last, so that the
    caller may append to it).

    SERVERS: list of 'NAME HOST:PORT [options]' strings.
    """
    lines = ['[global]',
             'workers = %d' % workers,
             'drain_timeout = %s' % drain,
             'log_level = info',
             extra_global,
             '',
             '[frontend web]',
             'listen = 127.0.0.1:%d' % frontend_port,
             'backend = app',
             'timeout_idle = %s' % idle,
             '',
             '[backend app]',
             'balance = roundrobin']
    lines += ['server = %s' % s for s in servers]
    lines += ['connect_timeout = %s' % connect_timeout,
              'retries = %d' % retries,
              extra_backend, '']
    text = '\n'.join(lines)
    if sport:
        text += '\n[stats]\nlisten = 127.0.0.1:%d\n' % sport
    return text


def get_stats(sport, timeout=3.0, patient=False):
    """GET /stats from baton's [stats] port SPORT, parsed.

    A request in flight while the master forks a worker can be cut
    without a response (test_reload.py's stats_connection_survives_fork
    tests that on its own); where /stats is only the observer, such a
    request is noted in the output and retried. PATIENT (under chaos)
    retries after any HTTP or socket error, a refused connection too,
    quietly and 0.1 s later. Three in a row fail the case.
    """
    why = None
    for _ in range(3):
        c = http.client.HTTPConnection(LOCALHOST, sport, timeout=timeout)
        try:
            c.request('GET', '/stats')
            r = c.getresponse()
            body = r.read()
        except (http.client.HTTPException, OSError) as e:
            if patient:
                why = repr(e)
                time.sleep(0.1)
                continue
            if not isinstance(e, (http.client.RemoteDisconnected,
                                  ConnectionResetError)):
                raise
            print('  note: GET /stats cut without a response (%r); retrying'
                  % e)
            continue
        finally:
            c.close()
        check(r.status == 200, 'GET /stats: status %d' % r.status)
        return json.loads(body.decode())
    if patient:
        raise Failure('GET /stats failed 3 times in a row, last: %s' % why)
    raise Failure('GET /stats cut without a response 3 times in a row')


__all__ = ['Harness', 'Failure', 'Skip', 'check', 'poll_until', 'connect',
           'try_connect', 'blackhole', 'recv_line', 'recv_exact', 'echo_ok',
           'open_echoing', 'open_many', 'tls_client_hello', 'all_echo', 'echo_new', 'wait_closed',
           'raise_nofile', 'free_port', 'dead_port', 'config', 'get_stats',
           'tcp_table', 'socket_inodes', 'fd_count', 'cpu_seconds', 'steal_channels',
           'proc_children', 'proc_alive', 'proc_state', 'proc_rss_kib',
           'TCP_ESTABLISHED', 'TCP_LISTEN', 'PYTHON', 'BATON']
