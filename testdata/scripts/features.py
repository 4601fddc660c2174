"""Python's standard library over the kernel: processes, threads, files,
memory maps (sqlite, ctypes) and the C library (ctypes).

Prints only what is the same on every run and machine.
"""

import ctypes
import ctypes.util
import hashlib
import json
import multiprocessing
import os
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import zlib


def square(n):
    return n * n


def child_report(queue):
    queue.put(("child", os.getpid() != os.getppid()))


def main():
    doc = {"name": "kvmbox", "tags": ["a", "b"], "n": 3, "nested": {"ok": True, "none": None}}
    text = json.dumps(doc, sort_keys=True, indent=1)
    print(text)
    print(json.loads(text) == doc)

    m = re.fullmatch(r"(?P<word>[a-z]+)-(?P<num>\d+)", "abc-123")
    print(m.group("word"), int(m.group("num")) * 2, re.sub(r"\s+", " ", "a   b \t c"))
    print(re.findall(r"\b\w{5}\b", "these words have exactly five chars"))

    out = subprocess.run(["sh", "-c", "echo from sh; echo to stderr >&2; exit 3"], capture_output=True, text=True)
    print(repr(out.stdout), repr(out.stderr), out.returncode)
    p = subprocess.Popen(["cat"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    print(p.communicate(b"through cat\n")[0], p.returncode)
    killed = subprocess.Popen(["sleep", "10"])
    killed.send_signal(signal.SIGTERM)
    print("terminated child:", killed.wait())

    results = [0] * 8
    lock = threading.Lock()
    counter = [0]

    def work(i):
        results[i] = sum(range(i * 1000))
        for _ in range(1000):
            with lock:
                counter[0] += 1

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(results, counter[0])
    event = threading.Event()
    timer = threading.Timer(0.05, event.set)
    timer.start()
    print("event set:", event.wait(10))

    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(2) as pool:
        print(pool.map(square, range(10)))
    queue = ctx.Queue()
    proc = ctx.Process(target=child_report, args=(queue,))
    proc.start()
    print(queue.get(timeout=30))
    proc.join()
    print("process exit code", proc.exitcode)

    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "f.txt")
        with open(path, "w") as f:
            f.write("temporary\n")
        with open(path) as f:
            print(f.read().strip(), sorted(os.listdir(d)))
        with tempfile.NamedTemporaryFile(dir=d, suffix=".bin") as f:
            f.write(b"x" * 10000)
            f.flush()
            print(os.path.getsize(f.name), f.name.endswith(".bin"))
        db = sqlite3.connect(os.path.join(d, "test.db"))
        db.execute("create table t (k text primary key, v integer)")
        db.executemany("insert into t values (?, ?)", [("k%d" % i, i * i) for i in range(100)])
        db.commit()
        print(db.execute("select count(*), sum(v), max(k) from t").fetchone())
        db.execute("pragma journal_mode=wal")
        db.execute("update t set v = v + 1 where k like 'k1%'")
        db.commit()
        print(db.execute("select sum(v) from t").fetchone())
        db.close()
    print("temporary directory removed:", not os.path.exists(d))
    mem = sqlite3.connect(":memory:")
    print(mem.execute("select sqlite_version() is not null, 2 + 2").fetchone())

    data = b"kvmbox " * 1000
    print(hashlib.sha256(data).hexdigest(), hashlib.md5(b"").hexdigest())
    print(hashlib.blake2b(b"abc", digest_size=16).hexdigest())
    packed = zlib.compress(data, 9)
    print(len(packed), zlib.decompress(packed) == data, zlib.crc32(data), zlib.adler32(data))

    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    print(libc.strlen(b"hello ctypes"), libc.getpid() == os.getpid(), libc.abs(-5))
    buf = ctypes.create_string_buffer(32)
    libc.snprintf(buf, 32, b"%d-%s", 42, b"x")
    print(buf.value)
    libm = ctypes.CDLL(ctypes.util.find_library("m"))
    libm.sqrt.restype = ctypes.c_double
    libm.sqrt.argtypes = [ctypes.c_double]
    print(libm.sqrt(2.0))

    print(sys.version_info[:2] >= (3, 6), os.cpu_count() > 0, len(os.sched_getaffinity(0)) > 0)
    print(os.uname().sysname, os.getuid(), os.path.exists("/proc/self/maps"))
    with open("/proc/self/status") as f:
        print(sorted(k for k in (line.split(":")[0] for line in f) if k in ("Name", "Pid", "VmRSS", "Threads")))


if __name__ == "__main__":
    main()
