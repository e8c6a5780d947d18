#!/usr/bin/env python3
"""Opens N connections that request PATH and then stop reading once the response head is in.

usage: slow_readers.py HOST PORT PATH N [HOLD_SECONDS]

Each client uses a 4 KiB receive buffer, so it takes almost nothing of the body off the
server. A 503 (the server refusing more heavy work) is retried after its Retry-After, so in
the end all N hold a 200. Prints "READY n=N retries=R" once they do, then holds the
connections for HOLD_SECONDS (default 600) or until killed.
"""
import socket
import sys
import threading
import time


def head(sock):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(1)
        if not chunk:
            break
        data += chunk
    return data.decode("latin-1")


def open_one(host, port, path):
    retries = 0
    deadline = time.time() + 300
    while time.time() < deadline:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect((host, port))
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        h = head(s)
        if h.startswith("HTTP/1.1 200"):
            return s, retries
        s.close()
        retries += 1
        wait = 1.0
        for line in h.split("\r\n"):
            if line.lower().startswith("retry-after:"):
                wait = float(line.split(":", 1)[1])
        time.sleep(min(wait, 5.0))
    raise SystemExit(f"no 200 for {path} within 300 s")


def main():
    host, port, path, n = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    hold = float(sys.argv[5]) if len(sys.argv) > 5 else 600.0
    held = []
    # All at once, as a burst of clients would come: some get 503 and retry.
    threads = [threading.Thread(target=lambda: held.append(open_one(host, port, path)))
               for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if len(held) < n:
        sys.exit(f"only {len(held)} of {n} clients got a 200")
    print(f"READY n={n} retries={sum(r for _, r in held)}", flush=True)
    time.sleep(hold)


if __name__ == "__main__":
    main()
