"""gRPC unary load for benches/grpc/run.sh: keeps CONCURRENCY calls in flight on one grpcio channel for DURATION seconds and prints calls/s as JSON.

    load.py TARGET DURATION CONCURRENCY [TOKEN] [PID]

With TOKEN the client sends `authorization: Bearer TOKEN` itself (the direct
baseline); through sidekey it sends none. With PID, the CPU time (utime +
stime) that process used during the run is reported per call.
"""
import json
import os
import sys
import threading
import time

import grpc


def cpu_ticks(pid):
    if not pid:
        return 0
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def main():
    target, duration, concurrency = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
    token = sys.argv[4] if len(sys.argv) > 4 and sys.argv[4] != "-" else None
    pid = sys.argv[5] if len(sys.argv) > 5 else None
    meta = [("authorization", f"Bearer {token}")] if token else None
    ch = grpc.insecure_channel(target)
    call = ch.unary_unary("/t.T/Unary")
    call(b"warm-up", metadata=meta, timeout=10)
    done = 0
    failed = 0
    lock = threading.Lock()
    finished = threading.Event()
    stop_at = time.monotonic() + duration

    def issue():
        f = call.future(b"x" * 64, metadata=meta, timeout=10)
        f.add_done_callback(on_done)

    def on_done(f):
        nonlocal done, failed
        with lock:
            if f.exception() is None:
                done += 1
            else:
                failed += 1
        if time.monotonic() < stop_at:
            issue()
        else:
            finished.set()

    t0, c0 = time.monotonic(), cpu_ticks(pid)
    for _ in range(concurrency):
        issue()
    finished.wait(duration + 15)
    elapsed = time.monotonic() - t0
    time.sleep(0.5)  # let the last calls land
    ticks = cpu_ticks(pid) - c0
    hz = os.sysconf("SC_CLK_TCK")
    out = {"calls_per_s": round(done / elapsed), "calls": done, "failed": failed}
    if pid and done:
        out["proxy_cpu_us_per_call"] = round(ticks / hz / done * 1e6, 1)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
