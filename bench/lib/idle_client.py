#!/usr/bin/python3
"""Open N connections to a proxy and hold them, for the idle-memory scenarios.

    idle_client.py PORT N [--mode request|silent] [--tls] [--parallel 50]

request: each connection sends one GET / and reads the whole response (200,
Content-Length), then stays open, idle; silent: each connects and sends
nothing. At most --parallel connections are being set up at once, so the
proxy's upstream pool stays small and the memory measured is the client
connections'. When all are set up, one JSON line goes to stdout:
{"ok": n, "failed": n, "errors": {...}, "seconds": s}. Then it waits: a line
"check" on stdin answers {"open": n} (connections the proxy has not closed),
end of input closes everything and exits.
"""

import argparse
import asyncio
import json
import os
import resource
import select
import socket
import ssl
import sys
import time


async def open_one(args, ctx, sem, held, errors):
    async with sem:
        try:
            r, w = await asyncio.wait_for(
                asyncio.open_connection("127.0.0.1", args.port, ssl=ctx), 30)
            if args.mode == "request":
                w.write(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                head = await asyncio.wait_for(r.readuntil(b"\r\n\r\n"), 30)
                status = head.split(b" ", 2)[1]
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                await asyncio.wait_for(r.readexactly(length), 30)
                if status != b"200":
                    raise RuntimeError(f"status {status.decode()}")
            held.append(w)
        except Exception as e:  # counted, reported, not fatal
            key = type(e).__name__
            errors[key] = errors.get(key, 0) + 1


async def open_all(args):
    ctx = None
    if args.tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    sem = asyncio.Semaphore(args.parallel)
    held, errors = [], {}
    await asyncio.gather(*(open_one(args, ctx, sem, held, errors) for _ in range(args.n)))
    return held, errors


def closed(fd):
    """True when the peer closed fd: a peek reads end of file or an error."""
    s = socket.socket(fileno=os.dup(fd))
    try:
        return s.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True
    finally:
        s.close()


def still_open(held):
    """How many of the held connections the proxy has not closed."""
    p = select.poll()
    fds = []
    for w in held:
        s = w.get_extra_info("socket")
        if s is not None:
            p.register(s.fileno(), select.POLLIN | select.POLLHUP)
            fds.append(s.fileno())
    gone = sum(1 for fd, _ in p.poll(0) if closed(fd))
    return len(fds) - gone


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("port", type=int)
    ap.add_argument("n", type=int)
    ap.add_argument("--mode", choices=["request", "silent"], default="request")
    ap.add_argument("--tls", action="store_true")
    ap.add_argument("--parallel", type=int, default=50)
    args = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    t0 = time.monotonic()
    loop = asyncio.new_event_loop()
    held, errors = loop.run_until_complete(open_all(args))
    print(json.dumps({"ok": len(held), "failed": args.n - len(held), "errors": errors,
                      "seconds": round(time.monotonic() - t0, 3)}), flush=True)
    for line in sys.stdin:  # the loop stands still: the connections just sit
        if line.strip() == "check":
            print(json.dumps({"open": still_open(held)}), flush=True)
    for w in held:
        s = w.get_extra_info("socket")
        if s is not None:
            s.shutdown(socket.SHUT_RDWR)
    loop.close()


if __name__ == "__main__":
    main()
