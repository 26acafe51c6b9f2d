#!/usr/bin/python3
"""test_stats.py -- the stats endpoint against real traffic: exact
connection and byte totals, totals across a worker's kill -9, live bytes of
open connections, /metrics through a real Prometheus parser, HTTP status
codes and the bearer token, garbage on the stats port, and leastconn
dispatch keeping workers balanced where round-robin does not."""

import hashlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True  # the source tree may be read-only
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402
from harness import check  # noqa: E402

try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError:
    text_string_to_metric_families = None

h = H.Harness('test_stats', file_timeout=120)

SETTLE = 3.0        # reports come every 250 ms: /stats is <= 1 s stale
STALE_MAX = 1.0     # the contract's bound on staleness
TOKEN = 's3cret-T0ken'


# ------------------------------------------------------------------ setup

def start(mode='echo', nbackends=2, workers=2, dispatch=None, token=None,
          idle='30s', handover=True):
    """Backends, then baton with a [stats] section. (baton, port, sport)."""
    backends = [h.start_backend(mode, name='s%d' % (i + 1))
                for i in range(nbackends)]
    port, sport = H.free_port(), H.free_port()
    while sport == port:
        sport = H.free_port()
    text = H.config(port, ['%s 127.0.0.1:%d' % (b.name, b.port)
                           for b in backends], workers=workers, idle=idle,
                    extra_global=('dispatch = %s\n' % dispatch if dispatch
                                  else '') +
                    ('' if handover else 'handover = off'), sport=sport)
    if token:
        text += 'token = %s\n' % token
    b = h.start_baton(text)
    b.backends = backends
    return b, port, sport


def request(sport, method='GET', path='/stats', headers=None, body=None,
            timeout=3.0):
    """(status, {lowercased header: value}, body) of one HTTP request."""
    c = http.client.HTTPConnection(H.LOCALHOST, sport, timeout=timeout)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        data = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data
    finally:
        c.close()


def auth(token):
    return {'Authorization': 'Bearer ' + token}


def get_stats(sport, token=None):
    status, hdrs, body = request(sport, headers=auth(token) if token
                                 else None)
    check(status == 200, 'GET /stats: %d %r' % (status, body[:200]))
    check(hdrs.get('content-type', '').startswith('application/json'),
          'GET /stats content type %r' % hdrs.get('content-type'))
    try:
        return json.loads(body.decode('utf-8'))
    except ValueError as e:
        raise H.Failure('GET /stats is not JSON (%s): %r' % (e, body[:300]))


def is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def check_shape(doc):
    """Every contract field, with its JSON type."""
    def fields(obj, where, spec):
        check(isinstance(obj, dict), '%s is not an object: %r' % (where, obj))
        for k, t in spec.items():
            check(k in obj, '%s lacks "%s": %r' % (where, k, obj))
            v = obj[k]
            ok = {'int': is_int(v), 'num': is_int(v) or
                  isinstance(v, float), 'str': isinstance(v, str),
                  'bool': isinstance(v, bool), 'list': isinstance(v, list),
                  'obj': isinstance(v, dict)}[t]
            check(ok, '%s.%s is %r, not %s' % (where, k, v, t))
    fields(doc, 'stats', {'version': 'str', 'pid': 'int', 'uptime_s': 'num',
                          'generation': 'int', 'reloads': 'int',
                          'reload_failures': 'int', 'connections': 'obj',
                          'workers': 'list', 'frontends': 'list',
                          'backends': 'list'})
    fields(doc['connections'], 'connections', {'active': 'int',
                                               'total': 'int'})
    counters = {'active': 'int', 'total': 'int', 'bytes_in': 'int',
                'bytes_out': 'int'}
    for w in doc['workers']:
        fields(w, 'worker', dict(counters, id='int', pid='int',
                                 generation='int', state='str'))
        check(w['state'] in ('starting', 'running', 'draining'),
              'worker state %r' % w['state'])
    for f in doc['frontends']:
        fields(f, 'frontend', dict(counters, name='str', listen='list',
                                   errors='int'))
    for b in doc['backends']:
        fields(b, 'backend', {'name': 'str', 'balance': 'str',
                              'servers': 'list'})
        for s in b['servers']:
            fields(s, 'server', dict(counters, name='str', address='str',
                                     status='str', weight='int',
                                     backup='bool', failures='int'))
            check(s['status'] in ('up', 'down', 'drain', 'maint'),
                  'server status %r' % s['status'])


