#!/usr/bin/python3
"""test_install.py -- make install into a DESTDIR, and the manual pages.

Runs `make install DESTDIR=...` in baton's build directory (BATON_BUILDDIR,
which Makefile.am's AM_TESTS_ENVIRONMENT sets; run by hand, the directory
above $BATON's src/) and checks the layout: baton in $(sbindir), the
example in $(sysconfdir)/baton/proxy.ini, baton(8) and proxy.ini(5) in
$(mandir). An existing proxy.ini is kept by install and by uninstall, an
unchanged one is removed by uninstall. The pages render with man -l and
groff -man -ww -z without a warning, and they name every proxy.ini key
and every termination reason the source has.
"""

import os
import re
import shlex
import shutil
import subprocess
import sys

sys.dont_write_bytecode = True  # the source tree may be read-only
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402
from harness import check  # noqa: E402

h = H.Harness('test_install', file_timeout=180)
SRC = H.REPO
BUILD = (os.environ.get('BATON_BUILDDIR')
         or os.path.dirname(os.path.dirname(os.path.abspath(H.BATON))))
MAKE = shlex.split(os.environ.get('BATON_MAKE') or 'make')
PAGES = {'baton.8': 'man8', 'proxy.ini.5': 'man5'}


def make_env():
    # A make run from make check must not try to join the outer jobserver.
    env = dict(os.environ)
    for k in ('MAKEFLAGS', 'MFLAGS', 'MAKELEVEL', 'MAKEOVERRIDES'):
        env.pop(k, None)
    return env


def make(*args, timeout=120):
    """Run make ARGS in the build directory; its output, or fail."""
    if not os.path.exists(os.path.join(BUILD, 'Makefile')):
        raise H.Skip('no Makefile in %s (set BATON_BUILDDIR)' % BUILD)
    r = subprocess.run(MAKE + ['-C', BUILD, '--no-print-directory']
                       + list(args), capture_output=True, text=True,
                       env=make_env(), stdin=subprocess.DEVNULL,
                       timeout=timeout)
    check(r.returncode == 0, 'make %s: exit %d\n%s%s'
          % (' '.join(args), r.returncode, r.stdout[-2000:],
             r.stderr[-2000:]))
    return r.stdout


def dirs():
    """{sbindir, bindir, sysconfdir, mandir} as the Makefile has them."""
    mk = h.path('dirs.mk')
    with open(mk, 'w') as f:
        f.write('baton-print-dirs:\n'
                '\t@echo sbindir=$(sbindir)\n'
                '\t@echo bindir=$(bindir)\n'
                '\t@echo sysconfdir=$(sysconfdir)\n'
                '\t@echo mandir=$(mandir)\n')
    out = make('-s', '-f', 'Makefile', '-f', mk, 'baton-print-dirs')
    d = dict(line.split('=', 1) for line in out.splitlines() if '=' in line)
    check(set(d) == {'sbindir', 'bindir', 'sysconfdir', 'mandir'},
          'make printed %r' % out)
    return d


def under(destdir, path):
    return os.path.join(destdir, path.lstrip('/'))


def files_in(top):
    out = []
    for root, _, names in os.walk(top):
        out += [os.path.relpath(os.path.join(root, n), top) for n in names]
    return sorted(out)


def example():
    with open(os.path.join(SRC, 'conf', 'proxy.ini'), 'rb') as f:
        return f.read()


def read(path):
    with open(path, 'rb') as f:
        return f.read()


@h.case(timeout=150)
def layout():
    d = dirs()
    dest = h.path('dest')
    make('install', 'DESTDIR=' + dest)
    baton = under(dest, d['sbindir'] + '/baton')
    conf = under(dest, d['sysconfdir'] + '/baton/proxy.ini')
    want = [baton, conf] + [under(dest, '%s/%s/%s' % (d['mandir'], sec, p))
                           for p, sec in PAGES.items()]
    got = sorted(os.path.join(dest, f) for f in files_in(dest))
    check(got == sorted(want), 'installed files:\n  %s\nwant:\n  %s'
          % ('\n  '.join(got), '\n  '.join(sorted(want))))
    check(os.access(baton, os.X_OK), '%s is not executable' % baton)
    check(not os.path.exists(under(dest, d['bindir'] + '/baton')),
          'baton is in bindir too')
    r = subprocess.run([baton, '-V'], capture_output=True, text=True,
                       timeout=10)
    check(r.returncode == 0 and r.stdout.startswith('baton '),
          'installed baton -V: %d %r' % (r.returncode, r.stdout))
    check(read(conf) == example(), '%s is not conf/proxy.ini' % conf)
    r = subprocess.run([baton, '-t', '-c', conf], capture_output=True,
                       text=True, timeout=10)
    check(r.returncode == 0, 'installed proxy.ini does not pass -t: %s'
          % r.stdout + r.stderr)
    for p, sec in PAGES.items():
        check(read(under(dest, '%s/%s/%s' % (d['mandir'], sec, p)))
              == read(page_path(p)), '%s differs' % p)
    make('uninstall', 'DESTDIR=' + dest)
    check(files_in(dest) == [], 'uninstall left %r' % files_in(dest))


