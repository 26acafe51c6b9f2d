#!/usr/bin/python3
"""test_api.py -- the runtime API on the stats endpoint: a server's state
(ready, drain, maint) and weight, servers added and removed without a
reload, the token, errors as JSON, and every change in the log."""

import collections
import http.client
import json
import os
import signal
import socket
import sys
import threading
import time

sys.dont_write_bytecode = True  # the source tree may be read-only
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402
from harness import check  # noqa: E402

h = H.Harness('test_api', file_timeout=300)
TOKEN = 'api-t0ken'


def api(sport, method, path, body=None, token=TOKEN, raw=None):
    """One API request; (status, parsed JSON body)."""
    c = http.client.HTTPConnection(H.LOCALHOST, sport, timeout=5)
    hdrs = {'Content-Type': 'application/json'}
    if token is not None:
        hdrs['Authorization'] = 'Bearer ' + token
    data = raw if raw is not None else (
        json.dumps(body).encode() if body is not None else None)
    try:
        c.request(method, path, body=data, headers=hdrs)
        r = c.getresponse()
        text = r.read()
    finally:
        c.close()
    check(r.getheader('Content-Type') == 'application/json',
          '%s %s: content type %r' % (method, path,
                                      r.getheader('Content-Type')))
    return r.status, json.loads(text.decode())


def stats(sport):
    c = http.client.HTTPConnection(H.LOCALHOST, sport, timeout=5)
    try:
        c.request('GET', '/stats', headers={'Authorization':
                                            'Bearer ' + TOKEN})
        r = c.getresponse()
        body = r.read()
    finally:
        c.close()
    check(r.status == 200, 'GET /stats: %d' % r.status)
    return json.loads(body.decode())


def servers(sport):
    """name -> server object of backend app."""
    s = stats(sport)
    return {x['name']: x for x in s['backends'][0]['servers']}


def srv_path(name, backend='app'):
    return '/api/backends/%s/servers/%s' % (backend, name)


def names_seen(port, n):
    """Open N connections one after another: the backend name of each."""
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


def start(names, workers=2, weights=None, stats_listen=None, token=TOKEN,
          extra_backend=''):
    backends = [h.start_backend('name', name=n) for n in names]
    weights = weights or [1] * len(names)
    port, sport = H.free_port(), H.free_port()
    conf = H.config(port, ['%s 127.0.0.1:%d weight=%d' % (b.name, b.port, w)
                           for b, w in zip(backends, weights)],
                    workers=workers, extra_backend=extra_backend)
    conf += '\n[stats]\nlisten = %s:%d\n' % (stats_listen or '127.0.0.1',
                                              sport)
    if token:
        conf += 'token = %s\n' % token
    b = h.start_baton(conf)
    return b, port, sport, backends


@h.case
def drain_maint_ready_and_weight_move_new_connections():
    b, port, sport, _ = start(['a1', 'a2'])
    # A connection on a1 from before the drain goes on and finishes.
    held = None
    for _ in range(4):
        s = H.connect(port)
        if H.recv_line(s).strip() == b'a1':
            held = s
            break
        s.close()
    check(held is not None, 'no connection reached a1')
    st, body = api(sport, 'POST', srv_path('a1'), {'state': 'drain'})
    check(st == 200 and 'ok' in body, 'drain: %d %r' % (st, body))
    seen = names_seen(port, 20)
    check(set(seen) == {'a2'}, 'a drained a1 still gets new ones: %r'
          % collections.Counter(seen))
    check(servers(sport)['a1']['status'] == 'drain', 'status not drain')
    H.echo_ok(held, b'still here\n')
    held.close()
    poll_active = lambda: servers(sport)['a1']['active'] == 0  # noqa: E731
    H.poll_until(poll_active, 5, 'the drained connection to be counted '
                 'closed')

    st, body = api(sport, 'POST', srv_path('a1'), {'state': 'maint'})
    check(st == 200, 'maint: %d %r' % (st, body))
    check(servers(sport)['a1']['status'] == 'maint', 'status not maint')
    seen = names_seen(port, 10)
    check(set(seen) == {'a2'}, 'a1 in maint gets new ones: %r' % seen)

    st, body = api(sport, 'POST', srv_path('a1'), {'state': 'ready',
                                                     'weight': 3})
    check(st == 200, 'ready: %d %r' % (st, body))
    a1 = servers(sport)['a1']
    check(a1['status'] == 'up' and a1['weight'] == 3, 'a1 now %r' % a1)
    c = collections.Counter(names_seen(port, 40))
    # Two workers, each weighted round-robin 3:1 over its share.
    check(27 <= c['a1'] <= 33 and c['a1'] + c['a2'] == 40,
          'weight 3:1 not followed over 40: %r' % dict(c))
    b.wait_log(r'api: 127\.0\.0\.1:\d+: server app/a1: state drain -> '
               r'maint')
    c = http.client.HTTPConnection(H.LOCALHOST, sport, timeout=5)
    c.request('GET', '/metrics', headers={'Authorization':
                                          'Bearer ' + TOKEN})
    metrics = c.getresponse().read().decode()
    c.close()
    check('baton_server_weight{backend="app",server="a1"} 3' in metrics,
          'metrics without the new weight')
    check('baton_server_drain{backend="app",server="a1"} 0' in metrics,
          'metrics without baton_server_drain')


