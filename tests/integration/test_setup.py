#!/usr/bin/python3
"""test_setup.py -- contrib/setup-debian.sh on both of its paths.

The README's commands start with this script, so it must succeed on its
very first run on a fresh Debian image: with every package missing, and
with or without a /usr/sbin/policy-rc.d already there (containers ship
one). The script runs for real with stand-ins for dpkg-query, apt-get,
sudo and id first on PATH, in a temp dir; the policy file it may create
is redirected there with BATON_POLICY_RC. Nothing is installed.
Standard library only; run with /usr/bin/python3.
"""

import os
import shutil
import subprocess
import sys
import tempfile
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(os.path.dirname(os.path.dirname(HERE)), 'contrib',
                      'setup-debian.sh')

# dpkg-query: every package installed, or none ($STANDIN_MISSING=1).
DPKG_QUERY = r'''#!/bin/sh
echo "dpkg-query $*" >> "$STANDIN_LOG"
[ "${STANDIN_MISSING:-0}" = 1 ] && exit 1
printf 'install ok installed'
'''
# apt-get: records its arguments and whether the policy file exists then.
APT_GET = r'''#!/bin/sh
if [ -e "$BATON_POLICY_RC" ]; then p=policy; else p=nopolicy; fi
echo "apt-get $p $*" >> "$STANDIN_LOG"
exit "${STANDIN_APT_STATUS:-0}"
'''
SUDO = '#!/bin/sh\necho "sudo $*" >> "$STANDIN_LOG"\nexec "$@"\n'
ID = '#!/bin/sh\necho "${STANDIN_UID:-0}"\n'


def run_setup(tmp, missing, policy_there, apt_status=0, uid=0):
    """Run the script; returns (status, output, log lines, policy path)."""
    bindir = os.path.join(tmp, 'bin')
    os.makedirs(bindir, exist_ok=True)
    for name, text in (('dpkg-query', DPKG_QUERY), ('apt-get', APT_GET),
                       ('sudo', SUDO), ('id', ID)):
        path = os.path.join(bindir, name)
        with open(path, 'w') as f:
            f.write(text)
        os.chmod(path, 0o755)
    log = os.path.join(tmp, 'calls.log')
    policy = os.path.join(tmp, 'policy-rc.d')
    for p in (log, policy):
        if os.path.exists(p):
            os.unlink(p)
    if policy_there:
        with open(policy, 'w') as f:
            f.write('#!/bin/sh\n# the image\'s own\nexit 101\n')
    env = dict(os.environ, PATH=bindir + ':/usr/bin:/bin',
               STANDIN_LOG=log, BATON_POLICY_RC=policy,
               STANDIN_MISSING='1' if missing else '0',
               STANDIN_APT_STATUS=str(apt_status), STANDIN_UID=str(uid))
    p = subprocess.run(['sh', SCRIPT], env=env, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=30)
    lines = []
    if os.path.exists(log):
        with open(log) as f:
            lines = f.read().splitlines()
    return p.returncode, p.stdout.decode(errors='replace'), lines, policy


def apt_calls(lines):
    return [x for x in lines if x.startswith('apt-get ')]


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


def packages_present_installs_nothing(tmp):
    for policy_there in (False, True):
        rc, out, lines, policy = run_setup(tmp, False, policy_there)
        check(rc == 0, 'exit %d with every package present:\n%s' % (rc, out))
        check(not apt_calls(lines), 'apt-get ran: %r' % apt_calls(lines))
        check(os.path.exists(policy) == policy_there,
              'the policy file changed with nothing to install')


def missing_without_policy_file(tmp):
    rc, out, lines, policy = run_setup(tmp, True, False)
    check(rc == 0, 'exit %d on the first run without a policy file:\n%s'
          % (rc, out))
    calls = apt_calls(lines)
    check(len(calls) == 2 and 'update' in calls[0] and
          'install' in calls[1] and 'libevent-dev' in calls[1],
          'apt-get calls: %r' % calls)
    # make fuzz needs clang with its libFuzzer and sanitizer runtimes.
    check(' clang ' in calls[1] + ' ' and
          ' libclang-rt-14-dev' in calls[1],
          'the fuzzers\' compiler is not installed: %r' % calls[1])
    # The tests make certificates with openssl and check the unit with
    # systemd-analyze: a fresh image has neither (test_tls skipped there).
    check(' openssl ' in calls[1] + ' ' and ' systemd ' in calls[1] + ' ',
          'openssl or systemd is not installed: %r' % calls[1])
    # The runtime API parses its JSON bodies with jansson.
    check(' libjansson-dev ' in calls[1] + ' ',
          'libjansson-dev is not installed: %r' % calls[1])
    # DNS discovery resolves with c-ares; its test serves DNS with dnslib.
    check(' libc-ares-dev ' in calls[1] + ' ' and
          ' python3-dnslib' in calls[1],
          'libc-ares-dev or python3-dnslib is not installed: %r' % calls[1])
    check(all(' policy ' in c for c in calls),
          'services could start during the install: %r' % calls)
    check(not os.path.exists(policy), 'the policy file it made was left')


def missing_with_policy_file(tmp):
    # The container case: the script must not fail (it once exited 1 here).
    rc, out, lines, policy = run_setup(tmp, True, True)
    check(rc == 0, 'exit %d on the first run with the image\'s policy '
          'file:\n%s' % (rc, out))
    check(len(apt_calls(lines)) == 2, 'apt-get calls: %r' % apt_calls(lines))
    with open(policy) as f:
        check('the image\'s own' in f.read(),
              'the image\'s policy file was replaced')


def failed_install_fails_and_cleans_up(tmp):
    rc, out, lines, policy = run_setup(tmp, True, False, apt_status=100)
    check(rc != 0, 'a failed apt-get went unnoticed')
    check(not os.path.exists(policy), 'the policy file it made was left '
          'after a failed install')


def not_root_uses_sudo(tmp):
    rc, out, lines, policy = run_setup(tmp, True, False, uid=1000)
    check(rc == 0, 'exit %d as a user:\n%s' % (rc, out))
    check(any(x.startswith('sudo apt-get') for x in lines),
          'apt-get not run through sudo: %r' % lines)


CASES = [packages_present_installs_nothing, missing_without_policy_file,
         missing_with_policy_file, failed_install_fails_and_cleans_up,
         not_root_uses_sudo]


def main():
    passed = failed = 0
    for case in CASES:
        tmp = tempfile.mkdtemp(prefix='baton-test_setup-')
        try:
            case(tmp)
        except Exception:
            failed += 1
            print('FAIL: %s\n%s' % (case.__name__, traceback.format_exc()))
            continue
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        passed += 1
        print('PASS: %s' % case.__name__)
    print('test_setup: %d passed, %d failed' % (passed, failed))
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