def frontend(doc, name='web'):
    for f in doc['frontends']:
        if f['name'] == name:
            return f
    raise H.Failure('no frontend %r in %r' % (name, doc['frontends']))


def servers(doc, backend='app'):
    for b in doc['backends']:
        if b['name'] == backend:
            return b['servers']
    raise H.Failure('no backend %r in %r' % (backend, doc['backends']))


def sums(items, keys=('active', 'total', 'bytes_in', 'bytes_out')):
    return {k: sum(i[k] for i in items) for k in keys}


def figures(doc):
    """The figures the cases compare, in one printable dict."""
    f = frontend(doc)
    return {
        'connections': dict(doc['connections']),
        'frontend': {k: f[k] for k in ('active', 'total', 'errors',
                                       'bytes_in', 'bytes_out')},
        'servers': sums(servers(doc), ('active', 'total', 'failures',
                                       'bytes_in', 'bytes_out')),
        'workers': sums(doc['workers']),
    }


def wait_stats(sport, pred, what, timeout=SETTLE, token=None):
    """Poll /stats until PRED(doc) holds; the document. On timeout, fail
    showing the last figures seen."""
    last = [None]

    def ok():
        try:
            last[0] = get_stats(sport, token)
        except (http.client.RemoteDisconnected, ConnectionResetError):
            # A request in flight when the master forks can be dropped:
            # stats_answers_across_forks pins that down; here, poll on.
            return False
        return pred(last[0])
    try:
        H.poll_until(ok, timeout, what, interval=0.05)
    except H.Failure as e:
        raise H.Failure('%s; last figures: %s' % (
            e, json.dumps(figures(last[0]) if last[0] else None,
                          sort_keys=True)))
    return last[0]


def expect(doc, want):
    """Which of the WANT figures ('frontend.total': N, ...) differ."""
    got = figures(doc)
    bad = []
    for key, v in want.items():
        a, b = key.split('.')
        if got[a][b] != v:
            bad.append('%s is %r, want %r' % (key, got[a][b], v))
    return bad


def wait_figures(sport, want, what, timeout=SETTLE):
    """Poll until every WANT figure holds; then check they stay."""
    doc = wait_stats(sport, lambda d: not expect(d, want), what, timeout)
    time.sleep(0.6)     # two report periods: nothing may move any more
    doc = get_stats(sport)
    bad = expect(doc, want)
    check(not bad, '%s: figures moved after settling: %s' % (what, bad))
    return doc


def exact_figures(n, sent, received, active=0):
    """Everything after N connections that moved SENT/RECEIVED bytes."""
    want = {}
    for level in ('frontend', 'servers', 'workers'):
        want.update({level + '.total': n, level + '.active': active,
                     level + '.bytes_in': sent,
                     level + '.bytes_out': received})
    want.update({'connections.total': n, 'connections.active': active,
                 'frontend.errors': 0, 'servers.failures': 0})
    return want