@h.case
def without_the_token_changes_get_401():
    b, port, sport, _ = start(['a1', 'a2'])
    for tok in (None, 'wrong', TOKEN + 'x'):
        c = http.client.HTTPConnection(H.LOCALHOST, sport, timeout=5)
        hdrs = {} if tok is None else {'Authorization': 'Bearer ' + tok}
        c.request('POST', srv_path('a1'), body=b'{"state": "drain"}',
                  headers=hdrs)
        r = c.getresponse()
        body = r.read()
        c.close()
        check(r.status == 401, 'token %r: status %d' % (tok, r.status))
        check(r.getheader('Content-Type') == 'application/json' and
              'token' in json.loads(body.decode())['error'],
              '401 not as JSON: %r' % body)
        c = http.client.HTTPConnection(H.LOCALHOST, sport, timeout=5)
        c.request('PUT', srv_path('n1'), headers=hdrs,
                  body=b'{"address": "127.0.0.1:1"}')
        r = c.getresponse()
        r.read()
        c.close()
        check(r.status == 401, 'PUT, token %r: status %d' % (tok, r.status))
    sv = servers(sport)
    check(sv['a1']['status'] == 'up' and 'n1' not in sv,
          'a refused change was applied: %r' % sv)
    check(set(names_seen(port, 10)) == {'a1', 'a2'}, 'balance changed')


@h.case
def no_token_refused_unless_loopback():
    # Listening on every address without a token: changes are refused.
    b, port, sport, _ = start(['a1', 'a2'], stats_listen='0.0.0.0',
                              token=None)
    st, body = api(sport, 'POST', srv_path('a1'), {'state': 'drain'},
                   token=None)
    check(st == 403 and 'token' in body.get('error', ''),
          'no token, not loopback: %d %r' % (st, body))
    check(set(names_seen(port, 10)) == {'a1', 'a2'}, 'the change applied')
    h.stop_proc(b.proc)
    # On loopback without a token: allowed.
    b, port, sport, _ = start(['a1', 'a2'], token=None)
    st, body = api(sport, 'POST', srv_path('a1'), {'state': 'drain'},
                   token=None)
    check(st == 200, 'no token, loopback: %d %r' % (st, body))
    check(set(names_seen(port, 10)) == {'a2'}, 'the drain not applied')


