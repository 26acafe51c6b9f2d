#!/usr/bin/python3
"""test_epoll.py -- the hand-off's own test files again on the master's
epoll path (io_uring = off in every configuration they write), so that
the fallback keeps every guarantee the ring path is tested for: the
ownership of accepted sockets, the descriptor limit, reloads, lifecycle."""

import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
FILES = ['test_owner.py', 'test_pressure.py', 'test_reload.py',
         'test_lifecycle.py']
BOUND = 600         # seconds, per file


def main():
    env = dict(os.environ, BATON_TEST_IO_URING='off')
    failed = []
    for f in FILES:
        print('==== %s with io_uring = off' % f, flush=True)
        try:
            rc = subprocess.run([sys.executable, os.path.join(HERE, f)],
                                env=env, timeout=BOUND).returncode
        except subprocess.TimeoutExpired:
            rc = 'timeout'
        if rc != 0:
            failed.append('%s (%s)' % (f, rc))
    print('test_epoll: %d files, %d failed%s'
          % (len(FILES), len(failed), (': ' + ', '.join(failed))
             if failed else ''))
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
