"""Start-to-ready of the handler: fork/exec to the first HTTP answer on GET /, polled in a tight
loop (the Functions host polls every 25 ms). Used by tests/bench/run.mjs; prints the median in ms.
Usage: ready.py HANDLER_BIN STORAGE_CONNECTION_STRING [RUNS]"""
import os
import socket
import statistics
import subprocess
import sys
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def answered(port):
    with socket.socket() as s:
        try:
            s.connect(("127.0.0.1", port))
            s.sendall(b"GET / HTTP/1.0\r\n\r\n")
            return s.recv(16).startswith(b"HTTP/1.")
        except OSError:
            return False


def main():
    binary, storage = sys.argv[1], sys.argv[2]
    runs = int(sys.argv[3]) if len(sys.argv) > 3 else 20
    times = []
    for _ in range(runs):
        port = free_port()
        env = {"PATH": os.environ["PATH"], "FUNCTIONS_CUSTOMHANDLER_PORT": str(port),
               "StorageConnectionString": storage}
        t0 = time.perf_counter()
        proc = subprocess.Popen([binary], env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        while not answered(port):
            pass
        times.append((time.perf_counter() - t0) * 1000)
        proc.terminate()
        proc.wait()
    print("%.2f" % statistics.median(times))


main()