@h.case
def errors_are_json_with_codes():
    b, port, sport, _ = start(['a1'], workers=1)
    cases = [
        ('POST', srv_path('a1'), b'{"state": ', 400, 'bad JSON'),
        ('POST', srv_path('a1'), b'[1, 2]', 400, 'object'),
        ('POST', srv_path('a1'), b'{}', 400, 'nothing to change'),
        ('POST', srv_path('a1'), b'{"state": "sleep"}', 400, 'state'),
        ('POST', srv_path('a1'), b'{"weight": 0}', 400, 'weight'),
        ('POST', srv_path('a1'), b'{"weight": 257}', 400, 'weight'),
        ('POST', srv_path('a1'), b'{"weight": "2"}', 400, 'weight'),
        ('POST', srv_path('a1'), b'{"colour": "red"}', 400, 'unknown'),
        ('POST', srv_path('a1'), b'{"state": "drain", "state": "ready"}',
         400, 'bad JSON'),
        ('POST', srv_path('a1'), b'\xff\xfe\x00garbage', 400, 'bad JSON'),
        ('POST', srv_path('zz'), b'{"state": "drain"}', 404, 'no server'),
        ('POST', srv_path('a1', 'nope'), b'{"state": "drain"}', 404,
         'no backend'),
        ('POST', '/api/backends/app', b'{"state": "drain"}', 404,
         'no such'),
        ('POST', '/api/backends/app/servers/a1/x', b'{"state": "drain"}',
         404, 'no'),
        ('GET', srv_path('a1'), None, 405, 'POST'),
        ('PUT', srv_path('a1'), b'{"address": "127.0.0.1:9"}', 409,
         'exists'),
        ('PUT', srv_path('n1'), b'{"weight": 2}', 400, 'address'),
        ('PUT', srv_path('n1'), b'{"address": "localhost:80"}', 400,
         'address'),
        ('PUT', srv_path('n1'), b'{"address": "127.0.0.1:99999"}', 400,
         'address'),
        ('PUT', srv_path('n1'), b'{"address": "127.0.0.1:80", '
         b'"backup": 1}', 400, 'backup'),
        ('PUT', srv_path('n1'), b'{"address": "127.0.0.1:80", '
         b'"send_proxy": "v3"}', 400, 'send_proxy'),
        ('PUT', srv_path('bad*name'), b'{"address": "127.0.0.1:80"}', 400,
         'name'),
        ('DELETE', srv_path('zz'), None, 404, 'no server'),
        ('DELETE', srv_path('a1'), b'{"now": true}', 400, 'unknown'),
    ]
    for method, path, body, want, word in cases:
        st, got = api(sport, method, path, raw=body if body else b'')
        check(st == want and word in got.get('error', ''),
              '%s %s %r: %d %r, wanted %d with %r' % (method, path, body,
                                                      st, got, want, word))
    check(servers(sport)['a1']['status'] == 'up', 'a bad request changed a1')
    check(names_seen(port, 3) == ['a1'] * 3, 'a1 does not serve')
    b.check_running()


class Load:
    """Clients opening short connections back to back from several
    threads; every one must get a server's name and its echo back."""

    def __init__(self, port, nthreads=4):
        self.port = port
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.seen = collections.Counter()
        self.errors = []
        self.threads = [threading.Thread(target=self.run, args=(i,))
                        for i in range(nthreads)]
        for t in self.threads:
            t.start()

    def run(self, i):
        n = 0
        while not self.stop.is_set():
            n += 1
            try:
                s = H.connect(self.port)
                try:
                    name = H.recv_line(s, timeout=5).decode().strip()
                    H.echo_ok(s, b'load %d %d\n' % (i, n))
                finally:
                    s.close()
            except Exception as e:  # noqa: BLE001
                with self.lock:
                    self.errors.append(repr(e))
                continue
            with self.lock:
                self.seen[name] += 1

    def snapshot(self):
        with self.lock:
            return collections.Counter(self.seen)

    def end(self):
        self.stop.set()
        for t in self.threads:
            t.join(30)


@h.case(timeout=120)
def add_and_remove_under_load_lose_nothing():
    b, port, sport, _ = start(['a1', 'a2'])
    n1 = h.start_backend('name', name='n1')
    load = Load(port)
    try:
        H.poll_until(lambda: sum(load.snapshot().values()) > 50, 20,
                     'load to run')
        st, body = api(sport, 'PUT', srv_path('n1'),
                       {'address': '127.0.0.1:%d' % n1.port, 'weight': 2})
        check(st == 201, 'add: %d %r' % (st, body))
        H.poll_until(lambda: load.snapshot()['n1'] > 30, 20,
                     'the added server to take connections')
        sv = servers(sport)
        check(sv['n1']['weight'] == 2 and sv['n1']['status'] == 'up' and
              sv['n1']['address'] == '127.0.0.1:%d' % n1.port,
              'n1 in /stats: %r' % sv.get('n1'))
        # A long connection to n1 lives through its removal.
        held = None
        for _ in range(20):
            s = H.connect(port)
            if H.recv_line(s).strip() == b'n1':
                held = s
                break
            s.close()
        check(held is not None, 'no connection reached n1')
        st, body = api(sport, 'DELETE', srv_path('a1'))
        check(st == 200, 'remove a1: %d %r' % (st, body))
        st, body = api(sport, 'DELETE', srv_path('n1'))
        check(st == 200, 'remove n1: %d %r' % (st, body))
        time.sleep(0.2)     # connections picked before the DELETE end
        before = load.snapshot()
        H.poll_until(lambda: load.snapshot()['a2'] > before['a2'] + 100,
                     30, 'load to go on')
        after = load.snapshot()
        check(after['a1'] == before['a1'] and after['n1'] == before['n1'],
              'removed servers took new connections: %r -> %r'
              % (dict(before), dict(after)))
        sv = servers(sport)
        check('a1' not in sv, 'a1 (no open connection) still listed: %r' % sv.get('a1'))
        check(sv['n1']['status'] == 'drain', 'n1 while a connection is '
              'open: %r' % sv['n1'])
        H.echo_ok(held, b'after removal\n')
        held.close()
        H.poll_until(lambda: 'n1' not in servers(sport), 5,
                     'n1 to be gone once its last connection closed')
        # Added again under the same name: it serves again.
        st, body = api(sport, 'PUT', srv_path('n1'),
                       {'address': '127.0.0.1:%d' % n1.port})
        check(st == 201, 'add n1 again: %d %r' % (st, body))
        before = load.snapshot()
        H.poll_until(lambda: load.snapshot()['n1'] > before['n1'] + 20, 20,
                     'n1 to serve again')
    finally:
        load.end()
    check(not load.errors, '%d connections failed under load, first: %s'
          % (len(load.errors), load.errors[:3]))
    b.wait_log(r'api: 127\.0\.0\.1:\d+: server app/n1 \(127\.0\.0\.1:\d+\) '
               r'added')
    b.wait_log(r'api: 127\.0\.0\.1:\d+: server app/a1 .* removed')
    st = stats(sport)
    check(st['frontends'][0]['errors'] == 0, 'frontend errors: %r'
          % st['frontends'][0])


