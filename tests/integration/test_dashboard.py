#!/usr/bin/python3
"""test_dashboard.py -- the stats dashboard (GET /) in a real headless
browser: it loads without console errors or outside requests, shows the
workers, frontends and servers of the live /stats, fits a 375 px phone,
reads its token from the URL fragment, shows and clears its error
banner when polls fail and recover, and never interprets markup found in
the strings of /stats.

Drives Debian's chromium over the Chrome DevTools Protocol with a small
standard-library WebSocket client. Screenshots go to the case's temp dir
and to $ARTEFACTS_DIR (default: ./tests/integration/artefacts under the
current directory, the build dir under `make check`). Exits 77 when
chromium is not installed.
"""

import base64
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
import urllib.request

sys.dont_write_bytecode = True  # the source tree may be read-only
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402
from harness import check  # noqa: E402

CHROMIUM = os.environ.get('CHROMIUM') or '/usr/bin/chromium'
CHROME_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu',
                '--disable-background-networking',
                '--disable-component-update',
                '--disable-sync', '--no-first-run', '--disable-quic',
                '--no-default-browser-check', '--disable-dev-shm-usage',
                '--disable-extensions', '--password-store=basic',
                '--use-mock-keychain', '--mute-audio',
                '--remote-debugging-address=127.0.0.1',
                '--remote-debugging-port=0', '--window-size=1400,1000']
TOKEN = 'dash-s3cret'

h = H.Harness('test_dashboard', file_timeout=300)


class CdpError(Exception):
    """The browser answered a command with an error, or went away."""


# ------------------------------------------------------------- WebSocket

