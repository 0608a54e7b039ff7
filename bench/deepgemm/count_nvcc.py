#!/usr/bin/env python3
"""A counting nvcc: DeepGEMM (DG_JIT_NVCC_COMPILER) or tpjitd (--nvcc) runs
it like nvcc; it runs the real one ($REAL_NVCC, default
/usr/local/cuda/bin/nvcc) with the same arguments and working directory and
appends one JSON line per compile to $COUNT_NVCC_LOG: start, end, exit
status, the child's CPU seconds (user + sys) and the output file's name.
`--version` (and calls without an output) pass through uncounted.

With NVCC_REFUSE=1 it refuses every compile (exit 97): a run that must be
served from caches only proves it never compiled."""

import json
import os
import resource
import subprocess
import sys
import time

real = os.environ.get("REAL_NVCC", "/usr/local/cuda/bin/nvcc")
args = sys.argv[1:]
counted = any(a in args for a in ("-o", "-cubin", "-ptx", "-E"))
if not counted:
    os.execv(real, [real] + args)
if os.environ.get("NVCC_REFUSE") == "1":
    sys.stderr.write("count_nvcc: NVCC_REFUSE=1, refusing: %s\n" % args)
    sys.exit(97)
start = time.time()
rc = subprocess.call([real] + args)
end = time.time()
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
out = args[args.index("-o") + 1] if "-o" in args[:-1] else ""
log = os.environ.get("COUNT_NVCC_LOG")
if log:
    line = json.dumps({"start": start, "end": end, "rc": rc,
                       "cpu_s": ru.ru_utime + ru.ru_stime,
                       "wall_s": end - start, "pid": os.getpid(),
                       "mode": ("preprocess" if "-E" in args else "cubin"
                                if "-cubin" in args else "ptx" if "-ptx" in
                                args else "other"),
                       "out": os.path.basename(os.path.dirname(out)) + "/" +
                       os.path.basename(out)}) + "\n"
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)
sys.exit(rc)
