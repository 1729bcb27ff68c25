#!/usr/bin/env python3
"""proctree.py - looks at a server's whole process tree (the process group it leads, plus every
descendant, so worker processes such as n8n's task runner count too).

  proctree.py peak PID OUT [INTERVAL]  sample the summed resident size every INTERVAL s [0.1]
                                       until SIGTERM (or the tree is gone); write the peak KiB
                                       to OUT after every new peak
  proctree.py settle PID [MAX_S]       return once the tree uses < 5 % of one core over 0.5 s
                                       (a server still working off queued requests after a wrk
                                       run is not measured in the next one); at most MAX_S [120]
  proctree.py pids PID                 print the tree's process ids
"""
import os, signal, sys, time

PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024
HZ = os.sysconf("SC_CLK_TCK")


def stat_all():
    """pid -> (ppid, pgrp, utime + stime ticks)."""
    out = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                s = f.read()
        except OSError:
            continue
        rest = s[s.rindex(")") + 2:].split()
        # fields after the name: state ppid pgrp session tty tpgid flags minflt cminflt majflt
        # cmajflt utime stime ...
        out[int(d)] = (int(rest[1]), int(rest[2]), int(rest[11]) + int(rest[12]))
    return out


def tree(root, st=None):
    st = st if st is not None else stat_all()
    kids = {}
    for p, (pp, _, _) in st.items():
        kids.setdefault(pp, []).append(p)
    found = {p for p, (_, g, _) in st.items() if g == root}
    if root in st:
        found.add(root)
    todo = list(found)
    while todo:
        for c in kids.get(todo.pop(), []):
            if c not in found:
                found.add(c)
                todo.append(c)
    return found, st


def rss_kib(pids):
    total = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/statm") as f:
                total += int(f.read().split()[1]) * PAGE_KIB
        except (OSError, IndexError, ValueError):
            pass
    return total


def peak(root, out, interval):
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    best = 0
    while not stop:
        pids, _ = tree(root)
        if not pids:
            break
        kib = rss_kib(pids)
        if kib > best:
            best = kib
            with open(out + ".tmp", "w") as f:
                f.write(f"{best}\n")
            os.replace(out + ".tmp", out)
        time.sleep(interval)


def cpu_ticks(root):
    pids, st = tree(root)
    return sum(st[p][2] for p in pids if p in st)


def settle(root, max_s):
    t_end = time.time() + max_s
    while time.time() < t_end:
        a = cpu_ticks(root)
        time.sleep(0.5)
        if (cpu_ticks(root) - a) / HZ < 0.025:
            return 0
    print(f"proctree.py: process tree of {root} still busy after {max_s} s", file=sys.stderr)
    return 0


def main():
    cmd, root = sys.argv[1], int(sys.argv[2])
    if cmd == "peak":
        peak(root, sys.argv[3], float(sys.argv[4]) if len(sys.argv) > 4 else 0.1)
    elif cmd == "settle":
        return settle(root, float(sys.argv[3]) if len(sys.argv) > 3 else 120)
    elif cmd == "pids":
        print(" ".join(str(p) for p in sorted(tree(root)[0])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
