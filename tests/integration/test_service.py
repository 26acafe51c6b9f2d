#!/usr/bin/python3
"""test_service.py -- baton as a service: systemd's notify protocol, and
pidfile and log_file changed by a reload.

A datagram socket stands in for systemd: baton gets its path in
NOTIFY_SOCKET and must say READY=1 once listening, RELOADING=1 then
READY=1 around every reload (failed ones too), STOPPING=1 on stop, and
STATUS= lines. A reload that changes pidfile or log_file applies them
(the old pidfile removed, every process logging to the new file) or,
when the new path cannot be had, fails and leaves everything as it was.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys

sys.dont_write_bytecode = True  # the source tree may be read-only
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402
from harness import check  # noqa: E402

h = H.Harness('test_service', file_timeout=90)


class Manager:
    """The service manager's end of NOTIFY_SOCKET."""

    def __init__(self):
        self.path = h.path('notify.sock')
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.got = []       # every message, in order

    def states(self, timeout=0.2):
        """Messages that arrive within TIMEOUT s of each other."""
        self.sock.settimeout(timeout)
        try:
            while True:
                self.got.append(self.sock.recv(4096).decode())
        except socket.timeout:
            pass
        return self.got

    def wait_for(self, key, count=1, timeout=10.0):
        """Until COUNT messages hold the line KEY."""
        def enough():
            self.states(0.05)
            n = sum(key in m.split('\n') for m in self.got)
            return n >= count or None
        H.poll_until(enough, timeout, '%d %r from baton (got %r)'
                     % (count, key, self.got))

    def close(self):
        self.sock.close()


def keys(msgs):
    """The state changes among MSGS, in order (STATUS= left out)."""
    out = []
    for m in msgs:
        out += [ln for ln in m.split('\n')
                if ln in ('READY=1', 'RELOADING=1', 'STOPPING=1')]
    return out


def conf(port, be, extra=''):
    return H.config(port, ['s1 127.0.0.1:%d' % be.port], workers=2,
                    extra_global=extra)


@h.case
def notify_ready_reloading_stopping():
    be = h.start_backend('echo', name='echo')
    port = H.free_port()
    mgr = Manager()
    try:
        b = h.start_baton(conf(port, be),
                          env_extra={'NOTIFY_SOCKET': mgr.path})
        mgr.wait_for('READY=1')
        check(any(('MAINPID=%d' % b.pid) in m.split('\n') for m in mgr.got),
              'no MAINPID=%d in %r' % (b.pid, mgr.got))
        status = [m for m in mgr.states() if m.startswith('STATUS=')]
        check(status and 'workers running' in status[-1],
              'no STATUS= with the workers: %r' % mgr.got)
        H.echo_new(port, b'ready\n')
        # A good reload, then one that fails: both end in READY=1.
        b.signal(signal.SIGHUP)
        mgr.wait_for('READY=1', 2)
        with open(b.config, 'a') as f:
            f.write('\n[bogus]\n')
        b.signal(signal.SIGHUP)
        mgr.wait_for('READY=1', 3)
        b.wait_log('reload failed')
        H.echo_new(port, b'still\n')
        b.signal(signal.SIGTERM)
        mgr.wait_for('STOPPING=1')
        check(b.wait_exit(10) == 0, 'baton did not stop cleanly')
        got = keys(mgr.states())
        want = ['READY=1', 'RELOADING=1', 'READY=1', 'RELOADING=1',
                'READY=1', 'STOPPING=1']
        check(got == want, 'notifications %r, want %r' % (got, want))
    finally:
        mgr.close()


def pid_in(path):
    with open(path) as f:
        return int(f.read())


