#!/usr/bin/env python3
"""Runs a command and prints the CPU seconds (user + system) it and its children used.

Usage: cputime.py OUTFILE CMD...  (writes `cpu_seconds wall_seconds` to OUTFILE)."""
import os, resource, subprocess, sys, time

out, cmd = sys.argv[1], sys.argv[2:]
t0 = time.monotonic()
rc = subprocess.call(cmd)
wall = time.monotonic() - t0
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
with open(out, "w") as f:
    f.write(f"{ru.ru_utime + ru.ru_stime:.3f} {wall:.3f}\n")
sys.exit(rc)
