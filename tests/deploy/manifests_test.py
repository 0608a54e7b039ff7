#!/usr/bin/python3
"""Checks deploy/ against the daemon it deploys: the systemd unit, the
Kubernetes sidecar manifest and the Containerfile parse, pass only flags that
`tpjitd --help` lists, and agree on ports and paths (probe port = health
port, the server's TPJIT_SOCKET = the daemon's --socket, mounts match).

usage: manifests_test.py --tpjitd PATH --deploy DIR
"""

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import unittest

import yaml

ARGS = None


def daemon_flags():
    out = subprocess.run([ARGS.tpjitd, "--help"], capture_output=True,
                         text=True, timeout=30, check=True).stdout
    flags = set(re.findall(r"--([a-z][a-z0-9-]*)", out))
    assert {"socket", "cache-dir", "health-port", "http-port"} <= flags, out
    return flags


def parse_flags(argv):
    """{flag: value} of `--name=value` and `--name value` words."""
    out, i = {}, 0
    while i < len(argv):
        word = argv[i]
        if word.startswith("--"):
            name, eq, value = word[2:].partition("=")
            if not eq and i + 1 < len(argv) and \
                    not argv[i + 1].startswith("--"):
                value = argv[i + 1]
                i += 1
            out[name] = value
        i += 1
    return out


def read(name):
    with open(os.path.join(ARGS.deploy, name), encoding="utf-8") as f:
        return f.read()


def parse_unit(text):
    """{section: {key: [values]}} of a systemd unit (continuations joined,
    repeated keys kept in order)."""
    text = re.sub(r"\\\n\s*", " ", text)
    units, section = {}, None
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        m = re.fullmatch(r"\[(\w+)\]", line)
        if m:
            section = units.setdefault(m.group(1), {})
            continue
        key, eq, value = line.partition("=")
        if not eq or section is None:
            raise ValueError("not a unit line: %r" % line)
        section.setdefault(key.strip(), []).append(value.strip())
    return units


def parse_containerfile(text):
    """[(INSTRUCTION, arguments)] with continuations joined."""
    text = re.sub(r"\\\n", " ", text)
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def check_known(test, flags, where):
    unknown = sorted(set(flags) - test.known)
    test.assertFalse(unknown, "%s passes flags tpjitd does not have: %s"
                     % (where, unknown))


class SystemdUnitTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.known = daemon_flags()
        cls.unit = parse_unit(read("tpjitd.service"))
        cls.service = cls.unit["Service"]
        argv = shlex.split(cls.service["ExecStart"][0])
        cls.exe, cls.flags = argv[0], parse_flags(argv[1:])

    def test_sections_and_exec(self):
        self.assertIn("Unit", self.unit)
        self.assertIn("Install", self.unit)
        self.assertTrue(self.exe.endswith("/tpjitd"), self.exe)
        check_known(self, self.flags, "ExecStart")

    def test_directories_match_flags(self):
        runtime = self.service["RuntimeDirectory"][0]
        cache = self.service["CacheDirectory"][0]
        self.assertEqual(os.path.dirname(self.flags["socket"]),
                         "/run/" + runtime)
        self.assertEqual(self.flags["cache-dir"], "/var/cache/" + cache)
        rw = " ".join(self.service["ReadWritePaths"]).split()
        self.assertIn(self.flags["cache-dir"], rw)

    def test_ports(self):
        self.assertGreater(int(self.flags["health-port"]), 0)
        self.assertGreater(int(self.flags["http-port"]), 0)
        self.assertNotEqual(self.flags["health-port"], self.flags["http-port"])

    def test_worker_beside_daemon(self):
        worker = self.flags.get("worker-binary")
        if worker:
            self.assertEqual(os.path.dirname(worker),
                             os.path.dirname(self.exe))

    def test_hardening(self):
        s = self.service
        for key, value in [("NoNewPrivileges", "yes"),
                           ("ProtectSystem", "strict"),
                           ("ProtectHome", "yes"), ("PrivateTmp", "yes")]:
            self.assertEqual(s.get(key), [value], key)
        self.assertEqual(set(s["RestrictAddressFamilies"][0].split()),
                         {"AF_UNIX", "AF_INET", "AF_INET6"})
        devices = " ".join(s["DeviceAllow"])
        self.assertIn("nvidia", devices)
        self.assertEqual(s.get("DevicePolicy"), ["closed"])
        self.assertNotIn("PrivateDevices", s)  # would hide /dev/nvidia*


class KubernetesTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.known = daemon_flags()
        path = os.path.join("kubernetes", "tpjit-sidecar.yaml")
        docs = [d for d in yaml.safe_load_all(read(path)) if d]
        cls.pod = [d for d in docs if d["kind"] == "Deployment"][0][
            "spec"]["template"]
        spec = cls.pod["spec"]
        sidecars = [c for c in spec["initContainers"]
                    if c.get("restartPolicy") == "Always"]
        assert len(sidecars) == 1, sidecars
        cls.sidecar = sidecars[0]
        argv = cls.sidecar.get("command", []) + cls.sidecar.get("args", [])
        assert argv[0].endswith("/tpjitd"), argv
        cls.flags = parse_flags(argv[1:])
        cls.server = spec["containers"][0]
        cls.volumes = {v["name"]: v for v in spec["volumes"]}

    @staticmethod
    def mount_of(container, path):
        """The volume mounted at the folder holding `path` (or at it)."""
        best = None
        for m in container.get("volumeMounts", []):
            mp = m["mountPath"].rstrip("/")
            if path == mp or path.startswith(mp + "/"):
                if best is None or len(mp) > len(best["mountPath"]):
                    best = m
        return best

    def test_flags_exist(self):
        check_known(self, self.flags, "the tpjitd sidecar")

    def test_probes_use_health_port(self):
        port = int(self.flags["health-port"])
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            self.assertEqual(self.sidecar[probe]["grpc"]["port"], port, probe)
        ports = {p["name"]: p["containerPort"] for p in self.sidecar["ports"]}
        self.assertEqual(ports["health"], port)
        self.assertEqual(ports["metrics"], int(self.flags["http-port"]))
        self.assertNotEqual(self.flags.get("http-address", "127.0.0.1"),
                            "127.0.0.1", "metrics unreachable from outside")
        notes = self.pod["metadata"].get("annotations", {})
        if "prometheus.io/port" in notes:
            self.assertEqual(int(notes["prometheus.io/port"]),
                             int(self.flags["http-port"]))

    def test_socket_shared(self):
        socket = self.flags["socket"]
        env = {e["name"]: e.get("value") for e in self.server.get("env", [])}
        self.assertEqual(env.get("TPJIT_SOCKET"), socket)
        a, b = self.mount_of(self.sidecar, socket), \
            self.mount_of(self.server, socket)
        self.assertIsNotNone(a, "sidecar does not mount the socket folder")
        self.assertIsNotNone(b, "server does not mount the socket folder")
        self.assertEqual((a["name"], a["mountPath"]),
                         (b["name"], b["mountPath"]))
        self.assertIn("emptyDir", self.volumes[a["name"]])

    def test_cache_shared(self):
        cache = self.flags["cache-dir"]
        a, b = self.mount_of(self.sidecar, cache), \
            self.mount_of(self.server, cache)
        self.assertIsNotNone(a, "sidecar does not mount --cache-dir")
        self.assertIsNotNone(b, "server does not mount the cache")
        self.assertEqual(a["name"], b["name"])
        self.assertEqual(a["mountPath"], b["mountPath"])
        self.assertFalse(a.get("readOnly", False))
        self.assertIn(a["name"], self.volumes)


class ContainerfileTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.known = daemon_flags()
        cls.lines = parse_containerfile(read("Containerfile"))

    def args_of(self, word):
        return [rest for w, rest in self.lines if w == word]

    def test_multi_stage(self):
        froms = self.args_of("FROM")
        self.assertGreaterEqual(len(froms), 2)
        self.assertRegex(froms[0], r"debian:12.* AS build")
        self.assertTrue(any(r.startswith("--from=build")
                            for r in self.args_of("COPY")))

    def test_entrypoint(self):
        argv = json.loads(self.args_of("ENTRYPOINT")[-1])
        self.assertTrue(argv[0].endswith("/tpjitd"), argv)
        flags = parse_flags(argv[1:])
        check_known(self, flags, "ENTRYPOINT")
        volumes = json.loads(self.args_of("VOLUME")[-1])
        self.assertIn(os.path.dirname(flags["socket"]), volumes)
        self.assertIn(flags["cache-dir"], volumes)
        exposed = " ".join(self.args_of("EXPOSE")).split()
        self.assertIn(flags["health-port"], exposed)
        self.assertIn(flags["http-port"], exposed)
        build = " ".join(self.args_of("RUN"))
        for binary in ("tpjitd", "tpjit-worker"):
            self.assertIn("/build/daemon/" + binary, build)


def main():
    global ARGS
    parser = argparse.ArgumentParser()
    parser.add_argument("--tpjitd", required=True)
    parser.add_argument("--deploy", required=True)
    ARGS, rest = parser.parse_known_args()
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)


if __name__ == "__main__":
    main()