@h.case
def new_worker_learns_every_change():
    b, port, sport, _ = start(['a1', 'a2'], workers=1)
    n1 = h.start_backend('name', name='n1')
    check(api(sport, 'POST', srv_path('a1'), {'state': 'drain'})[0] == 200,
          'drain a1')
    check(api(sport, 'PUT', srv_path('n1'),
              {'address': '127.0.0.1:%d' % n1.port, 'weight': 3})[0] == 201,
          'add n1')
    check(api(sport, 'POST', srv_path('a2'), {'weight': 1})[0] == 200,
          'weight a2')
    old = b.workers()
    check(len(old) == 1, 'workers: %r' % old)
    os.kill(old[0], signal.SIGKILL)
    b.wait_workers(1, exclude=old)
    c = collections.Counter(names_seen(port, 40))
    check(c['a1'] == 0 and c['n1'] == 30 and c['a2'] == 10,
          'the new worker does not follow the changes: %r' % dict(c))


@h.case
def bad_server_definition_on_the_channel_cuts_nothing_else():
    # The API refuses a name a channel record could not carry; nothing
    # else changes.
    b, port, sport, _ = start(['a1'], workers=1)
    long_name = 'n' * 64
    st, body = api(sport, 'PUT', srv_path(long_name),
                   {'address': '127.0.0.1:9'})
    check(st == 400, 'a 64-character name: %d %r' % (st, body))
    st, body = api(sport, 'PUT', srv_path('n' * 63),
                   {'address': '127.0.0.1:9', 'state': 'maint'})
    check(st == 201, 'a 63-character name: %d %r' % (st, body))
    check(servers(sport)['n' * 63]['status'] == 'maint', 'not in maint')
    check(names_seen(port, 5) == ['a1'] * 5, 'a1 does not serve alone')
    b.check_running()


@h.case
def added_server_starts_as_the_check_says():
    b, port, sport, _ = start(['a1'], workers=2, extra_backend='\n'.join([
        'check = tcp', 'check_interval = 300ms', 'check_timeout = 200ms',
        'rise = 2', 'fall = 1']))
    n1 = h.start_backend('name', name='n1')
    st, body = api(sport, 'PUT', srv_path('n1'),
                   {'address': '127.0.0.1:%d' % n1.port})
    check(st == 201, 'add n1: %d %r' % (st, body))
    check(servers(sport)['n1']['status'] == 'down',
          'n1 up before its checks passed: %r' % servers(sport)['n1'])
    H.poll_until(lambda: servers(sport)['n1']['status'] == 'up', 10,
                 'n1 up once its checks pass')
    check(set(names_seen(port, 8)) == {'a1', 'n1'}, 'n1 takes no traffic')
    # One at a port nobody listens on stays down and is never tried.
    st, body = api(sport, 'PUT', srv_path('dead'),
                   {'address': '127.0.0.1:%d' % H.dead_port()})
    check(st == 201, 'add dead: %d %r' % (st, body))
    time.sleep(1.5)
    check(servers(sport)['dead']['status'] == 'down', 'dead: %r'
          % servers(sport)['dead'])
    check(set(names_seen(port, 8)) == {'a1', 'n1'}, 'traffic changed')
    check(servers(sport)['dead']['failures'] == 0, 'dead was tried')
    check(stats(sport)['frontends'][0]['errors'] == 0, 'errors')


