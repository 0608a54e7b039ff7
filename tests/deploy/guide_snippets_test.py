#!/usr/bin/python3
"""Runs the ```python tested blocks of docs/integration-guide.md.

With the built Python package (TPJIT_PYTHON_DIR) and tpjitd (TPJITD), it
starts tpjitd on a temp socket and cache and runs the blocks, in order and
in one interpreter per rank, as rank 0 and rank 1 of a group of two at once.
Blocks tagged `barrier` also need `tpjit barrier` (TPJIT_CLI) and the
daemon's barrier service. Each rank reports every block it executed; the test
fails unless every rank executed every block it was meant to, so a block that
is skipped (or a rank that exits early) cannot pass unnoticed.

Skips, never passes: without TPJITD and TPJIT_PYTHON_DIR in the environment
(not configured) the blocks are only compiled and the test exits 77 (ctest's
SKIP_RETURN_CODE). When they are set but missing, that is a failure. With
TPJIT_GUIDE_EXPECT_BARRIER=1 (set by CMake when tpjitd has the barrier
service) a failing barrier probe is a failure; without it the `barrier`
blocks are compiled only and the test exits 77 after running the others.

usage: guide_snippets_test.py GUIDE.md            (the test)
       guide_snippets_test.py --rank-run GUIDE.md (one rank; internal)
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

BLOCK = re.compile(r"^```python tested([^\n]*)\n(.*?)^```$",
                   re.MULTILINE | re.DOTALL)
RANK_TIMEOUT_S = 300
SKIP = 77  # ctest SKIP_RETURN_CODE
EXECUTED = re.compile(r"^guide: executed block at line (\d+)$", re.MULTILINE)
FINISHED = re.compile(r"^guide: rank finished, (\d+) blocks executed$",
                      re.MULTILINE)


def blocks(path):
    """[(line of the block's first code line, tags, code)]."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    out = []
    for m in BLOCK.finditer(text):
        line = text.count("\n", 0, m.start(2)) + 1
        out.append((line, set(m.group(1).split()), m.group(2)))
    return out


def compile_only(path, selected):
    for line, _, code in selected:
        # Padding keeps the guide's line numbers in error messages.
        compile("\n" * (line - 1) + code, path, "exec")


def rank_run(path):
    """Executes the selected blocks in one namespace (like a notebook)."""
    skip = set(os.environ.get("TPJIT_GUIDE_SKIP_TAGS", "").split())
    namespace = {"__name__": "__guide__"}
    executed = 0
    for line, tags, code in blocks(path):
        if tags & skip:
            continue
        exec(compile("\n" * (line - 1) + code, path, "exec"), namespace)
        executed += 1
        print("guide: executed block at line %d" % line, flush=True)
    print("guide: rank finished, %d blocks executed" % executed, flush=True)
    return 0


def expected_lines(path, skip_tags):
    return [line for line, tags, _ in blocks(path) if not tags & skip_tags]


def check_executed(rank, out, expected):
    """Number of problems with what rank `rank` says it executed."""
    lines = [int(n) for n in EXECUTED.findall(out)]
    finished = FINISHED.findall(out)
    if lines != expected or finished != [str(len(expected))]:
        print("rank %d executed blocks at lines %s (finished: %s); expected "
              "lines %s" % (rank, lines, finished or "no", expected))
        return 1
    return 0


def python_package():
    d = os.environ.get("TPJIT_PYTHON_DIR", "")
    ok = d and os.path.exists(os.path.join(d, "tpjit", "__init__.py")) and \
        os.path.exists(os.path.join(d, "tpjit", "v1", "tpjit_pb2.py"))
    return d if ok else None


def wait_serving(socket, env, deadline_s=60):
    probe = ("import tpjit,sys; c=tpjit.Client(%r, connect_timeout=2); "
             "sys.exit(0 if c.serving() else 1)" % socket)
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if subprocess.run([sys.executable, "-c", probe], env=env,
                          capture_output=True).returncode == 0:
            return True
        time.sleep(0.2)
    return False


def barrier_works(cli, socket, env):
    if not cli or not os.access(cli, os.X_OK):
        return False, "tpjit CLI (TPJIT_CLI) not found"
    p = subprocess.run([cli, "barrier", "--group", "guide-probe", "--rank",
                        "0", "--world", "1", "--timeout", "5", "--socket",
                        socket], env=env, capture_output=True, text=True)
    return p.returncode == 0, p.stderr.strip()


def run_ranks(guide, env, world, expected):
    procs = []
    for rank in range(world):
        e = dict(env, RANK=str(rank), WORLD_SIZE=str(world))
        procs.append(subprocess.Popen(
            [sys.executable, __file__, "--rank-run", guide], env=e,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    failed, digests = 0, set()
    for rank, p in enumerate(procs):
        try:
            out, _ = p.communicate(timeout=RANK_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            p.kill()
            out, _ = p.communicate()
            out += "\n(killed after %d s)" % RANK_TIMEOUT_S
        print("---- rank %d (exit %s) ----\n%s" % (rank, p.returncode, out))
        failed += p.returncode != 0
        failed += check_executed(rank, out, expected)
        digests.update(re.findall(r"manifest ([0-9a-f]+),", out))
    if not failed and len(digests) != 1:
        print("ranks saw different manifests: %s" % sorted(digests))
        failed += 1
    return failed


def main():
    if sys.argv[1] == "--rank-run":
        return rank_run(sys.argv[2])
    guide = sys.argv[1]
    selected = blocks(guide)
    assert len(selected) >= 4, "the guide lost its tested blocks"
    compile_only(guide, selected)
    daemon = os.environ.get("TPJITD")
    if "TPJIT_PYTHON_DIR" not in os.environ or not daemon:
        print("SKIP: TPJIT_PYTHON_DIR or TPJITD is not set (not configured): "
              "%d blocks were compiled, not run" % len(selected))
        return SKIP
    package = python_package()
    if not package or not os.access(daemon, os.X_OK):
        print("FAIL: configured but missing: the tpjit Python package in "
              "TPJIT_PYTHON_DIR=%s or tpjitd at TPJITD=%s" %
              (os.environ["TPJIT_PYTHON_DIR"], daemon))
        return 1
    tmp = tempfile.mkdtemp(prefix="tpjit-guide-")
    socket = os.path.join(tmp, "tpjitd.sock")
    env = dict(os.environ, TPJIT_SOCKET=socket,
               PYTHONPATH=package + os.pathsep +
               os.environ.get("PYTHONPATH", ""))
    env.pop("TPJIT_BARRIER_TIMEOUT", None)
    log = open(os.path.join(tmp, "tpjitd.log"), "w")
    tpjitd = subprocess.Popen([daemon, "--socket", socket, "--cache-dir",
                               os.path.join(tmp, "cache"), "--gpus", "0"],
                              stdout=log, stderr=subprocess.STDOUT)
    try:
        if not wait_serving(socket, env):
            print(open(log.name).read())
            return 1
        cli = os.environ.get("TPJIT_CLI")
        ok, why = barrier_works(cli, socket, env)
        skip_tags = set()
        if ok:
            env["TPJIT_CLI"] = cli
        elif os.environ.get("TPJIT_GUIDE_EXPECT_BARRIER") == "1":
            print("FAIL: tpjitd has the barrier service, but the probe "
                  "barrier failed: %s" % why)
            print("---- tpjitd log ----\n" + open(log.name).read())
            return 1
        else:
            skip_tags = {"barrier"}
            env["TPJIT_GUIDE_SKIP_TAGS"] = "barrier"
        expected = expected_lines(guide, skip_tags)
        failed = run_ranks(guide, env, world=2, expected=expected)
        if failed:
            print("---- tpjitd log ----\n" + open(log.name).read())
            return 1
        print("guide: every rank executed the %d blocks at lines %s" %
              (len(expected), expected))
        if skip_tags:
            print("SKIP: blocks tagged `barrier` compiled, not run: the "
                  "daemon barrier is unavailable (%s)" % why)
            return SKIP
        return 0
    finally:
        tpjitd.terminate()
        try:
            tpjitd.wait(timeout=30)
        except subprocess.TimeoutExpired:
            tpjitd.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