class WebSocket:
    """A minimal RFC 6455 client: text frames, masking, ping, close."""

    def __init__(self, host, port, path, timeout=10.0):
        self.sock = socket.create_connection((host, port), timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        req = ('GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n'
               'Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n'
               'Sec-WebSocket-Version: 13\r\n\r\n' % (path, host, port, key))
        self.sock.sendall(req.encode())
        self.buf = b''
        while b'\r\n\r\n' not in self.buf:
            data = self.sock.recv(4096)
            if not data:
                raise CdpError('DevTools closed the WebSocket handshake')
            self.buf += data
        head, self.buf = self.buf.split(b'\r\n\r\n', 1)
        if not head.startswith(b'HTTP/1.1 101'):
            raise CdpError('WebSocket handshake refused: %r' % head[:200])
        want = base64.b64encode(hashlib.sha1(
            (key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').encode()).digest())
        if want not in head:
            raise CdpError('bad Sec-WebSocket-Accept in %r' % head[:300])

    def _frame(self, opcode, payload):
        n = len(payload)
        if n < 126:
            hdr = struct.pack('!BB', 0x80 | opcode, 0x80 | n)
        elif n < 1 << 16:
            hdr = struct.pack('!BBH', 0x80 | opcode, 0x80 | 126, n)
        else:
            hdr = struct.pack('!BBQ', 0x80 | opcode, 0x80 | 127, n)
        mask = os.urandom(4)
        body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(hdr + mask + body)

    def send_text(self, text):
        self._frame(0x1, text.encode())

    def _read(self, n, deadline):
        while len(self.buf) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout()
            self.sock.settimeout(left)
            data = self.sock.recv(1 << 20)
            if not data:
                raise CdpError('DevTools closed the WebSocket')
            self.buf += data
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def recv_text(self, timeout):
        """One whole text message; socket.timeout after TIMEOUT seconds."""
        deadline = time.monotonic() + timeout
        parts = []
        while True:
            b0, b1 = self._read(2, deadline)
            n = b1 & 0x7f
            if n == 126:
                n = struct.unpack('!H', self._read(2, deadline))[0]
            elif n == 127:
                n = struct.unpack('!Q', self._read(8, deadline))[0]
            mask = self._read(4, deadline) if b1 & 0x80 else None
            data = self._read(n, deadline)
            if mask:
                data = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
            op = b0 & 0x0f
            if op == 0x9:
                self._frame(0xA, data)
            elif op == 0x8:
                raise CdpError('DevTools closed the WebSocket')
            elif op in (0x0, 0x1, 0x2):
                parts.append(data)
                if b0 & 0x80:
                    return b''.join(parts).decode()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


# ------------------------------------------------------------ the browser

class Browser:
    """Headless chromium in its own process group, one page attached."""

    def __init__(self, workdir, timeout=100.0):
        self.dir = os.path.abspath(os.path.join(workdir, 'chromium'))
        os.makedirs(self.dir, exist_ok=True)
        self.events = []
        self.handlers = {}
        self.next_id = 0
        self.ws = None
        env = dict(os.environ, HOME=self.dir,
                   XDG_CONFIG_HOME=os.path.join(self.dir, 'config'),
                   XDG_CACHE_HOME=os.path.join(self.dir, 'cache'))
        profile = os.path.join(self.dir, 'profile')
        try:        # a stale one would point at a dead browser
            os.unlink(os.path.join(profile, 'DevToolsActivePort'))
        except FileNotFoundError:
            pass
        self.errlog = open(os.path.join(self.dir, 'stderr.log'), 'ab')
        self.proc = subprocess.Popen(
            [CHROMIUM] + CHROME_FLAGS + ['--user-data-dir=' + profile,
                                         'about:blank'],
            stdin=subprocess.DEVNULL, stdout=self.errlog, stderr=self.errlog,
            env=env, start_new_session=True)
        try:
            port, path = H.poll_until(
                lambda: self._active_port(profile), timeout,
                'chromium to write DevToolsActivePort', interval=0.05)
            self.ws = WebSocket('127.0.0.1', port, path)
            target = self.call('Target.createTarget',
                               {'url': 'about:blank'})['targetId']
            self.session = self.call('Target.attachToTarget',
                                     {'targetId': target,
                                      'flatten': True})['sessionId']
            for domain in ('Runtime', 'Log', 'Page', 'Network'):
                self.send(domain + '.enable')
        except BaseException:
            self.close()
            raise

    def _active_port(self, profile):
        if self.proc.poll() is not None:
            raise H.Failure('chromium exited with status %r; see %s'
                            % (self.proc.returncode, self.errlog.name))
        try:
            with open(os.path.join(profile, 'DevToolsActivePort')) as f:
                lines = f.read().split('\n')
        except OSError:
            return None
        if len(lines) < 2 or not lines[0].isdigit() or not lines[1]:
            return None
        return int(lines[0]), lines[1]

    # -- protocol

    def call(self, method, params=None, session=None, timeout=15.0):
        """Send METHOD and return its result; events are queued meanwhile."""
        self.next_id += 1
        mid = self.next_id
        msg = {'id': mid, 'method': method, 'params': params or {}}
        if session:
            msg['sessionId'] = session
        self.ws.send_text(json.dumps(msg))
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise H.Failure('no answer to %s within %.0fs'
                                % (method, timeout))
            m = self._recv(left)
            if m is not None and m.get('id') == mid:
                if 'error' in m:
                    raise CdpError('%s: %s' % (method, m['error']))
                return m.get('result', {})

    def send(self, method, params=None, timeout=15.0):
        """call() on the attached page."""
        return self.call(method, params, self.session, timeout)

    def _recv(self, timeout):
        try:
            m = json.loads(self.ws.recv_text(timeout))
        except socket.timeout:
            return None
        if 'method' in m:
            self.events.append(m)
            fn = self.handlers.get(m['method'])
            if fn:
                fn(m.get('params', {}))
        return m

    def pump(self, seconds):
        """Process events for SECONDS."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self._recv(max(0.01, deadline - time.monotonic()))

    def eval(self, expr):
        """The JSON value of the JS expression EXPR in the page."""
        r = self.send('Runtime.evaluate', {'expression': expr,
                                           'returnByValue': True,
                                           'awaitPromise': True})
        if 'exceptionDetails' in r:
            raise H.Failure('JS %r threw: %s' % (expr, r['exceptionDetails']))
        return r['result'].get('value')

    def wait_js(self, expr, timeout, what):
        """Wait until EXPR is truthy in the page; returns its value."""
        deadline = time.monotonic() + timeout
        while True:
            v = self.eval(expr)
            if v:
                return v
            if time.monotonic() >= deadline:
                raise H.Failure('timed out after %.0fs waiting for %s (%s);'
                                ' console errors: %r'
                                % (timeout, what, expr,
                                   self.console_errors()))
            self.pump(0.1)

    def navigate(self, url, timeout=10.0):
        """Load URL and wait for its load event."""
        seen = len(self.events)
        r = self.send('Page.navigate', {'url': url})
        check('errorText' not in r, 'navigating to %s: %r' % (url, r))
        deadline = time.monotonic() + timeout
        while not any(e['method'] == 'Page.loadEventFired'
                      for e in self.events[seen:]):
            left = deadline - time.monotonic()
            check(left > 0, 'no load event for %s within %.0fs'
                  % (url, timeout))
            self._recv(left)

    def screenshot(self, name, workdir):
        """Full-page PNG as WORKDIR/NAME and in the artefacts dir."""
        m = self.send('Page.getLayoutMetrics')
        size = m.get('cssContentSize') or m['contentSize']
        clip = {'x': 0, 'y': 0, 'width': size['width'],
                'height': min(size['height'], 8000), 'scale': 1}
        r = self.send('Page.captureScreenshot',
                      {'format': 'png', 'clip': clip,
                       'captureBeyondViewport': True}, timeout=30)
        png = base64.b64decode(r['data'])
        check(png.startswith(b'\x89PNG'), 'screenshot is not a PNG')
        path = os.path.join(workdir, name)
        with open(path, 'wb') as f:
            f.write(png)
        art = (os.environ.get('ARTEFACTS_DIR')
               or os.path.join(os.getcwd(), 'tests', 'integration',
                               'artefacts'))
        try:
            os.makedirs(art, exist_ok=True)
            shutil.copy(path, os.path.join(art, name))
            print('  screenshot: %s' % os.path.join(art, name))
        except OSError as e:
            print('  screenshot kept in %s only (%s)' % (path, e))
        return path

    # -- what the page did

    def console_errors(self, network_too=True):
        """Console errors, exceptions and (with NETWORK_TOO) failed loads."""
        out = []
        for e in self.events:
            p = e.get('params', {})
            if e['method'] == 'Runtime.exceptionThrown':
                d = p.get('exceptionDetails', {})
                out.append('exception: %s %s' % (
                    d.get('text'), d.get('exception', {}).get('description')))
            elif (e['method'] == 'Runtime.consoleAPICalled'
                  and p.get('type') in ('error', 'assert')):
                out.append('console.%s: %s' % (p['type'], ' '.join(
                    str(a.get('value', a.get('description')))
                    for a in p.get('args', []))))
            elif (e['method'] == 'Log.entryAdded'
                  and p.get('entry', {}).get('level') == 'error'
                  and (network_too
                       or p['entry'].get('source') != 'network')):
                out.append('log (%s): %s %s' % (
                    p['entry'].get('source'), p['entry'].get('text'),
                    p['entry'].get('url', '')))
        return out

    def requested_urls(self):
        return [e['params']['request']['url'] for e in self.events
                if e['method'] == 'Network.requestWillBeSent']

    # -- cleanup

    def close(self):
        """Kill chromium: its process group, plus the helpers that left it
        (crashpad starts its own session); reap those that became ours."""
        if self.ws:
            self.ws.close()
            self.ws = None
        seen = set()
        for sig, wait in ((signal.SIGTERM, 3.0), (signal.SIGKILL, 3.0)):
            # Looked up again each round: only live processes, so a pid
            # that ended and was reused is never signalled.
            pids = _chromium_pids(self.proc.pid, self.dir)
            seen |= pids
            if not pids:
                break
            for pid in pids:
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + wait
            while (_chromium_pids(self.proc.pid, self.dir)
                   and time.monotonic() < deadline):
                time.sleep(0.05)
        try:
            self.proc.wait(3)
        except subprocess.TimeoutExpired:
            print('warning: chromium pid %d survived SIGKILL' % self.proc.pid)
        # The harness is a subreaper: orphaned helpers are our children.
        for pid in seen - {self.proc.pid}:
            st = H.proc_stat(pid)
            if st and st[2] == os.getpid():
                try:
                    os.waitpid(pid, 0)
                except ChildProcessError:
                    pass
        self.errlog.close()


def _chromium_pids(pgid, marker):
    """Live pids in process group PGID or with MARKER in their command
    line (chromium's helpers get our private directories as arguments)."""
    out = set()
    for name in os.listdir('/proc'):
        if not name.isdigit():
            continue
        try:
            with open('/proc/%s/stat' % name) as f:
                data = f.read()
            rest = data[data.rindex(')') + 2:].split()
            if rest[0] in ('Z', 'X'):
                continue
            if int(rest[2]) == pgid:
                out.add(int(name))
                continue
            with open('/proc/%s/cmdline' % name, 'rb') as f:
                if marker.encode() in f.read():
                    out.add(int(name))
        except (OSError, ValueError, IndexError):
            continue
    return out


# ----------------------------------------------------------------- helpers

def get_stats(port, token=None):
    req = urllib.request.Request('http://127.0.0.1:%d/stats' % port)
    if token:
        req.add_header('Authorization', 'Bearer ' + token)
    with urllib.request.urlopen(req, timeout=3) as r:
        return json.loads(r.read().decode())


def dashboard_config(fport, aport, sport, servers, workers, token=None,
                     extra=()):
    lines = ['[global]', 'workers = %d' % workers, 'drain_timeout = 2s',
             'log_level = info', '', '[stats]',
             'listen = 127.0.0.1:%d' % sport]
    if token:
        lines.append('token = %s' % token)
    lines += ['', '[frontend web]', 'listen = 127.0.0.1:%d' % fport,
              'backend = app', '', '[frontend admin.v2]',
              'listen = 127.0.0.1:%d' % aport,
              'listen = 127.0.0.1:%d' % H.free_port(), 'backend = app', '',
              '[backend app]', 'balance = roundrobin']
    lines += ['server = %s' % s for s in servers]
    lines += ['connect_timeout = 1s', 'retries = 1'] + list(extra) + ['']
    return '\n'.join(lines)


def start_proxy(workers, token=None, servers=None, extra=()):
    """Backends a1 (weight 2), a2 and a backup; baton in front of them."""
    a1 = h.start_backend('name', name='a1')
    a2 = h.start_backend('name', name='a2')
    if servers is None:
        servers = ['a1 127.0.0.1:%d weight=2' % a1.port,
                   'a2 127.0.0.1:%d' % a2.port,
                   'spare 127.0.0.1:%d backup' % H.dead_port()]
    fport, aport, sport = H.free_port(), H.free_port(), H.free_port()
    conf = dashboard_config(fport, aport, sport, servers, workers, token,
                            extra)
    b = h.start_baton(conf)
    b.stats_port, b.web_port = sport, fport
    b.backends = {'a1': a1, 'a2': a2}
    return b


def traffic(port, n):
    """N short echo connections through PORT."""
    for i in range(n):
        s = H.connect(port)
        try:
            H.recv_line(s)
            H.echo_ok(s, b'dashboard %d\n' % i * 20)
        finally:
            s.close()


ROWS_JS = r'''(() => {
  const cell = (tr, label) => {
    const td = [...tr.cells].find(c => c.dataset.label === label);
    return td ? td.textContent.trim() : null;
  };
  return {
    polls: +document.body.dataset.polls,
    state: document.body.dataset.state,
    version: document.getElementById('version').textContent,
    pid: document.getElementById('pid').textContent,
    error: document.getElementById('error').hidden ? null :
      document.getElementById('error').textContent,
    workers: [...document.querySelectorAll('tr.worker')].map(tr => ({
      id: tr.dataset.workerId, pid: tr.dataset.pid, state: tr.dataset.state,
      bar: tr.querySelector('.bar i').style.width})),
    frontends: [...document.querySelectorAll('tr.frontend')].map(tr => ({
      name: tr.dataset.name, total: cell(tr, 'Total'),
      listen: cell(tr, 'Listen')})),
    servers: [...document.querySelectorAll('tr.server')].map(tr => ({
      name: tr.dataset.name, status: tr.dataset.status,
      backup: tr.dataset.backup,
      badge: tr.querySelector('.badge').textContent})),
  };
})()'''


def count(text):
    return int(re.sub(r'[^0-9]', '', text or '') or -1)


def with_browser(fn):
    """Run FN(browser) with a fresh chromium; always kill it after."""
    br = Browser(h.path('.'))
    try:
        return fn(br)
    finally:
        br.close()


# ------------------------------------------------------------------- cases

@h.case(timeout=120)
def dashboard_shows_live_data():
    b = start_proxy(workers=3)
    traffic(b.web_port, 24)
    held = [H.connect(b.web_port) for _ in range(3)]
    try:
        for s in held:
            H.recv_line(s)
        H.poll_until(lambda: get_stats(b.stats_port)['connections']['active']
                     >= 3, 5, '3 active connections in /stats')
        with_browser(lambda br: check_live_page(br, b))
    finally:
        for s in held:
            s.close()


def check_live_page(br, b):
    url = 'http://127.0.0.1:%d/' % b.stats_port
    br.navigate(url)
    br.wait_js("document.querySelectorAll('tr.worker').length === 3 && "
               "+document.body.dataset.polls >= 3", 15,
               'three worker rows after three polls')
    page = br.eval(ROWS_JS)
    st = get_stats(b.stats_port)
    print('  page: %d workers, %d frontends, %d servers, %d polls'
          % (len(page['workers']), len(page['frontends']),
             len(page['servers']), page['polls']))

    check(page['state'] == 'ok' and page['error'] is None,
          'page in error state: %r' % page)
    check(st['version'] in page['version'], 'version %r shown as %r'
          % (st['version'], page['version']))
    check(page['pid'] == str(b.pid), 'pid %r shown for master %d'
          % (page['pid'], b.pid))
    want = sorted((str(w['id']), str(w['pid'])) for w in st['workers'])
    got = sorted((w['id'], w['pid']) for w in page['workers'])
    check(got == want, 'worker rows %r, /stats has %r' % (got, want))
    check(sorted(int(p) for _, p in got) == b.workers(),
          'worker pids %r are not the baton-worker children %r'
          % (got, b.workers()))
    check(all(w['state'] == 'running' for w in page['workers']),
          'worker states %r' % page['workers'])
    check(any(w['bar'] == '100%' for w in page['workers']),
          'no load bar full with 3 connections open: %r' % page['workers'])

    fe = {f['name']: f for f in page['frontends']}
    check(set(fe) == {'web', 'admin.v2'}, 'frontend rows %r' % fe)
    check(count(fe['web']['total']) >= 24,
          'frontend web total %r after 27 connections' % fe['web']['total'])
    check(count(fe['admin.v2']['total']) == 0,
          'frontend admin.v2 total %r' % fe['admin.v2']['total'])
    check(fe['admin.v2']['listen'].count('127.0.0.1:') == 2,
          'admin.v2 listen addresses %r' % fe['admin.v2']['listen'])

    sv = {s['name']: s for s in page['servers']}
    check(set(sv) == {'a1', 'a2', 'spare'}, 'server rows %r' % sv)
    for s in sv.values():
        check(s['status'] == 'up' and s['badge'] == 'up',
              'server %s shown as %r' % (s['name'], s))
    check(sv['spare']['backup'] == 'true' and sv['a1']['backup'] == 'false',
          'backup flags %r' % sv)

    # Rates come from successive polls: traffic now must show up.
    traffic(b.web_port, 10)
    rate = "document.getElementById('conn-rate').textContent"
    br.wait_js("%s !== '0.0' && %s !== '\u2013'" % (rate, rate), 6,
               'a non-zero connection rate')

    br.screenshot('dashboard-desktop.png', h.path('.'))
    br.send('Emulation.setDeviceMetricsOverride',
            {'width': 375, 'height': 800, 'deviceScaleFactor': 2,
             'mobile': True})
    polls = br.eval('+document.body.dataset.polls')
    br.wait_js('+document.body.dataset.polls > %d' % polls, 5,
               'a poll at 375 px')
    wide = br.eval('''(() => {
      const w = document.documentElement.scrollWidth;
      const over = [...document.querySelectorAll('body *')]
        .filter(e => e.getBoundingClientRect().right > 375.5)
        .slice(0, 5).map(e => e.tagName + '.' + e.className);
      return {w: w, over: over};
    })()''')
    check(wide['w'] <= 375 and not wide['over'],
          'horizontal overflow at 375 px: %r' % wide)
    br.screenshot('dashboard-mobile.png', h.path('.'))

    errors = br.console_errors()
    check(not errors, 'console errors: %r' % errors)
    origin = url.rstrip('/')
    outside = [u for u in br.requested_urls()
               if not (u.startswith(origin + '/') or u.startswith('data:'))]
    check(not outside, 'requests outside baton: %r' % outside)


@h.case(timeout=60)
def dashboard_token_errors_and_recovery():
    b = start_proxy(workers=1, token=TOKEN)
    traffic(b.web_port, 3)
    with_browser(lambda br: check_token_page(br, b))


def check_token_page(br, b):
    # A browser cannot send the header with a navigation: add it to the
    # document request only, so the page's own fetches rely on #token=.
    def paused(p):
        hdrs = [{'name': k, 'value': v} for k, v in p['request']['headers']
                .items()] + [{'name': 'Authorization',
                              'value': 'Bearer ' + TOKEN}]
        br.ws.send_text(json.dumps({
            'id': 0, 'sessionId': br.session,
            'method': 'Fetch.continueRequest',
            'params': {'requestId': p['requestId'], 'headers': hdrs}}))
    br.handlers['Fetch.requestPaused'] = paused
    br.send('Fetch.enable', {'patterns': [{'urlPattern': '*',
                                           'resourceType': 'Document'}]})
    url = 'http://127.0.0.1:%d/' % b.stats_port
    br.navigate(url + '#token=' + TOKEN)
    br.wait_js("document.querySelectorAll('tr.worker').length === 1", 15,
               'the worker row with the token from the fragment')
    page = br.eval(ROWS_JS)
    check(page['error'] is None, 'error banner with a good token: %r' % page)
    check(count([f for f in page['frontends'] if f['name'] == 'web'][0]
                ['total']) >= 3, 'frontend rows %r' % page['frontends'])

    br.eval("location.hash = '#token=wrong'")
    msg = br.wait_js("!document.getElementById('error').hidden && "
                     "document.getElementById('error').textContent", 6,
                     'the error banner with a wrong token')
    check('401' in msg, 'banner for a wrong token says %r' % msg)
    check(br.eval('document.body.dataset.state') == 'error', 'state not error')
    br.screenshot('dashboard-error.png', h.path('.'))

    br.eval("location.hash = '#token=%s'" % TOKEN)
    br.wait_js("document.getElementById('error').hidden && "
               "document.body.dataset.state === 'ok'", 6,
               'the banner to clear with the right token')

    # The proxy goes away, then comes back (a new master).
    old = b.pid
    h.stop_proc(b.proc)
    msg = br.wait_js("!document.getElementById('error').hidden && "
                     "document.getElementById('error').textContent", 8,
                     'the error banner once baton stopped')
    check('Cannot reach' in msg or 'timed out' in msg,
          'banner with baton gone says %r' % msg)
    with open(b.config) as f:
        b2 = h.start_baton(f.read(), name='proxy2.ini')
    check(b2.pid != old, 'same pid after restart')
    br.wait_js("document.getElementById('error').hidden && "
               "document.getElementById('pid').textContent === '%d'"
               % b2.pid, 8, 'the page to recover with the new master')
    rows = br.eval("[...document.querySelectorAll('tr.worker')]"
                   ".map(tr => tr.dataset.pid)")
    check(rows == [str(p) for p in b2.workers()],
          'worker rows %r after restart, workers %r' % (rows, b2.workers()))

    # Failed polls log network errors by design; the page's own code
    # must never throw or call console.error.
    errors = br.console_errors(network_too=False)
    check(not errors, 'console errors: %r' % errors)


@h.case(timeout=60)
def dashboard_drain_and_ready_buttons():
    b = start_proxy(workers=2, token=TOKEN)
    with_browser(lambda br: check_buttons(br, b))


def check_buttons(br, b):
    def paused(p):
        hdrs = [{'name': k, 'value': v} for k, v in p['request']['headers']
                .items()] + [{'name': 'Authorization',
                              'value': 'Bearer ' + TOKEN}]
        br.ws.send_text(json.dumps({
            'id': 0, 'sessionId': br.session,
            'method': 'Fetch.continueRequest',
            'params': {'requestId': p['requestId'], 'headers': hdrs}}))
    br.handlers['Fetch.requestPaused'] = paused
    br.send('Fetch.enable', {'patterns': [{'urlPattern': '*',
                                           'resourceType': 'Document'}]})
    br.navigate('http://127.0.0.1:%d/#token=%s' % (b.stats_port, TOKEN))
    row = "document.querySelector('tr.server[data-name=a1]')"
    br.wait_js("!!(" + row + " && " + row + ".dataset.status === 'up' && " +
               row + ".querySelector('button[data-action=drain]'))", 15,
               'a1 with a drain button')
    check(br.eval("!" + row + ".querySelector('button[data-action=ready]')"),
          'a ready button on a server that is ready')
    br.eval(row + ".querySelector('button[data-action=drain]').click()")
    br.wait_js(row + ".dataset.status === 'drain'", 10, 'a1 shown draining')
    srv = {s['name']: s for s in get_stats(b.stats_port, TOKEN)
           ['backends'][0]['servers']}
    check(srv['a1']['status'] == 'drain', '/stats says %r' % srv['a1'])
    check(br.eval("document.getElementById('action').dataset.state") == 'ok',
          'the answer is not shown as ok')
    # New connections all go to a2 now.
    names = set()
    for i in range(6):
        s = H.connect(b.web_port)
        names.add(H.recv_line(s).strip())
        s.close()
    check(names == {b'a2'}, 'a drained a1 took connections: %r' % names)
    br.wait_js("!!" + row + ".querySelector('button[data-action=ready]')", 5,
               'a ready button on a draining server')
    br.eval(row + ".querySelector('button[data-action=ready]').click()")
    br.wait_js(row + ".dataset.status === 'up'", 10, 'a1 shown up again')
    b.wait_log(r'api: 127\.0\.0\.1:\d+: server app/a1: state drain -> '
               r'ready')
    br.screenshot('dashboard-buttons.png', h.path('.'))
    errors = br.console_errors()
    check(not errors, 'console errors: %r' % errors)

    # Without the token in the URL, no buttons.
    br.navigate('http://127.0.0.1:%d/' % b.stats_port)
    br.pump(1.5)
    check(br.eval("document.querySelectorAll('button.act').length") == 0,
          'buttons without the token')


@h.case(timeout=45)
def dashboard_shows_server_down():
    b = start_proxy(workers=2, extra=['check = tcp', 'check_interval = 200ms',
                                      'check_timeout = 200ms', 'rise = 1',
                                      'fall = 1'])
    with_browser(lambda br: check_server_down(br, b))


def check_server_down(br, b):
    br.navigate('http://127.0.0.1:%d/' % b.stats_port)
    status = ("(document.querySelector('tr.server[data-name=a2]') || "
              "{dataset: {}}).dataset.status")
    br.wait_js(status + " === 'up'", 10, 'server a2 shown up')
    a2 = b.backends['a2']
    h.stop_proc(a2.proc)
    br.wait_js(status + " === 'down'", 10, 'server a2 shown down')
    got = br.eval('''(() => {
      const tr = document.querySelector('tr.server[data-name=a2]');
      return {badge: tr.querySelector('.badge').textContent,
              color: getComputedStyle(tr.querySelector('.badge')).color,
              up: getComputedStyle(document.querySelector(
                'tr.server[data-name=a1] .badge')).color,
              head: tr.closest('section').querySelector('h2').textContent};
    })()''')
    check(got['badge'] == 'down' and got['color'] != got['up'],
          'a2 down shown as %r' % got)
    # The backup server's port has no listener: it is down too.
    check(got['head'].endswith('1/3 up'), 'backend header %r' % got['head'])
    br.screenshot('dashboard-server-down.png', h.path('.'))
    h.start_backend('name', name='a2', port=a2.port)
    br.wait_js(status + " === 'up'", 10, 'server a2 shown up again')
    errors = br.console_errors()
    check(not errors, 'console errors: %r' % errors)


EVIL = '<img src=x onerror="window.__xss=1">&amp;\'"</td>'


@h.case(timeout=45)
def dashboard_escapes_strings():
    # proxy.ini only allows plain names, so feed the page a doctored /stats
    # (the real one with markup in every string) through the browser.
    b = start_proxy(workers=1)
    st = get_stats(b.stats_port)
    st['version'] = EVIL
    st['workers'][0]['state'] = '<i>' + EVIL
    st['frontends'][0]['name'] = EVIL
    st['frontends'][0]['listen'] = ['<b>x</b>:1', EVIL]
    st['backends'][0]['name'] = '<script>window.__xss=2</script>'
    st['backends'][0]['balance'] = EVIL
    st['backends'][0]['servers'][0]['name'] = EVIL
    st['backends'][0]['servers'][0]['address'] = EVIL
    st['backends'][0]['servers'][0]['status'] = 'up" onclick="x' + EVIL
    body = base64.b64encode(json.dumps(st).encode()).decode()
    with_browser(lambda br: check_escaping(br, b, body))


def check_escaping(br, b, body):
    def paused(p):
        br.ws.send_text(json.dumps({
            'id': 0, 'sessionId': br.session, 'method': 'Fetch.fulfillRequest',
            'params': {'requestId': p['requestId'], 'responseCode': 200,
                       'responseHeaders': [{'name': 'Content-Type',
                                            'value': 'application/json'}],
                       'body': body}}))
    br.handlers['Fetch.requestPaused'] = paused
    br.send('Fetch.enable', {'patterns': [{'urlPattern': '*/stats'}]})
    br.navigate('http://127.0.0.1:%d/' % b.stats_port)
    br.wait_js("+document.body.dataset.polls >= 2", 10, 'two doctored polls')
    got = br.eval(r'''(() => ({
      xss: window.__xss === undefined ? null : window.__xss,
      markup: document.images.length + document.scripts.length - 1 +
        document.querySelectorAll('[onerror], [onclick]').length,
      version: document.getElementById('version').textContent,
      frontend: document.querySelector('tr.frontend').cells[0].textContent,
      listen: [...document.querySelectorAll('tr.frontend')[0]
        .querySelectorAll('.addr span')].map(s => s.textContent),
      backend: document.querySelector('section.backend h2 span').textContent,
      server: document.querySelector('tr.server').dataset.name,
      status: document.querySelector('tr.server').dataset.status,
      address: document.querySelector('tr.server').cells[1].textContent,
      state: document.querySelector('tr.worker').dataset.state,
    }))()''')
    check(got['xss'] is None and got['markup'] == 0,
          'markup from /stats was interpreted: %r' % got)
    check(got['version'] == 'v' + EVIL, 'version shown as %r' % got['version'])
    check(got['frontend'] == EVIL, 'frontend name shown as %r'
          % got['frontend'])
    check(got['listen'] == ['<b>x</b>:1', EVIL], 'listen shown as %r'
          % got['listen'])
    check(got['backend'] == 'Backend <script>window.__xss=2</script>',
          'backend name shown as %r' % got['backend'])
    check(got['server'] == EVIL and got['address'] == EVIL,
          'server shown as %r' % got)
    check(got['status'] == 'up" onclick="x' + EVIL, 'status %r' % got)
    check(got['state'] == '<i>' + EVIL, 'worker state %r' % got['state'])
    errors = br.console_errors()
    check(not errors, 'console errors: %r' % errors)


if __name__ == '__main__':
    if not os.access(CHROMIUM, os.X_OK):
        print('SKIP: test_dashboard: chromium not found at %s (install '
              'Debian\'s chromium or set CHROMIUM)' % CHROMIUM)
        sys.exit(77)
    sys.exit(h.run())