@h.case
def reload_moves_the_pidfile():
    be = h.start_backend('echo', name='echo')
    port = H.free_port()
    a, bpath = h.path('a.pid'), h.path('b.pid')
    b = h.start_baton(conf(port, be, 'pidfile = %s' % a))
    H.poll_until(lambda: os.path.exists(a), 5, 'the pidfile')
    check(pid_in(a) == b.pid, 'pidfile holds %d' % pid_in(a))
    # A path that cannot be written fails the reload: a.pid stays.
    with open(b.config, 'w') as f:
        f.write(conf(port, be, 'pidfile = %s' % h.path('no/such/x.pid')))
    b.signal(signal.SIGHUP)
    b.wait_log('reload failed')
    check(os.path.exists(a) and pid_in(a) == b.pid, 'a.pid lost by a '
          'failed reload')
    # A good one moves it.
    with open(b.config, 'w') as f:
        f.write(conf(port, be, 'pidfile = %s' % bpath))
    b.signal(signal.SIGHUP)
    b.wait_log('reloaded: generation 2')
    check(os.path.exists(bpath) and pid_in(bpath) == b.pid,
          'the new pidfile was not written')
    check(not os.path.exists(a), 'the old pidfile was left behind')
    H.echo_new(port, b'moved\n')
    b.signal(signal.SIGTERM)
    check(b.wait_exit(10) == 0, 'baton did not stop cleanly')
    check(not os.path.exists(bpath), 'the pidfile was left at exit')
    check(not os.path.exists(a + '.tmp') and not os.path.exists(
        bpath + '.tmp'), 'a temporary pidfile was left')


def read(path):
    try:
        with open(path, errors='replace') as f:
            return f.read()
    except FileNotFoundError:
        return ''


@h.case
def reload_switches_the_log_file():
    be = h.start_backend('echo', name='echo')
    dead = H.dead_port()
    port = H.free_port()
    l1, l2 = h.path('one.log'), h.path('two.log')
    servers = ['s1 127.0.0.1:%d' % be.port, 'dead 127.0.0.1:%d' % dead]

    def text(extra):
        return H.config(port, servers, workers=2, extra_global=extra,
                        retries=1)

    b = h.start_baton(text('log_file = %s' % l1))
    H.poll_until(lambda: 'started' in read(l1), 5, 'lines in one.log')
    # A log file that cannot be opened fails the reload.
    with open(b.config, 'w') as f:
        f.write(text('log_file = %s' % h.path('no/such/x.log')))
    b.signal(signal.SIGHUP)
    H.poll_until(lambda: 'reload failed' in read(l1), 5,
                 'the failed reload in one.log')
    with open(b.config, 'w') as f:
        f.write(text('log_file = %s' % l2))
    b.signal(signal.SIGHUP)
    H.poll_until(lambda: 'reloaded: generation 2' in read(l2), 5,
                 'the reload in two.log')
    check('log_file: now %s' % l2 in read(l1), 'one.log does not say '
          'where the log went:\n%s' % read(l1)[-800:])
    n1 = len(read(l1))
    # Workers of both generations log to two.log now: connections to the
    # dead server make them say so.
    for i in range(4):
        H.connect(port).close()
    H.poll_until(lambda: 'connect to app/dead' in read(l2), 5,
                 'a worker line in two.log')
    b.signal(signal.SIGTERM)
    check(b.wait_exit(10) == 0, 'baton did not stop cleanly')
    check(len(read(l1)) == n1, 'lines still went to one.log:\n%s'
          % read(l1)[n1:][:800])
    check('stopped' in read(l2), 'two.log lacks the stop')


@h.case
def unit_file_verifies():
    """contrib/baton.service passes systemd-analyze verify, pointed at
    this build's binary and the example configuration."""
    tool = shutil.which('systemd-analyze')
    if tool is None:
        raise H.Skip('systemd-analyze is not installed')
    top = os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))))
    with open(os.path.join(top, 'contrib', 'baton.service')) as f:
        text = f.read()
    check('Type=notify' in text and 'ExecReload=' in text,
          'the unit is not Type=notify with ExecReload')
    text = text.replace('/usr/sbin/baton', os.path.abspath(H.BATON))
    text = text.replace('/etc/baton/proxy.ini',
                        os.path.join(top, 'conf', 'proxy.ini'))
    env = dict(os.environ)
    mandir = os.path.join(top, 'man')
    if os.path.exists(os.path.join(mandir, 'man8', 'baton.8')):
        env['MANPATH'] = mandir + ':'
    else:   # the man pages are checked where they are built
        text = '\n'.join(ln for ln in text.split('\n')
                         if not ln.startswith('Documentation='))
    unit = h.write_file('baton.service', text)
    r = subprocess.run([tool, 'verify', unit], env=env, timeout=60,
                       capture_output=True, text=True)
    out = (r.stdout + r.stderr).strip()
    check(r.returncode == 0 and out == '', 'systemd-analyze verify: rc %d\n%s'
          % (r.returncode, out))


if __name__ == '__main__':
    sys.exit(h.run())