def reload_and_wait(b, sport, gen):
    b.signal(signal.SIGHUP)
    H.poll_until(lambda: stats(sport)['generation'] == gen, 10,
                 'generation %d' % gen)


@h.case(timeout=90)
def reload_keeps_runtime_changes_the_file_does_not_change():
    names = ['a1', 'a2', 'a3', 'a4', 'n2']
    bk = {n: h.start_backend('name', name=n) for n in names + ['n1']}
    port, sport = H.free_port(), H.free_port()

    def conf(a4_weight, with_n2):
        srv = ['a1 127.0.0.1:%d' % bk['a1'].port,
               'a2 127.0.0.1:%d' % bk['a2'].port,
               'a3 127.0.0.1:%d' % bk['a3'].port,
               'a4 127.0.0.1:%d weight=%d' % (bk['a4'].port, a4_weight)]
        if with_n2:
            srv.append('n2 127.0.0.1:%d weight=4' % bk['n2'].port)
        text = H.config(port, srv, workers=2)
        return text + '\n[stats]\nlisten = 127.0.0.1:%d\ntoken = %s\n' % (
            sport, TOKEN)
    b = h.start_baton(conf(1, False))
    for path, body in ((srv_path('a1'), {'state': 'drain'}),
                       (srv_path('a2'), {'weight': 3}),
                       (srv_path('a4'), {'weight': 5, 'state': 'maint'})):
        st, got = api(sport, 'POST', path, body)
        check(st == 200, 'POST %s: %d %r' % (path, st, got))
    st, got = api(sport, 'PUT', srv_path('n1'),
                  {'address': '127.0.0.1:%d' % bk['n1'].port, 'weight': 2})
    check(st == 201, 'add n1: %d %r' % (st, got))
    st, got = api(sport, 'PUT', srv_path('n2'),
                  {'address': '127.0.0.1:%d' % bk['n1'].port})
    check(st == 201, 'add n2: %d %r' % (st, got))
    st, got = api(sport, 'DELETE', srv_path('a3'))
    check(st == 200, 'remove a3: %d %r' % (st, got))

    # The same file: every runtime change stays.
    reload_and_wait(b, sport, 2)
    sv = servers(sport)
    check(sv['a1']['status'] == 'drain', 'a1 after reload: %r' % sv['a1'])
    check(sv['a2']['weight'] == 3, 'a2 after reload: %r' % sv['a2'])
    check(sv['a4']['status'] == 'maint' and sv['a4']['weight'] == 5,
          'a4 after reload: %r' % sv['a4'])
    check(sv['n1']['weight'] == 2 and sv['n1']['status'] == 'up',
          'n1 after reload: %r' % sv.get('n1'))
    check('a3' not in sv, 'a3 came back: %r' % sv.get('a3'))
    c = collections.Counter(names_seen(port, 60))
    check(set(c) == {'a2', 'n1'}, 'after the reload: %r' % dict(c))
    # a2 weight 3, n1 weight 2, and n2 (added, at n1's address) weight 1.
    check(c['a2'] == 30 and c['n1'] == 30, 'weights after reload: %r'
          % dict(c))

    # A file that changes a4 and defines n2: the file wins for those two.
    with open(b.config, 'w') as f:
        f.write(conf(2, True))
    reload_and_wait(b, sport, 3)
    sv = servers(sport)
    check(sv['a4']['status'] == 'up' and sv['a4']['weight'] == 2,
          'a4, changed by the file: %r' % sv['a4'])
    check(sv['n2']['weight'] == 4 and sv['n2']['address'] ==
          '127.0.0.1:%d' % bk['n2'].port, 'n2 from the file: %r' % sv['n2'])
    check(sv['a1']['status'] == 'drain' and sv['a2']['weight'] == 3 and
          'n1' in sv and 'a3' not in sv, 'the other changes: %r' % sv)
    b.wait_log(r'reload: server app/a4: the file changed it, the file wins')
    b.wait_log(r'reload: server app/n2 \(added at runtime, .*\): the file '
               r'now defines it, the file wins')
    c = collections.Counter(names_seen(port, 44))
    check(set(c) == {'a2', 'a4', 'n1', 'n2'}, 'after the second reload: %r'
          % dict(c))


if __name__ == '__main__':
    sys.exit(h.run())
