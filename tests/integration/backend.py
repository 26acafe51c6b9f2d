#!/usr/bin/python3
"""backend.py -- test backend servers for baton's integration tests.

Usage: backend.py [--port P] [--host H] [--name NAME] MODE [ARGS]

Binds HOST:PORT (default 127.0.0.1, port 0 = any free port), prints
"READY <port>" on stdout once listening, and serves until killed.

Modes:
  echo                 echo every byte; on the client's EOF, half-close back
  name                 write NAME + "\\n" on connect, then behave like echo
  sha256               read until EOF, reply hex sha256 + "\\n", close
                       (--read-delay-ms D: sleep D ms after each read, a
                       slow consumer)
  stream N             send N bytes of pattern(N) (see below), then close
  drip MS COUNT        send one byte every MS milliseconds, COUNT times,
                       then close (the client's data is read and dropped)

The stream pattern is a fixed pseudo-random block repeated; pattern_block()
and pattern_sha256() let a test compute the same bytes without this process.
Standard library only, asyncio, so thousands of connections are fine.
"""

import argparse
import asyncio
import hashlib
import random
import resource
import sys

# An odd size, so block edges never line up with any relay buffer size.
BLOCK_SIZE = (1 << 20) + 7
SEED = 20240601


def pattern_block():
    """The repeating block of the stream pattern."""
    return random.Random(SEED).randbytes(BLOCK_SIZE)


def pattern_chunks(total, block=None):
    """Yield the first TOTAL bytes of the stream pattern in chunks."""
    if block is None:
        block = pattern_block()
    left = total
    while left > 0:
        n = min(left, len(block))
        yield block[:n] if n < len(block) else block
        left -= n


def pattern_sha256(total):
    """Hex sha256 of the first TOTAL bytes of the stream pattern."""
    h = hashlib.sha256()
    for chunk in pattern_chunks(total):
        h.update(chunk)
    return h.hexdigest()


def raise_nofile():
    """Raise our fd limit to the hard limit: we may hold thousands."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def close_writer(writer):
    try:
        writer.close()
        await writer.wait_closed()
    except (ConnectionError, OSError):
        pass


async def echo_loop(reader, writer):
    while True:
        data = await reader.read(65536)
        if not data:
            break
        writer.write(data)
        await writer.drain()
    if writer.can_write_eof():
        writer.write_eof()
        await writer.drain()


class Server:
    def __init__(self, opts):
        self.opts = opts
        self.block = None
        if opts.mode == 'stream':
            self.block = pattern_block()

    async def handle(self, reader, writer):
        try:
            await getattr(self, 'mode_' + self.opts.mode)(reader, writer)
        except (ConnectionError, OSError, asyncio.IncompleteReadError):
            pass
        finally:
            await close_writer(writer)

    async def mode_echo(self, reader, writer):
        await echo_loop(reader, writer)

    async def mode_name(self, reader, writer):
        writer.write((self.opts.name + '\n').encode())
        await writer.drain()
        await echo_loop(reader, writer)

    async def mode_sha256(self, reader, writer):
        h = hashlib.sha256()
        total = 0
        while True:
            data = await reader.read(1 << 18)
            if not data:
                break
            h.update(data)
            total += len(data)
            if self.opts.read_delay_ms:
                await asyncio.sleep(self.opts.read_delay_ms / 1000.0)
        writer.write((h.hexdigest() + '\n').encode())
        await writer.drain()

    async def mode_stream(self, reader, writer):
        total = int(self.opts.args[0])
        drop = asyncio.ensure_future(self.drop_input(reader))
        try:
            for chunk in pattern_chunks(total, self.block):
                writer.write(chunk)
                await writer.drain()
            # Half-close, then wait for the peer's EOF: closing with
            # unread input would send a RST and discard what is still
            # queued to go out.
            if writer.can_write_eof():
                writer.write_eof()
                await writer.drain()
            await asyncio.wait_for(asyncio.shield(drop), 30)
        finally:
            drop.cancel()

    async def mode_drip(self, reader, writer):
        interval = int(self.opts.args[0]) / 1000.0
        count = int(self.opts.args[1])
        drop = asyncio.ensure_future(self.drop_input(reader))
        try:
            for _ in range(count):
                await asyncio.sleep(interval)
                writer.write(b'.')
                await writer.drain()
        finally:
            drop.cancel()

    @staticmethod
    async def drop_input(reader):
        while await reader.read(65536):
            pass


async def serve(opts):
    srv = Server(opts)
    server = await asyncio.start_server(srv.handle, opts.host, opts.port,
                                        backlog=4096, reuse_address=True)
    port = server.sockets[0].getsockname()[1]
    sys.stdout.write('READY %d\n' % port)
    sys.stdout.flush()
    async with server:
        await server.serve_forever()


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--host', default='127.0.0.1')
    p.add_argument('--port', type=int, default=0)
    p.add_argument('--name', default='backend')
    p.add_argument('--read-delay-ms', type=float, default=0)
    p.add_argument('mode', choices=['echo', 'name', 'sha256', 'stream',
                                    'drip'])
    p.add_argument('args', nargs='*')
    opts = p.parse_args()
    need = {'stream': 1, 'drip': 2}.get(opts.mode, 0)
    if len(opts.args) != need:
        p.error('mode %s takes %d argument(s)' % (opts.mode, need))
    raise_nofile()
    try:
        asyncio.run(serve(opts))
    except KeyboardInterrupt:
        pass


if __name__ == '__main__':
    main()