def payload(i):
    """A distinct payload per connection; some span many reads."""
    size = 1000 + 37 * i + (300000 if i % 13 == 0 else 0)
    return (b'%06d' % i) * (size // 6) + b'x' * (size % 6)


def sha256_roundtrip(port, data):
    """Send DATA, half-close, read the backend's hex digest: bytes read."""
    s = H.connect(port)
    try:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        got = b''
        deadline = time.monotonic() + 5
        while True:
            check(time.monotonic() < deadline, 'sha256 reply too slow')
            chunk = s.recv(4096)
            if not chunk:
                break
            got += chunk
    finally:
        s.close()
    want = (hashlib.sha256(data).hexdigest() + '\n').encode()
    check(got == want, 'sha256 reply %r, want %r' % (got, want))
    return len(got)


def run_sha256(port, n, first=0):
    """N sequential sha256 connections: (bytes sent, bytes received)."""
    sent = received = 0
    for i in range(first, first + n):
        data = payload(i)
        received += sha256_roundtrip(port, data)
        sent += len(data)
    return sent, received


# ------------------------------------------------------------------ cases

@h.case(timeout=25)
def exact_totals_after_n_connections():
    N = 40
    b, port, sport = start('sha256', nbackends=2, workers=2)
    doc = get_stats(sport)
    check_shape(doc)
    bad = expect(doc, exact_figures(0, 0, 0))
    check(not bad, 'fresh baton, figures not zero: %s' % bad)

    sent, received = run_sha256(port, N)
    print('  %d connections: %d bytes sent, %d received'
          % (N, sent, received))
    check(sent != received, 'test bug: in and out must differ')
    doc = wait_figures(sport, exact_figures(N, sent, received),
                       'totals of %d connections' % N)
    check_shape(doc)

    # Who is who.
    version = subprocess.run([H.BATON, '-V'], capture_output=True,
                             text=True, timeout=5).stdout.split()
    check(doc['version'] == version[-1], 'version %r, baton -V says %r'
          % (doc['version'], version))
    check(doc['pid'] == b.pid, 'pid %r, master is %d' % (doc['pid'], b.pid))
    check(doc['generation'] == 1 and doc['reloads'] == 0 and
          doc['reload_failures'] == 0, 'generation/reloads: %r'
          % {k: doc[k] for k in ('generation', 'reloads',
                                 'reload_failures')})
    check(0 < doc['uptime_s'] < 60, 'uptime_s %r' % doc['uptime_s'])
    pids = sorted(w['pid'] for w in doc['workers'])
    check(pids == sorted(b.workers()), 'worker pids %r, running %r'
          % (pids, b.workers()))
    check(sorted(w['id'] for w in doc['workers']) == [0, 1],
          'worker ids %r' % [w['id'] for w in doc['workers']])
    for w in doc['workers']:
        check(w['state'] == 'running' and w['generation'] == 1,
              'worker %r' % w)
        check(w['total'] > 0, 'worker %d handled nothing: %r'
              % (w['id'], doc['workers']))
    f = frontend(doc)
    check(f['listen'] == ['127.0.0.1:%d' % port], 'listen %r' % f['listen'])
    ss = servers(doc)
    check([s['name'] for s in ss] == ['s1', 's2'], 'servers %r' % ss)
    for s, be in zip(ss, b.backends):
        check(s['total'] > 0 and s['status'] == 'up' and s['weight'] == 1
              and s['backup'] is False and s['failures'] == 0 and
              s['address'] == '127.0.0.1:%d' % be.port, 'server %r' % s)
    check([x['name'] for x in doc['backends']] == ['app'] and
          doc['backends'][0]['balance'] == 'roundrobin',
          'backends %r' % doc['backends'])


@h.case(timeout=25)
def totals_survive_worker_kill9():
    N = 20
    # handover off: the replacement must start empty, not be rebalanced
    b, port, sport = start('sha256', nbackends=2, workers=2,
                           handover=False)
    old = b.workers()
    sent, received = run_sha256(port, N)
    # One open connection on each worker, with bytes moved.
    opened = []
    try:
        for i in range(2):
            c = H.connect(port)
            opened.append(c)
            c.sendall(b'open %d\n' % i)
            sent += len(b'open %d\n' % i)
        held = H.poll_until(lambda: (lambda x: None if None in x else x)(
            holders(b, opened)), 3, 'the holders of the open connections')
        check(sorted(held) == sorted(old), 'open connections held by %r,'
              ' want one on each worker %r' % (held, old))
        want = exact_figures(N + 2, sent, received, active=2)
        before = wait_figures(sport, want, 'totals before the kill')
        victim = held[0]
        vdoc = [w for w in before['workers'] if w['pid'] == victim]
        check(len(vdoc) == 1, 'victim %d not in %r' % (victim,
                                                        before['workers']))
        print('  killing worker %d (pid %d) with %r'
              % (vdoc[0]['id'], victim, {k: vdoc[0][k] for k in
                                         ('active', 'total', 'bytes_in')}))
        os.kill(victim, signal.SIGKILL)
        now = b.wait_workers(2, timeout=10, exclude=[victim])
        new = (set(now) - set(old)).pop()

        def replaced(d):
            return (sorted(w['pid'] for w in d['workers']) == sorted(now)
                    and all(w['state'] == 'running' for w in d['workers']))
        wait_stats(sport, replaced, 'the worker list to show pid %d '
                   'instead of %d' % (new, victim))
        # Totals stay; the killed worker's open connection is gone.
        after_want = dict(want)
        for level in ('frontend', 'servers'):
            after_want[level + '.active'] = 1
        after_want['connections.active'] = 1
        for k in ('workers.total', 'workers.active', 'workers.bytes_in',
                  'workers.bytes_out'):
            del after_want[k]
        doc = wait_figures(sport, after_want, 'totals after the kill')
        nw = [w for w in doc['workers'] if w['pid'] == new][0]
        check(nw['total'] == 0 and nw['active'] == 0,
              'replacement worker starts with figures: %r' % nw)
        check(doc['workers'] and sums(doc['workers'])['total'] ==
              N + 2 - vdoc[0]['total'], 'live workers total %r'
              % doc['workers'])

        # New connections add to the kept totals, on both workers.
        s2, r2 = run_sha256(port, 10, first=N)
        want = exact_figures(N + 12, sent + s2, received + r2, active=1)
        for k in [k for k in want if k.startswith('workers.')]:
            del want[k]
        doc = wait_figures(sport, want, 'totals after 10 more')
        nw = [w for w in doc['workers'] if w['pid'] == new][0]
        check(nw['total'] > 0, 'replacement got nothing: %r'
              % doc['workers'])
    finally:
        for c in opened:
            c.close()


@h.case(timeout=20)
def open_connection_bytes_reported_live():
    b, port, sport = start('echo', nbackends=1, workers=2)
    c = H.connect(port)
    try:
        total = 0
        for step, size in enumerate((5000, 70001, 3)):
            data = bytes([65 + step]) * size
            H.echo_ok(c, data)
            total += size
            t0 = time.monotonic()
            want = {'frontend.bytes_in': total, 'frontend.bytes_out': total,
                    'servers.bytes_in': total, 'servers.bytes_out': total,
                    'workers.bytes_in': total, 'workers.bytes_out': total,
                    'frontend.active': 1, 'frontend.total': 1,
                    'connections.active': 1}
            wait_stats(sport, lambda d: not expect(d, want),
                       'bytes of the open connection (%d each way)' % total,
                       timeout=STALE_MAX + 1.0)
            dt = time.monotonic() - t0
            print('  step %d: %d bytes each way shown after %.2fs'
                  % (step, total, dt))
            check(dt <= STALE_MAX + 0.25, '/stats showed the bytes %.2fs '
                  'after they moved (at most %.1fs stale)' % (dt, STALE_MAX))
            time.sleep(0.3)     # let the idle reporter be idle in between
    finally:
        c.close()
    wait_figures(sport, {'frontend.active': 0, 'connections.active': 0,
                         'frontend.bytes_in': total},
                 'the connection to close')


def get_metrics(sport):
    """GET /metrics, checked line by line and through the real parser:
    {(sample name, ((label, value), ...)): value}."""
    status, hdrs, body = request(sport, path='/metrics')
    check(status == 200, 'GET /metrics: %d' % status)
    ctype = hdrs.get('content-type', '')
    check(ctype.startswith('text/plain; version=0.0.4'),
          '/metrics content type %r' % ctype)
    text = body.decode('utf-8')

    # The raw text: only HELP, TYPE and sample lines, HELP and TYPE first.
    declared = {}
    for line in text.splitlines():
        check(line, 'empty line in /metrics')
        if line.startswith('# HELP ') or line.startswith('# TYPE '):
            name = line.split()[2]
            declared.setdefault(name, set()).add(line.split()[1])
            continue
        check(not line.startswith('#'), 'stray comment: %r' % line)
        name = line.split('{')[0].split(' ')[0]
        check(name.startswith('baton_'), 'sample %r not baton_' % line)
        check(declared.get(name) == {'HELP', 'TYPE'}, 'sample before its '
              'HELP and TYPE: %r' % line)

    # The real parser.
    try:
        fams = list(text_string_to_metric_families(text))
    except Exception as e:
        raise H.Failure('prometheus_client cannot parse /metrics: %s: %s'
                        % (type(e).__name__, e))
    values = {}
    for fam in fams:
        check(fam.name.startswith('baton_'), 'family %r' % fam.name)
        check(fam.type in ('counter', 'gauge'), '%s has type %r'
              % (fam.name, fam.type))
        check(fam.documentation, '%s has no HELP text' % fam.name)
        for s in fam.samples:
            if fam.type == 'counter':
                check(s.name.endswith('_total'), 'counter sample %r'
                      % s.name)
            else:
                check(not s.name.endswith('_total'), 'gauge %r' % s.name)
            if s.name.startswith('baton_worker_'):
                # worker, and whatever else tells workers apart.
                check('worker' in s.labels, '%s labels %r, want worker'
                      % (s.name, s.labels))
            for prefix, labels in (('baton_frontend_', {'frontend'}),
                                   ('baton_server_', {'backend',
                                                      'server'})):
                if s.name.startswith(prefix):
                    check(set(s.labels) == labels, '%s labels %r, want %r'
                          % (s.name, s.labels, labels))
            # Prometheus drops a scrape's samples of a series given twice.
            key = (s.name, tuple(sorted(s.labels.items())))
            check(key not in values, 'series given twice in /metrics: '
                  '%s%r' % key)
            values[key] = s.value
    return values


@h.case(timeout=20)
def metrics_parse_and_match_stats():
    if text_string_to_metric_families is None:
        raise H.Skip('python3-prometheus-client is not installed '
                     '(apt-get install python3-prometheus-client)')
    N = 12
    b, port, sport = start('sha256', nbackends=2, workers=2)
    sent, received = run_sha256(port, N)
    doc = wait_figures(sport, exact_figures(N, sent, received),
                       'totals of %d connections' % N)
    values = get_metrics(sport)

    def val(name, **labels):
        """The one sample NAME whose labels include LABELS."""
        hits = [v for (n, lab), v in values.items() if n == name and
                set(labels.items()) <= set(lab)]
        check(len(hits) == 1, '%d samples %s%r in /metrics'
              % (len(hits), name, labels))
        return hits[0]

    def same(name, want, **labels):
        got = val(name, **labels)
        check(got == want, '%s%r = %r, /stats says %r'
              % (name, labels, got, want))

    f = frontend(doc)
    same('baton_frontend_connections_total', N, frontend='web')
    same('baton_frontend_connections_total', f['total'], frontend='web')
    same('baton_frontend_connections_active', 0, frontend='web')
    same('baton_frontend_errors_total', 0, frontend='web')
    same('baton_frontend_received_bytes_total', sent, frontend='web')
    same('baton_frontend_sent_bytes_total', received, frontend='web')
    same('baton_connections_total', N)
    same('baton_connections_active', 0)
    same('baton_generation', 1)
    same('baton_reloads_total', 0)
    same('baton_reload_failures_total', 0)
    for s in servers(doc):
        lab = {'backend': 'app', 'server': s['name']}
        same('baton_server_connections_total', s['total'], **lab)
        same('baton_server_connections_active', s['active'], **lab)
        same('baton_server_connect_failures_total', s['failures'], **lab)
        same('baton_server_received_bytes_total', s['bytes_in'], **lab)
        same('baton_server_sent_bytes_total', s['bytes_out'], **lab)
        same('baton_server_up', 1, **lab)
        same('baton_server_weight', 1, **lab)
    for w in doc['workers']:
        lab = {'worker': str(w['id'])}
        same('baton_worker_connections_total', w['total'], **lab)
        same('baton_worker_connections_active', w['active'], **lab)
        same('baton_worker_received_bytes_total', w['bytes_in'], **lab)
        same('baton_worker_sent_bytes_total', w['bytes_out'], **lab)
    check(sum(v for (n, _), v in values.items()
              if n == 'baton_server_connections_total') == N,
          'server totals in /metrics do not add up to %d' % N)
    up = val('baton_uptime_seconds')
    check(0 < up < 60, 'uptime %r' % up)

    status, hdrs, body = request(sport, 'HEAD', '/metrics')
    check(status == 200 and body == b'' and hdrs.get(
        'content-type', '').startswith('text/plain; version=0.0.4'),
        'HEAD /metrics: %d %r %r' % (status, hdrs, body[:80]))


@h.case(timeout=20)
def metrics_unique_while_old_workers_drain():
    if text_string_to_metric_families is None:
        raise H.Skip('python3-prometheus-client is not installed '
                     '(apt-get install python3-prometheus-client)')
    b, port, sport = start('echo', nbackends=1, workers=2, handover=False)
    old = b.workers()
    conns = []
    try:
        # An open connection on each worker keeps both draining after the
        # reload (drain_timeout is 5 s), so two generations are listed.
        for i in range(2):
            c = H.connect(port)
            conns.append(c)
            H.echo_ok(c, b'keep %d\n' % i)
        wait_stats(sport, lambda d: d['connections']['active'] == 2,
                   'the open connections in /stats')
        b.signal(signal.SIGHUP)

        def two_generations(d):
            gens = sorted((w['generation'], w['state']) for w in
                          d['workers'])
            return (d['generation'] == 2 and
                    gens.count((2, 'running')) == 2 and
                    sum(1 for w in d['workers'] if w['pid'] in old and
                        w['state'] == 'draining') >= 1)
        doc = wait_stats(sport, two_generations, 'a reload with the old '
                         'workers draining', timeout=5)
        print('  workers: %r' % [(w['id'], w['generation'], w['state'])
                                 for w in doc['workers']])
        values = get_metrics(sport)
        got = sum(v for (n, _), v in values.items()
                  if n == 'baton_worker_connections_active')
        check(got == sum(w['active'] for w in doc['workers']),
              'worker active in /metrics adds up to %r, /stats %r'
              % (got, doc['workers']))
    finally:
        for c in conns:
            c.close()


@h.case(timeout=25)
def stats_answers_across_forks():
    """Every /stats request gets its answer while the master forks workers
    (respawns after kill -9, reloads): a forked worker must not touch the
    master's HTTP connections."""
    b, port, sport = start('echo', nbackends=1, workers=2)
    stop = threading.Event()
    results = []            # (ok, what) per request

    def hammer():
        while not stop.is_set():
            try:
                status, _, body = request(sport)
                json.loads(body.decode())
                results.append((status == 200, 'HTTP %d' % status))
            except Exception as e:
                results.append((False, type(e).__name__))
    threads = [threading.Thread(target=hammer, daemon=True)
               for _ in range(6)]
    forks = 0
    try:
        for t in threads:
            t.start()
        for i in range(4):
            victim = b.workers()[0]
            os.kill(victim, signal.SIGKILL)
            b.wait_workers(2, timeout=5, exclude=[victim])
            forks += 1
            time.sleep(0.1)
        for i in range(6):
            gen = wait_stats(sport, lambda d: True, '/stats')['generation']
            b.signal(signal.SIGHUP)
            wait_stats(sport, lambda d: d['generation'] == gen + 1 and
                       sum(w['state'] == 'running' and w['generation'] ==
                           gen + 1 for w in d['workers']) == 2,
                       'reload %d' % (i + 1), timeout=5)
            forks += 2
            time.sleep(0.1)
    finally:
        stop.set()
        for t in threads:
            t.join(5)
    bad = [what for ok, what in results if not ok]
    print('  %d forks, %d requests, %d failed: %r'
          % (forks, len(results), len(bad), sorted(set(bad))))
    check(len(results) > 100, 'only %d requests made' % len(results))
    check(not bad, '%d of %d /stats requests failed while the master forked'
          ' %d workers: %r' % (len(bad), len(results), forks,
                               sorted(set(bad))))
    b.check_running()


@h.case(timeout=20)
def http_status_codes_and_token():
    b, port, sport = start('echo', nbackends=1, workers=1)
    st = lambda *a, **k: request(sport, *a, **k)[0]  # noqa: E731
    check(st('GET', '/stats') == 200, 'GET /stats')
    check(st('GET', '/metrics') == 200, 'GET /metrics')
    status, hdrs, body = request(sport, 'GET', '/')
    check(status == 200 and hdrs.get('content-type', '').startswith(
        'text/html'), 'GET /: %d %r' % (status, hdrs))
    check(st('GET', '/stats?pretty=1') == 200, 'GET /stats?query')
    for path in ('/nope', '/stats/', '/statsx', '/metrics/x', '//stats',
                 '/index.html', '/STATS'):
        got = st('GET', path)
        check(got == 404, 'GET %s: %d, want 404' % (path, got))
    for method in ('POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'TRACE'):
        for path in ('/stats', '/metrics', '/'):
            got = st(method, path, body=b'x=1' if method != 'DELETE'
                     else None)
            check(got == 405, '%s %s: %d, want 405' % (method, path, got))
    # Methods libevent does not know at all get 405 as well, not 501.
    for method in ('FROB', 'PROPFIND', 'M-SEARCH', 'get'):
        got = st(method, '/stats')
        check(got == 405, '%s /stats: %d, want 405' % (method, got))
    status, hdrs, body = request(sport, 'HEAD', '/stats')
    check(status == 200 and body == b'' and hdrs.get(
        'content-type', '').startswith('application/json'),
        'HEAD /stats: %d %r %r' % (status, hdrs, body[:80]))
    h._stop_case_procs()

    b, port, sport = start('echo', nbackends=1, workers=1, token=TOKEN)
    bad_headers = [
        None,
        {'Authorization': 'Bearer wrong'},
        {'Authorization': 'Bearer ' + TOKEN[:-1]},
        {'Authorization': 'Bearer ' + TOKEN + 'x'},
        {'Authorization': 'Bearer '},
        {'Authorization': 'Basic ' + TOKEN},
        {'Authorization': TOKEN},
        {'Authorization': 'Bearer  ' + TOKEN},
    ]
    for hdr in bad_headers:
        for method, path in (('GET', '/stats'), ('GET', '/metrics'),
                             ('GET', '/'), ('GET', '/nope'),
                             ('POST', '/stats'), ('HEAD', '/stats')):
            status, _, body = request(sport, method, path, headers=hdr)
            check(status == 401, '%s %s with %r: %d, want 401'
                  % (method, path, hdr, status))
            check(TOKEN.encode() not in body, 'the 401 body tells the '
                  'token')
    good = auth(TOKEN)
    doc = get_stats(sport, TOKEN)
    check_shape(doc)
    for method, path, want in (('GET', '/metrics', 200), ('GET', '/', 200),
                               ('GET', '/nope', 404),
                               ('POST', '/stats', 405),
                               ('DELETE', '/metrics', 405),
                               ('HEAD', '/stats', 200)):
        got = request(sport, method, path, headers=good)[0]
        check(got == want, '%s %s with the token: %d, want %d'
              % (method, path, got, want))


def raw_exchange(sport, data, close_early=False, timeout=3.0):
    """Send DATA on a fresh socket to the stats port; what came back
    (b'' if the peer just closed; None if CLOSE_EARLY)."""
    s = H.connect(sport)
    try:
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass
        if close_early:
            return None
        got = b''
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            s.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                break
            if not chunk:
                break
            got += chunk
        return got
    finally:
        s.close()


@h.case(timeout=30)
def garbage_on_stats_port_is_harmless():
    b, port, sport = start('echo', nbackends=1, workers=2)
    workers = b.workers()
    held = []
    try:
        # A half request kept open must not stall the endpoint.
        for i in range(5):
            s = H.connect(sport)
            s.sendall(b'GET /sta')
            held.append(s)
        check(get_stats(sport)['pid'] == b.pid, 'endpoint stalled')

        cases = [
            ('binary garbage', b'\x00\x01\xff\xfe garbage\r\n\r\n'),
            ('no method', b'/stats HTTP/1.1\r\n\r\n'),
            ('bad version', b'GET /stats HTTP/9.9\r\n\r\n'),
            ('unknown method', b'FROB /stats HTTP/1.1\r\nHost: x\r\n\r\n'),
            ('huge header', b'GET /stats HTTP/1.1\r\nHost: x\r\nX-Big: '
             + b'a' * 200000 + b'\r\n\r\n'),
            ('many headers', b'GET /stats HTTP/1.1\r\n'
             + b''.join(b'X-%d: y\r\n' % i for i in range(5000))
             + b'\r\n'),
            ('huge URI', b'GET /' + b'a' * 100000 + b' HTTP/1.1\r\n\r\n'),
            ('lying length', b'POST /stats HTTP/1.1\r\nHost: x\r\n'
             b'Content-Length: 99999999999\r\n\r\nabc'),
            ('negative length', b'GET /stats HTTP/1.1\r\nHost: x\r\n'
             b'Content-Length: -5\r\n\r\n'),
            ('bad chunking', b'POST /stats HTTP/1.1\r\nHost: x\r\n'
             b'Transfer-Encoding: chunked\r\n\r\nzz\r\n'),
            ('NUL in path', b'GET /st\x00ats HTTP/1.1\r\n\r\n'),
            ('bare newlines', b'GET /stats HTTP/1.1\n\n'),
        ]
        for what, data in cases:
            got = raw_exchange(sport, data, timeout=1.0)
            first = got.split(b'\r\n', 1)[0]
            print('  %-16s -> %r' % (what, first[:60]))
            if what in ('huge header', 'many headers', 'huge URI',
                        'binary garbage', 'unknown method'):
                check(b' 200 ' not in first, '%s answered 200' % what)
            b.check_running()
        for what, data in [('half request', b'GET /stats HTTP/1.1\r\nHo'),
                           ('half line', b'GE'),
                           ('half body', b'POST /stats HTTP/1.1\r\n'
                            b'Content-Length: 100\r\n\r\nab')]:
            raw_exchange(sport, data, close_early=True)
        # A burst of connections that connect and vanish.
        for i in range(50):
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                         b'\x01\x00\x00\x00\x00\x00\x00\x00')
            s.connect((H.LOCALHOST, sport))
            s.close()   # RST
    finally:
        for s in held:
            s.close()
    b.check_running()
    check(b.workers() == workers, 'workers changed: %r -> %r'
          % (workers, b.workers()))
    doc = get_stats(sport)
    check_shape(doc)
    check(request(sport, path='/metrics')[0] == 200, '/metrics after')
    c = H.connect(port)
    try:
        H.echo_ok(c, b'still proxying\n')
    finally:
        c.close()
    wait_figures(sport, {'frontend.total': 1, 'frontend.errors': 0},
                 'the proxied connection in /stats')


def holders(b, socks):
    """Worker pid holding the accepted end of each of SOCKS (None if none),
    from one read of /proc/net/tcp: it can be long on a busy machine."""
    cports = {c.getsockname()[1]: c for c in socks}
    inode_of = {}
    for r in H.tcp_table():
        if (r['remote_port'] in cports and r['local_port'] in b.ports
                and r['state'] == H.TCP_ESTABLISHED):
            inode_of[r['inode']] = r['remote_port']
    owner = {}
    for pid in b.workers():
        for ino in H.socket_inodes(pid) & set(inode_of):
            owner[inode_of[ino]] = pid
    return [owner.get(c.getsockname()[1]) for c in socks]


def spread_scenario(dispatch, rounds=8):
    """Open connections in pairs and close the second of each pair, waiting
    for /stats to show every step. ({worker pid: active}, max spread seen
    in /stats along the way)."""
    b, port, sport = start('echo', nbackends=1, workers=2,
                           dispatch=dispatch)
    pids = b.workers()
    keep = []
    worst = 0
    try:
        for r in range(rounds):
            pair = []
            for j in range(2):
                c = H.connect(port)
                pair.append(c)
                H.echo_ok(c, b'round %d conn %d\n' % (r, j))
            keep.append(pair[0])
            pair[1].close()
            # The master learns of the close from the worker's report;
            # only then is the next pick fair to ask of leastconn.
            want = {'connections.total': 2 * (r + 1),
                    'connections.active': len(keep),
                    'workers.total': 2 * (r + 1),
                    'workers.active': len(keep)}
            doc = wait_stats(sport, lambda d: not expect(d, want),
                             'round %d in /stats' % r)
            per = [w['active'] for w in doc['workers']]
            check(len(per) == 2, 'workers in /stats: %r' % doc['workers'])
            worst = max(worst, abs(per[0] - per[1]))
        active = {w['pid']: w['active'] for w in doc['workers']}
        check(sorted(active) == sorted(pids), 'workers %r, want %r'
              % (active, pids))
        held = holders(b, keep)
        from_proc = {p: held.count(p) for p in pids}
        check(active == from_proc, 'per-worker active in /stats %r, '
              'sockets held per /proc %r' % (active, from_proc))
        return active, worst
    finally:
        for c in keep:
            c.close()


@h.case(timeout=30)
def leastconn_keeps_workers_balanced():
    rounds = 8
    active, worst = spread_scenario('leastconn', rounds)
    spread = abs(list(active.values())[0] - list(active.values())[1])
    print('  leastconn:  active per worker %r, worst spread %d'
          % (sorted(active.values()), worst))
    h._stop_case_procs()
    rr_active, rr_worst = spread_scenario('roundrobin', rounds)
    rr_spread = abs(list(rr_active.values())[0] -
                    list(rr_active.values())[1])
    print('  roundrobin: active per worker %r, worst spread %d'
          % (sorted(rr_active.values()), rr_worst))
    # The scenario does pile up under round-robin, so it can tell.
    check(rr_spread >= rounds - 1, 'round-robin spread only %d of %d: '
          'the scenario does not discriminate' % (rr_spread, rounds))
    check(spread <= 2 and worst <= 2, 'leastconn spread %d (worst %d along '
          'the way), round-robin %d: %r' % (spread, worst, rr_spread,
                                            active))


if __name__ == '__main__':
    sys.exit(h.run())
