"""A PEP 517 build backend for the tpjit package, standard library only.

Builds a pure-Python wheel of tpjit/ (hand-written modules plus the committed
tpjit.v1 stubs), tpjit/bin/tpjit-nvcc when a build put one there, and
tpjit_deep_gemm.pth (TPJIT_DEEP_GEMM=1 installs the DeepGEMM hook at
interpreter start-up). Metadata comes from pyproject.toml's [project] table,
parsed by the few lines below (tomllib is not in Python < 3.11).
"""

import base64
import hashlib
import os
import re
import stat
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
TAG = "py3-none-any"


def _project():
    text = open(os.path.join(HERE, "pyproject.toml"), encoding="utf-8").read()
    body = text.split("[project]", 1)[1].split("\n[", 1)[0]
    out = {}
    for key in ("name", "version", "description", "requires-python"):
        m = re.search(r'^%s\s*=\s*"([^"]*)"' % key, body, re.M)
        out[key] = m.group(1) if m else ""
    m = re.search(r"^dependencies\s*=\s*\[([^\]]*)\]", body, re.M)
    out["dependencies"] = re.findall(r'"([^"]+)"', m.group(1)) if m else []
    return out


def _metadata(p):
    lines = ["Metadata-Version: 2.1", "Name: " + p["name"],
             "Version: " + p["version"], "Summary: " + p["description"],
             "Requires-Python: " + p["requires-python"]]
    lines += ["Requires-Dist: " + d for d in p["dependencies"]]
    return "\n".join(lines) + "\n"


def _files():
    out = []
    for root, dirs, names in os.walk(os.path.join(HERE, "tpjit")):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(names):
            if name.endswith(".py") or os.path.basename(root) == "bin":
                full = os.path.join(root, name)
                out.append((os.path.relpath(full, HERE), full))
    out.append(("tpjit_deep_gemm.pth", os.path.join(HERE,
                                                    "tpjit_deep_gemm.pth")))
    return out


def _record_line(arcname, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest())
    return "%s,sha256=%s,%d" % (arcname, digest.rstrip(b"=").decode(),
                                len(data))


def _write_wheel(directory, entries):
    p = _project()
    dist = "%s-%s" % (p["name"], p["version"])
    info = dist + ".dist-info"
    path = os.path.join(directory, "%s-%s.whl" % (dist, TAG))
    record = []
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as whl:
        def add(arcname, data, mode=0o644):
            zi = zipfile.ZipInfo(arcname, date_time=(2020, 1, 1, 0, 0, 0))
            zi.external_attr = (stat.S_IFREG | mode) << 16
            zi.compress_type = zipfile.ZIP_DEFLATED
            whl.writestr(zi, data)
            record.append(_record_line(arcname, data))
        for arcname, data, mode in entries:
            add(arcname, data, mode)
        add(info + "/METADATA", _metadata(p).encode())
        add(info + "/WHEEL", ("Wheel-Version: 1.0\nGenerator: _tpjit_build\n"
                              "Root-Is-Purelib: true\nTag: %s\n" % TAG
                              ).encode())
        record.append(info + "/RECORD,,")
        zi = zipfile.ZipInfo(info + "/RECORD", date_time=(2020, 1, 1, 0, 0, 0))
        zi.external_attr = (stat.S_IFREG | 0o644) << 16
        whl.writestr(zi, "\n".join(record) + "\n")
    return os.path.basename(path)


def build_wheel(wheel_directory, config_settings=None,
                metadata_directory=None):
    entries = []
    for arcname, full in _files():
        with open(full, "rb") as f:
            data = f.read()
        mode = 0o755 if os.access(full, os.X_OK) and "/bin/" in full else 0o644
        entries.append((arcname.replace(os.sep, "/"), data, mode))
    return _write_wheel(wheel_directory, entries)


def build_editable(wheel_directory, config_settings=None,
                   metadata_directory=None):
    """An editable install: a .pth naming this source folder."""
    pth = open(os.path.join(HERE, "tpjit_deep_gemm.pth"), "rb").read()
    return _write_wheel(wheel_directory, [
        ("tpjit_src.pth", (HERE + "\n").encode(), 0o644),
        ("tpjit_deep_gemm.pth", pth, 0o644)])


def build_sdist(sdist_directory, config_settings=None):
    import tarfile
    p = _project()
    dist = "%s-%s" % (p["name"], p["version"])
    path = os.path.join(sdist_directory, dist + ".tar.gz")
    with tarfile.open(path, "w:gz") as tar:
        for arcname, full in _files() + [
                ("pyproject.toml", os.path.join(HERE, "pyproject.toml")),
                ("_tpjit_build.py", os.path.join(HERE, "_tpjit_build.py"))]:
            tar.add(full, arcname="%s/%s" % (dist, arcname))
        info = tarfile.TarInfo(dist + "/PKG-INFO")
        data = _metadata(p).encode()
        info.size = len(data)
        import io
        tar.addfile(info, io.BytesIO(data))
    return os.path.basename(path)


def get_requires_for_build_wheel(config_settings=None):
    return []


def get_requires_for_build_editable(config_settings=None):
    return []


def get_requires_for_build_sdist(config_settings=None):
    return []
