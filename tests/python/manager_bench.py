"""CPython's own multiprocessing Manager doing what benches/manager_ops measures.

usage: manager_bench.py value|dict|queue ITERS  -> prints nanoseconds per operation
(value: one Value get; dict: d[k] = v then d[k]; queue: put then get).
"""
import sys
import time
from multiprocessing import Manager


def main():
    op, iters = sys.argv[1], int(sys.argv[2])
    with Manager() as m:
        if op == "value":
            v = m.Value("i", 0)

            def f():
                return v.value
        elif op == "dict":
            d = m.dict()

            def f():
                d["k"] = 1
                return d["k"]
        else:
            q = m.Queue()

            def f():
                q.put(1)
                return q.get()
        for _ in range(min(iters, 500)):
            f()
        t = time.perf_counter_ns()
        for _ in range(iters):
            f()
        print((time.perf_counter_ns() - t) / iters)


main()