@h.case(timeout=150)
def existing_config_kept():
    d = dirs()
    dest = h.path('dest')
    conf = under(dest, d['sysconfdir'] + '/baton/proxy.ini')
    os.makedirs(os.path.dirname(conf))
    mine = b'; the administrator\'s own\n[frontend x]\n'
    with open(conf, 'wb') as f:
        f.write(mine)
    make('install', 'DESTDIR=' + dest)
    check(read(conf) == mine, 'install overwrote an existing proxy.ini')
    make('install', 'DESTDIR=' + dest)
    check(read(conf) == mine, 'a second install overwrote proxy.ini')
    out = make('uninstall', 'DESTDIR=' + dest)
    check(read(conf) == mine, 'uninstall removed or changed an edited '
          'proxy.ini')
    check('left in place' in out, 'uninstall did not say it kept %s:\n%s'
          % (conf, out))
    check(files_in(dest) == [os.path.relpath(conf, dest)],
          'after uninstall: %r' % files_in(dest))
    shutil.rmtree(dest)


def page_path(page):
    """Where PAGE is in the source tree (man/manN/, so that MANPATH=man
    finds it)."""
    return os.path.join(SRC, 'man', PAGES[page], page)


def need(tool):
    if shutil.which(tool) is None:
        raise H.Skip('%s is not installed (contrib/setup-debian.sh '
                     'installs it)' % tool)


@h.case
def pages_render_cleanly():
    need('man')
    need('groff')
    env = dict(os.environ, MANWIDTH='80', LC_ALL='C.UTF-8', MANPAGER='cat',
               PAGER='cat')
    for p in PAGES:
        path = page_path(p)
        for argv in (['groff', '-man', '-ww', '-z', path],
                     ['groff', '-t', '-man', '-ww', '-z', path]):
            r = subprocess.run(argv, capture_output=True, text=True,
                               timeout=30)
            check(r.returncode == 0 and r.stderr == '' and r.stdout == '',
                  '%s: exit %d\n%s%s' % (' '.join(argv), r.returncode,
                                         r.stdout, r.stderr))
        r = subprocess.run(['man', '--warnings', '-l', path],
                           capture_output=True, text=True, timeout=30,
                           env=env)
        check(r.returncode == 0 and r.stderr == '',
              'man -l %s: exit %d\n%s' % (p, r.returncode, r.stderr))
        for sect in ('NAME', 'SYNOPSIS', 'DESCRIPTION', 'SEE ALSO'):
            check(re.search(r'(?m)^%s$' % sect, r.stdout),
                  'man -l %s: no %s section' % (p, sect))


def rendered(page):
    r = subprocess.run(['man', '-l', page_path(page)],
                       capture_output=True, text=True, timeout=30,
                       env=dict(os.environ, MANWIDTH='200', LC_ALL='C',
                                MAN_KEEP_FORMATTING='', MANPAGER='cat'))
    # Words hyphenated at a line end would hide a name: join them again.
    return re.sub(r'\s+', ' ', r.stdout.replace('\u2010\n', ''))


def source_keys():
    """{section table: [keys]} from src/config_keys.c."""
    with open(os.path.join(SRC, 'src', 'config_keys.c')) as f:
        text = f.read()
    out = {}
    for m in re.finditer(r'struct key_def (\w+)_keys\[\] = \{(.*?)\};',
                         text, re.S):
        out[m.group(1)] = re.findall(r'\{ "(\w+)",', m.group(2))
    check(set(out) == {'global', 'stats', 'frontend', 'backend'},
          'key tables in config_keys.c: %r' % sorted(out))
    return out


def source_reasons():
    """Every literal termination reason in the worker's source."""
    reasons = set()
    for name in ('session.c', 'worker.c', 'relay.c'):
        with open(os.path.join(SRC, 'src', name)) as f:
            text = f.read()
        for m in re.finditer(r'session_(?:close|refuse)\(s,\s*(.*?)\);\n',
                             text, re.S):
            reasons.update(re.findall(r'"([^"]+)"', m.group(1)))
        for m in re.finditer(r'\*why = (.*?);\n', text, re.S):
            reasons.update(re.findall(r'"([^"]+)"', m.group(1)))
    check(len(reasons) > 10, 'only %r found' % sorted(reasons))
    return reasons


@h.case
def pages_cover_keys_and_reasons():
    need('man')
    page5 = rendered('proxy.ini.5')
    for sect, keys in source_keys().items():
        for k in keys:
            check(re.search(r'(?<![\w])%s = ' % k, page5),
                  'proxy.ini(5) does not describe [%s] %s' % (sect, k))
    page8 = rendered('baton.8')
    with open(os.path.join(SRC, 'README.md')) as f:
        readme = f.read()
    for reason in sorted(source_reasons()):
        check(reason in page8, 'baton(8) does not list the termination '
              'reason %r' % reason)
        check('| `%s` |' % reason in readme, 'README does not list the '
              'termination reason %r' % reason)


if __name__ == '__main__':
    sys.exit(h.run())
