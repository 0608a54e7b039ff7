"""The tpjitd client: warm-ups with progress, fetches, stats, health, lookup.

A Client owns one gRPC channel (a Unix socket path becomes "unix:PATH").
Every call carries a deadline; with no daemon listening a call fails fast
with TpjitError(code=UNAVAILABLE) naming the socket. Thread-safe like the
grpc channel it wraps.
"""

import bisect
import hashlib
import os
import re
import time

import grpc
from google.protobuf import json_format

from tpjit.v1 import (barrier_pb2, barrier_pb2_grpc, recipe_pb2,
                      recipe_pb2_grpc, spec_pb2, tpjit_pb2, tpjit_pb2_grpc)

SERVICE_NAME = "tpjit.v1.Tpjit"
_HEALTH_CHECK = "/grpc.health.v1.Health/Check"
_SERVING = 1
_HEALTH_NAMES = {0: "UNKNOWN", 1: "SERVING", 2: "NOT_SERVING",
                 3: "SERVICE_UNKNOWN"}


class TpjitError(Exception):
    """A failed call: `code` is a grpc.StatusCode, str() the message."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code


class BarrierTimeout(TpjitError):
    """The barrier's deadline passed before every rank arrived. str() is the
    daemon's account (each late rank with what it last did, as `tpjit
    barrier` prints it); `late_ranks` the late ranks' numbers (None when the
    daemon itself did not answer in time), `epoch` the epoch, `waited` the
    seconds this rank spent."""

    def __init__(self, message, late_ranks, epoch, waited):
        super().__init__(grpc.StatusCode.DEADLINE_EXCEEDED, message)
        self.late_ranks = late_ranks
        self.epoch = epoch
        self.waited = waited


# The rpc deadline is the barrier's timeout plus this margin, so the daemon's
# answer (naming the late ranks) arrives before the channel gives up.
BARRIER_RPC_MARGIN = 1.0
_LATE_RANK = re.compile(r"rank (\d+) \(")


def default_socket():
    """$TPJIT_SOCKET, else $XDG_RUNTIME_DIR/tpjit/tpjitd.sock, else
    /run/tpjit/tpjitd.sock (tpjitd's own default)."""
    if os.environ.get("TPJIT_SOCKET"):
        return os.environ["TPJIT_SOCKET"]
    if os.environ.get("XDG_RUNTIME_DIR"):
        return os.path.join(os.environ["XDG_RUNTIME_DIR"], "tpjit",
                            "tpjitd.sock")
    return "/run/tpjit/tpjitd.sock"


def _target(socket):
    socket = socket or default_socket()
    for scheme in ("unix:", "unix-abstract:", "dns:", "ipv4:", "ipv6:"):
        if socket.startswith(scheme):
            return socket
    if "/" not in socket and ":" in socket:
        return socket  # host:port
    return "unix:" + socket


def load_spec(spec):
    """A WarmupSpec from a message, a dict, a JSON string or a file path."""
    if isinstance(spec, spec_pb2.WarmupSpec):
        return spec
    if isinstance(spec, dict):
        return json_format.ParseDict(spec, spec_pb2.WarmupSpec())
    if isinstance(spec, (str, os.PathLike)):
        text = str(spec)
        if not text.lstrip().startswith("{"):
            with open(text, encoding="utf-8") as f:
                text = f.read()
        return json_format.Parse(text, spec_pb2.WarmupSpec())
    raise TypeError("spec must be a WarmupSpec, dict, JSON string or path")


def lookup(manifest, shape, m):
    """Index into manifest.kernels of the kernel serving M=`m` of shape
    `shape`. Any m in 1..m_max, rounded up to the shape's m_alignment
    first (128 for contig-grouped families). The same rule as the C++
    LookupKernel (src/plan/manifest.cc), tested against it on the same
    manifests. Raises IndexError (bad shape), ValueError (m outside
    1..m_max) or KeyError (m not covered by a sampled manifest)."""
    if not 0 <= shape < len(manifest.shapes):
        raise IndexError("shape index %d is outside 0..%d" %
                         (shape, len(manifest.shapes) - 1))
    if not 1 <= m <= manifest.m_max:
        raise ValueError("M=%d is outside 1..%d" % (m, manifest.m_max))
    s = manifest.shapes[shape]
    align = max(1, s.m_alignment)
    m = (m + align - 1) // align * align
    los = [r.lo for r in s.ranges]
    i = bisect.bisect_right(los, m) - 1
    if i < 0 or s.ranges[i].hi < m:
        raise KeyError("M=%d of shape %d is not covered by manifest %s" %
                       (m, shape, manifest.digest))
    return s.ranges[i].kernel


class WarmupStream:
    """Iterates a warm-up's progress (tpjit.v1.WarmupProgress messages).
    When the iteration ends, `manifest` and `summary` hold the result;
    result() drains the stream and returns the manifest. Errors raise
    TpjitError from the iteration."""

    def __init__(self, call, target):
        self._call = call
        self._target = target
        self.manifest = None
        self.summary = None

    def __iter__(self):
        try:
            for event in self._call:
                if event.HasField("progress"):
                    yield event.progress
                elif event.HasField("manifest"):
                    self.manifest = event.manifest
                    self.summary = event.summary
        except grpc.RpcError as e:
            raise _error(e, self._target, "warmup") from None
        if self.manifest is None:
            raise TpjitError(grpc.StatusCode.INTERNAL,
                             "warmup: tpjitd at %s ended the stream without "
                             "a manifest" % self._target)

    def result(self):
        for _ in self:
            pass
        return self.manifest

    def cancel(self):
        self._call.cancel()


def _error(e, target, what):
    code = e.code()
    message = "%s: %s" % (what, e.details())
    if code in (grpc.StatusCode.UNAVAILABLE,
                grpc.StatusCode.DEADLINE_EXCEEDED):
        message = ("%s: tpjitd at %s is not reachable or did not answer in "
                   "time (is it running? TPJIT_SOCKET): %s" %
                   (what, target, e.details()))
    return TpjitError(code, message)


class Client:
    """A client of tpjitd at `socket` (path or gRPC target; None: default).
    `connect_timeout` > 0 waits that long for the daemon (TpjitError
    UNAVAILABLE after it); `call_timeout` bounds stats, status, health and
    each fetch."""

    def __init__(self, socket=None, connect_timeout=0.0, call_timeout=30.0):
        self.target = _target(socket)
        self._channel = grpc.insecure_channel(self.target, options=[
            ("grpc.initial_reconnect_backoff_ms", 100),
            ("grpc.min_reconnect_backoff_ms", 100),
            ("grpc.max_reconnect_backoff_ms", 1000),
        ])
        self._stub = tpjit_pb2_grpc.TpjitStub(self._channel)
        self._barrier_stub = barrier_pb2_grpc.BarrierServiceStub(
            self._channel)
        self._recipe_stub = recipe_pb2_grpc.RecipeServiceStub(self._channel)
        self._health = self._channel.unary_unary(
            _HEALTH_CHECK, request_serializer=_health_request,
            response_deserializer=_health_response)
        self._call_timeout = call_timeout
        if connect_timeout > 0:
            try:
                grpc.channel_ready_future(self._channel).result(
                    timeout=connect_timeout)
            except grpc.FutureTimeoutError:
                self.close()
                raise TpjitError(
                    grpc.StatusCode.UNAVAILABLE,
                    "tpjitd at %s is not reachable within %.1f s (is it "
                    "running? TPJIT_SOCKET)" % (self.target, connect_timeout))

    def close(self):
        self._channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def warmup_progress(self, spec, rank, world, group="", timeout=3600.0):
        """A WarmupStream of the warm-up of `spec` as `rank` of `world`."""
        request = tpjit_pb2.WarmupRequest(spec=load_spec(spec), rank=rank,
                                          world=world, group=group)
        return WarmupStream(self._stub.Warmup(request, timeout=timeout),
                            self.target)

    def warmup(self, spec, rank, world, group="", timeout=3600.0,
               on_progress=None):
        """The manifest of the warm-up; `on_progress(progress)` per event."""
        stream = self.warmup_progress(spec, rank, world, group, timeout)
        for progress in stream:
            if on_progress is not None:
                on_progress(progress)
        return stream.manifest

    def fetch(self, key, sha256=None):
        """The cubin bytes of `key`, checked against `sha256` when given."""
        parts, total = [], None
        try:
            for chunk in self._stub.Fetch(tpjit_pb2.FetchRequest(key=key),
                                          timeout=self._call_timeout):
                got = sum(len(p) for p in parts)
                if chunk.offset != got or total not in (None,
                                                        chunk.total_bytes):
                    raise TpjitError(grpc.StatusCode.DATA_LOSS,
                                     "fetch %s: chunk at %d after %d bytes" %
                                     (key, chunk.offset, got))
                total = chunk.total_bytes
                parts.append(chunk.data)
        except grpc.RpcError as e:
            raise _error(e, self.target, "fetch " + key) from None
        data = b"".join(parts)
        if total is None or len(data) != total:
            raise TpjitError(grpc.StatusCode.DATA_LOSS,
                             "fetch %s: got %d bytes of %s" %
                             (key, len(data), total))
        if sha256 and hashlib.sha256(data).hexdigest() != sha256:
            raise TpjitError(grpc.StatusCode.DATA_LOSS,
                             "fetch %s: sha256 mismatch" % key)
        return data

    def fetch_kernel(self, kernel):
        """The cubin of a tpjit.v1.ManifestKernel, checked by its sha256."""
        return self.fetch(kernel.key, kernel.cubin_sha256)

    def stats(self):
        return self._unary(self._stub.Stats, tpjit_pb2.StatsRequest(),
                           "stats")

    def status(self):
        return self._unary(self._stub.Status, tpjit_pb2.StatusRequest(),
                           "status")

    def compile(self, request, timeout=None):
        return self._unary(self._stub.Compile, request, "compile", timeout)

    def await_keys(self, keys, timeout=None, any=False):
        """Waits until the compiles in flight of `keys` (CompileResult.key
        of queued no_wait compiles) have ended, or with `any` until one of
        them has; {key: "PUBLISHED" | "FAILED" | "UNKNOWN" | "IN_FLIGHT"}
        (UNKNOWN: neither in flight nor cached; IN_FLIGHT: still compiling,
        with `any`). At most 4096 keys; TpjitError DEADLINE_EXCEEDED past
        `timeout`."""
        response = self._unary(
            self._stub.AwaitKeys,
            tpjit_pb2.AwaitKeysRequest(keys=list(keys), any=any),
            "await_keys", timeout)
        name = tpjit_pb2.AwaitKeysResponse.State.Name
        return {k.key: name(k.state) for k in response.keys}

    def health(self):
        """{"": status, "tpjit.v1.Tpjit": status} by name (e.g.
        "SERVING"); an unknown service reads "SERVICE_UNKNOWN"."""
        out = {}
        for service in ("", SERVICE_NAME):
            try:
                out[service] = _HEALTH_NAMES.get(
                    self._health(service, timeout=self._call_timeout),
                    "UNKNOWN")
            except grpc.RpcError as e:
                if e.code() not in (grpc.StatusCode.NOT_FOUND,
                                    grpc.StatusCode.UNIMPLEMENTED):
                    raise _error(e, self.target, "health") from None
                out[service] = "SERVICE_UNKNOWN"
        return out

    def serving(self):
        return all(v == "SERVING" for v in self.health().values())

    def prefetch_recipe(self, group, include_dirs=(), wait=False,
                        timeout=None):
        """Has tpjitd compile the kernels of `group`'s recipe that its cache
        lacks (`tpjit recipe prefetch`); joins a prefetch in flight. Returns
        the tpjit.v1.PrefetchRecipeResponse (with `wait`: once every compile
        ended). `include_dirs` replace, by index, recorded include
        directories that do not exist on this node. TpjitError NOT_FOUND for
        a group without a recipe."""
        request = recipe_pb2.PrefetchRecipeRequest(
            group=group, include_dirs=list(include_dirs), wait=wait)
        try:
            return self._recipe_stub.Prefetch(
                request, timeout=timeout or self._call_timeout)
        except grpc.RpcError as e:
            raise _error(e, self.target, "prefetch " + group) from None

    def barrier(self, group, rank, world, timeout=600.0, epoch=None):
        """Waits until all `world` ranks of `group` arrived (the daemon
        transport of `tpjit barrier`); returns the tpjit.v1.BarrierReply
        (epoch, waited_ms). Unset `epoch`: the daemon numbers this rank's
        calls 0, 1, ... Raises BarrierTimeout naming the late ranks after
        `timeout` seconds (within a small margin), TpjitError otherwise."""
        if not 0 <= rank < world:
            raise ValueError("rank %d is out of range for world %d (want "
                             "0..%d)" % (rank, world, world - 1))
        request = barrier_pb2.BarrierRequest(
            group=group, rank=rank, world=world,
            timeout_ms=int(round(timeout * 1000)))
        if epoch is not None:
            request.epoch = epoch
        start = time.monotonic()
        try:
            return self._barrier_stub.Barrier(
                request, timeout=timeout + BARRIER_RPC_MARGIN)
        except grpc.RpcError as e:
            waited = time.monotonic() - start
            if e.code() != grpc.StatusCode.DEADLINE_EXCEEDED:
                raise _error(e, self.target, "barrier") from None
            raise _barrier_timeout(e.details() or "", group, self.target,
                                   timeout, waited) from None

    def _unary(self, method, request, what, timeout=None):
        try:
            return method(request, timeout=timeout or self._call_timeout)
        except grpc.RpcError as e:
            raise _error(e, self.target, what) from None


def _barrier_timeout(details, group, target, timeout, waited):
    """BarrierTimeout from a DEADLINE_EXCEEDED: the daemon's message names
    the late ranks ("barrier group 'G' epoch E: ...; late: rank 1 (...)");
    without it the daemon did not answer within timeout + margin."""
    if "barrier group" in details:
        late_part = details.split("; late: ", 1)
        late = ([int(r) for r in _LATE_RANK.findall(late_part[1])]
                if len(late_part) == 2 else [])
        m = re.search(r"epoch (\d+)", details)
        return BarrierTimeout(
            "barrier: timed out after %.3fs: %s" % (waited, details), late,
            int(m.group(1)) if m else None, waited)
    return BarrierTimeout(
        "barrier: timed out after %.3fs: barrier group '%s': %s did not "
        "answer within the timeout + margin (%.1fs); late ranks unknown" %
        (waited, group, target, timeout + BARRIER_RPC_MARGIN), None, None,
        waited)


# grpc.health.v1 messages by hand (python3-grpcio ships no health stubs):
# HealthCheckRequest{string service = 1}, HealthCheckResponse{enum status=1}.
def _health_request(service):
    data = service.encode()
    if len(data) > 127:
        raise ValueError("service name too long")
    return (b"\x0a" + bytes([len(data)]) + data) if data else b""


def _health_response(data):
    return data[1] if len(data) >= 2 and data[0] == 0x08 else 0


def warmup(spec, rank, world, socket=None, group="", timeout=3600.0,
           on_progress=None):
    """Warms up `spec` (message, dict, JSON or path) as `rank` of `world`
    ranks of `group` on the daemon at `socket`; returns the manifest
    (tpjit.v1.Manifest)."""
    with Client(socket) as client:
        return client.warmup(spec, rank, world, group, timeout, on_progress)


def warmup_progress(spec, rank, world, socket=None, group="",
                    timeout=3600.0):
    """A WarmupStream: iterate for progress; then .manifest, .summary."""
    return Client(socket).warmup_progress(spec, rank, world, group, timeout)


def barrier(group, rank, world, timeout=600.0, socket=None, epoch=None):
    """Meets the other ranks of `group` at the daemon at `socket`; see
    Client.barrier. Raises BarrierTimeout naming the late ranks."""
    with Client(socket) as client:
        return client.barrier(group, rank, world, timeout, epoch)
