"""Run a student's code in a separate, limited process and talk to it with plain data only.

The grading process keeps the checks, the references and the verdicts; the **sandbox** process holds the student's
namespace.  The grading process sends requests (execute a cell, call a function, read an attribute) and the
sandbox answers with plain data only: JSON in which numbers, strings, lists and dicts are native and numpy arrays and
torch tensors are raw bytes with a numeric dtype and a shape (never pickle).  An object that is not plain data
(e.g. a student's ``torch.nn.Module``) stays in the sandbox and the grading process gets a :class:`RemoteObject`
handle whose calls and attributes are again requests.  Requests go the other way as pickles (cloudpickle, so that
an instructor-built model of ``solutions/<a>/grading.py`` can be sent by value): the sandbox trusts the grader,
never the reverse.

Isolation (``bubblewrap`` where installed, ``apt-get install bubblewrap``): new user, PID, network, IPC and UTS
namespaces (no network), a read-only view of ``/usr``, the Python installation, the virtual environment and the
``autograder`` package only (not ``solutions/``, not ``course_work/``, not other students' files), a private tmpfs
as ``/tmp`` and home (the working directory), ``--die-with-parent``; and, for the whole process tree, limits on
address space (RLIMIT_AS), CPU time (RLIMIT_CPU), file size (RLIMIT_FSIZE) and, per request, a wall-clock limit
after which the whole process group is killed.  Without bubblewrap (:func:`bwrap_available` false) the fallback is a
plain subprocess with the same resource limits, a cleared environment and a temporary working directory: it does
NOT hide the course's files and does not cut the network -- use it only for self-checks, never for a class.

The RNG states of torch and of numpy's legacy global generator travel with each call in both directions, so a
check that seeds ``torch.manual_seed`` before calling student code sees exactly what it would see in-process.
"""
from __future__ import annotations

import base64
import builtins
import contextlib
import io
import json
import os
import resource
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Limits", "Sandbox", "SandboxError", "RemoteObject", "RemoteError", "bwrap_available", "encode",
           "decode"]

MAX_MESSAGE = 64 * 2 ** 20  # bytes of one answer from the sandbox
MAX_OUTPUT = 20_000  # characters of printed output kept per request
START_SECONDS = 120  # for a sandbox process to start and import numpy, torch and matplotlib
PACKAGE = Path(__file__).resolve().parent


@dataclass
class Limits:
    memory_mb: int = 6144  # RLIMIT_AS of the sandbox (torch reserves ~2 GB of address space at import)
    cpu_seconds: int = 900  # RLIMIT_CPU of the whole sandbox process
    wall_seconds: float = 120  # per request (one cell or one call)
    file_mb: int = 64  # RLIMIT_FSIZE
    tmpfs_mb: int = 256


class SandboxError(RuntimeError):
    """The sandbox process died, broke the protocol or ran past a limit; the message says which."""


class RemoteError(Exception):
    """Base of the exceptions re-raised in the grader for an exception raised by student code."""


_REMOTE_EXC: dict[str, type] = {}


def remote_exception(name: str, message: str) -> Exception:
    """An exception to raise in the grader for a remote one: the builtin class for ordinary builtin exceptions
    (so ``NotImplementedError`` is still recognised), otherwise a class of the same name deriving from
    :class:`RemoteError` (also for ``SystemExit`` and ``KeyboardInterrupt``, which must not stop the grader)."""
    cls = getattr(builtins, name, None)
    if not (isinstance(cls, type) and issubclass(cls, Exception)) or cls in (StopIteration, StopAsyncIteration):
        cls = _REMOTE_EXC.setdefault(name, type(name if name.isidentifier() else "RemoteError", (RemoteError,), {}))
    try:
        return cls(message) if message else cls()
    except Exception:  # noqa: BLE001 - e.g. UnicodeError's signature
        return RemoteError(f"{name}: {message}")


# ==================================================================================================================
# Plain-data codec (used on both sides; decoding never unpickles)
# ==================================================================================================================
_NUMERIC_KINDS = "biufc"


def _encode_array(arr) -> dict:
    import numpy as np
    arr = np.asarray(arr)  # not ascontiguousarray, which turns a 0-d array into shape (1,); tobytes is C order
    if arr.dtype.kind not in _NUMERIC_KINDS:
        raise TypeError(f"array of dtype {arr.dtype}")
    return {"dtype": arr.dtype.str, "shape": list(arr.shape), "b64": base64.b64encode(arr.tobytes()).decode()}


def _decode_array(d: dict):
    import numpy as np
    dtype = np.dtype(d["dtype"])
    if dtype.kind not in _NUMERIC_KINDS or dtype.hasobject:
        raise SandboxError(f"refused array dtype {d['dtype']!r}")
    shape = tuple(int(s) for s in d["shape"])
    raw = base64.b64decode(d["b64"])
    return np.frombuffer(raw, dtype=dtype).reshape(shape).copy()


def encode(value: Any, handles: dict | None = None, depth: int = 0) -> Any:
    """Plain JSON-able data for ``value``; objects that are not plain data become handles in ``handles``."""
    if depth > 20:
        raise TypeError("nested too deeply")
    if value is None or type(value) in (bool, int, float, str):
        return value
    mod = type(value).__module__
    if mod == "numpy":
        import numpy as np
        if type(value) is np.ndarray:
            return {"__nd": _encode_array(value)}
        if isinstance(value, np.generic) and value.dtype.kind in _NUMERIC_KINDS:
            return {"__ns": _encode_array(np.asarray(value))}
    if mod.startswith("torch"):
        import torch
        if type(value) in (torch.Tensor, torch.nn.Parameter):
            t = value.detach().cpu()
            dtype = str(t.dtype).replace("torch.", "")
            if t.dtype == torch.bfloat16 or t.dtype == torch.float16:
                t = t.float()
            return {"__t": _encode_array(t.resolve_conj().resolve_neg().numpy()), "dtype": dtype}
        if isinstance(value, torch.dtype):
            return {"__tdtype": str(value).replace("torch.", "")}
        spec = _module_spec(value)
        if spec is not None:
            return {"__mod": spec}
    if type(value) is list:
        return {"__l": [encode(v, handles, depth + 1) for v in value]}
    if type(value) is tuple:
        return {"__tu": [encode(v, handles, depth + 1) for v in value]}
    if type(value) is dict:
        return {"__d": [[encode(k, handles, depth + 1), encode(v, handles, depth + 1)] for k, v in value.items()]}
    if handles is None:
        raise TypeError(f"{type(value).__name__} is not plain data")
    if type(value).__name__ == "generator":
        items = []
        for i, v in enumerate(value):
            if i >= 100_000:
                break
            items.append(encode(v, handles, depth + 1))
        return {"__it": items}
    key = len(handles) + 1
    while key in handles:
        key += 1
    handles[key] = value
    return {"__h": key, "type": type(value).__name__, "callable": callable(value)}


def decode(data: Any, sandbox: "Sandbox | None" = None) -> Any:
    """The inverse of :func:`encode` in the grading process: numpy arrays, torch tensors, lists, tuples, dicts,
    numbers, strings and :class:`RemoteObject` handles."""
    if data is None or type(data) in (bool, int, float, str):
        return data
    if type(data) is list:  # never produced by encode, but harmless
        return [decode(v, sandbox) for v in data]
    if type(data) is not dict:
        raise SandboxError(f"unexpected {type(data).__name__} in an answer")
    if "__nd" in data:
        return _decode_array(data["__nd"])
    if "__ns" in data:
        return _decode_array(data["__ns"])[()]
    if "__t" in data:
        import torch
        arr = _decode_array(data["__t"])
        t = torch.from_numpy(arr)
        want = getattr(torch, str(data.get("dtype", "")), None)
        return t.to(want) if isinstance(want, torch.dtype) else t
    if "__tdtype" in data:
        import torch
        want = getattr(torch, str(data["__tdtype"]), None)
        if not isinstance(want, torch.dtype):
            raise SandboxError(f"unknown torch dtype {data['__tdtype']!r}")
        return want
    if "__mod" in data:
        return _build_module(data["__mod"])
    if "__l" in data:
        return [decode(v, sandbox) for v in data["__l"]]
    if "__tu" in data:
        return tuple(decode(v, sandbox) for v in data["__tu"])
    if "__d" in data:
        out = {}
        for k, v in data["__d"]:
            key = decode(k, sandbox)
            try:
                hash(key)
            except TypeError:
                key = repr(key)
            out[key] = decode(v, sandbox)
        return out
    if "__it" in data:
        return iter([decode(v, sandbox) for v in data["__it"]])
    if "__h" in data:
        if sandbox is None:
            raise SandboxError("a handle without a sandbox")
        return RemoteObject(sandbox, int(data["__h"]), str(data.get("type", "object")), bool(data.get("callable")))
    raise SandboxError("unknown value in an answer")


# Standard torch modules travel by value: their structure and parameters are plain data, and the grading process
# rebuilds them from the genuine torch classes (a student's patch of ``Linear.forward`` or a hook stays behind).
_STATELESS = ("ReLU", "Tanh", "Sigmoid", "Identity", "Flatten")


def _module_spec(m):
    import torch
    t = type(m)
    if t is torch.nn.Sequential:
        children = [_module_spec(c) for c in m]
        return None if any(c is None for c in children) else {"type": "Sequential", "children": children,
                                                                "training": bool(m.training)}
    if t is torch.nn.Linear:
        if set(dict(m.named_parameters())) - {"weight", "bias"}:
            return None
        return {"type": "Linear", "weight": encode(m.weight), "bias": None if m.bias is None else encode(m.bias),
                "requires_grad": [bool(p.requires_grad) for p in m.parameters()], "training": bool(m.training)}
    if t.__module__.startswith("torch.nn.modules") and t.__name__ in _STATELESS and not list(m.parameters()):
        return {"type": t.__name__, "training": bool(m.training)}
    return None


def _build_module(spec):
    import torch
    kind = spec.get("type") if isinstance(spec, dict) else None
    if kind == "Sequential":
        m = torch.nn.Sequential(*[_build_module(c) for c in spec["children"]])
    elif kind == "Linear":
        weight = decode(spec["weight"])
        bias = None if spec.get("bias") is None else decode(spec["bias"])
        if not isinstance(weight, torch.Tensor) or weight.ndim != 2:
            raise SandboxError("malformed Linear module")
        m = torch.nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None, dtype=weight.dtype)
        with torch.no_grad():
            m.weight.copy_(weight)
            if bias is not None:
                m.bias.copy_(bias.reshape(m.bias.shape))
        for p, rg in zip(m.parameters(), spec.get("requires_grad", [])):
            p.requires_grad_(bool(rg))
    elif kind in _STATELESS:
        m = getattr(torch.nn, kind)()
    else:
        raise SandboxError(f"unknown module {kind!r}")
    m.train(bool(spec.get("training", True)))
    return m


# ==================================================================================================================
# The grading side
# ==================================================================================================================
class _Ref:
    """What a :class:`RemoteObject` pickles to: the sandbox replaces it by the object it stands for."""

    def __init__(self, key: int):
        self.key = key


class RemoteObject:
    """A handle on an object that lives in the sandbox (a student's function, class, model, ...)."""

    def __init__(self, sandbox: "Sandbox", key: int, type_name: str = "object", is_callable: bool = True):
        object.__setattr__(self, "_sandbox", sandbox)
        object.__setattr__(self, "_key", key)
        object.__setattr__(self, "_type", type_name)
        object.__setattr__(self, "_callable", is_callable)

    def __call__(self, *args, **kwargs):
        return self._sandbox.call(self._key, args, kwargs)

    def __getattr__(self, name: str):
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        return self._sandbox.getattr(self._key, name)

    def __reduce__(self):
        return (_Ref, (self._key,))

    def __repr__(self) -> str:
        return f"<{self._type} in the sandbox>"

    def __bool__(self) -> bool:
        return True


def bwrap_available() -> bool:
    return shutil.which("bwrap") is not None and os.environ.get("TFDL_SANDBOX", "") != "none"


def _pickle(obj) -> bytes:
    import cloudpickle
    return cloudpickle.dumps(obj)


class Sandbox:
    """One sandbox process holding one student's namespace.  Use as a context manager."""

    def __init__(self, limits: Limits | None = None, isolate: bool | None = None):
        self.limits = limits or Limits()
        self.isolate = bwrap_available() if isolate is None else isolate
        self.proc: subprocess.Popen | None = None
        self._tmp: str | None = None
        self.deaths: list[str] = []
        self._registered: set[str] = set()

    # -- process --------------------------------------------------------------------------------------------------
    def command(self, workdir: str) -> list[str]:
        python = str(Path(sys.executable).absolute())  # the venv's python (a symlink into base_prefix)
        worker = [python, "-I", "-X", "faulthandler", "-c", "from autograder.sandbox import _serve; _serve()"]
        if not self.isolate:
            return worker
        ro = {Path("/usr"), Path(sys.base_prefix).resolve(), Path(sys.prefix), PACKAGE}
        for entry in sys.path:  # e.g. an editable install's site-packages outside the venv
            p = Path(entry)
            if entry and p.is_dir() and "site-packages" in p.parts:
                ro.add(p)
        cmd = ["bwrap", "--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL"]
        # The private /tmp first: bwrap mounts in order, so the read-only binds below stay visible even when the
        # course (its venv, this package) lives under /tmp, as a CI clone may.
        cmd += ["--size", str(self.limits.tmpfs_mb * 2 ** 20), "--tmpfs", "/tmp", "--dir", "/tmp/work"]
        for p in sorted(ro, key=lambda p: len(p.parts)):
            cmd += ["--ro-bind", str(p), str(p)]
        for name in ("lib", "lib64", "bin", "sbin"):
            if Path("/" + name).is_symlink():
                cmd += ["--symlink", os.readlink("/" + name), "/" + name]
            elif Path("/" + name).is_dir():
                cmd += ["--ro-bind", "/" + name, "/" + name]
        for f in ("/etc/ld.so.cache", "/etc/localtime", "/etc/nsswitch.conf", "/etc/passwd", "/etc/group"):
            if Path(f).exists():
                cmd += ["--ro-bind", f, f]
        cmd += ["--proc", "/proc", "--dev", "/dev", "--remount-ro", "/", "--chdir", "/tmp/work"]
        return cmd + worker

    def start(self) -> "Sandbox":
        self._tmp = tempfile.mkdtemp(prefix="tfdl-sandbox-")
        workdir = self._tmp if not self.isolate else "/tmp/work"
        env = {"PATH": "/usr/bin:/bin", "HOME": workdir if not self.isolate else "/tmp/work", "LANG": "C.UTF-8",
               "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
               "MPLBACKEND": "Agg", "PYTHONHASHSEED": "0", "PYDEVD_DISABLE_FILE_VALIDATION": "1",
               "MPLCONFIGDIR": (workdir if not self.isolate else "/tmp/work") + "/.mpl"}
        if not self.isolate:  # the editable install needs nothing else; a venv that is not activated is fine
            env["TMPDIR"] = self._tmp
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        lim = self.limits

        env["TFDL_SANDBOX_FDS"] = f"{to_child_r},{from_child_w}"

        def limit():
            resource.setrlimit(resource.RLIMIT_AS, (lim.memory_mb * 2 ** 20,) * 2)
            resource.setrlimit(resource.RLIMIT_CPU, (lim.cpu_seconds, lim.cpu_seconds + 5))
            resource.setrlimit(resource.RLIMIT_FSIZE, (lim.file_mb * 2 ** 20,) * 2)
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

        self.proc = subprocess.Popen(self.command(workdir), cwd=self._tmp, env=env, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=limit,
                                     pass_fds=(to_child_r, from_child_w),
                                     start_new_session=True)
        os.close(to_child_r)
        os.close(from_child_w)
        self._w, self._r = to_child_w, from_child_r
        self._registered = set()
        # The process is ready when it has imported the course's libraries; that start-up has its own, generous
        # limit and is not charged to any request of the student's.
        deadline = time.monotonic() + START_SECONDS
        (size,) = struct.unpack("<Q", self._read_exact(8, deadline))
        self._read_exact(size, deadline)
        return self

    def close(self) -> None:
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            self.proc.wait()
            for fd in (self._w, self._r):
                with contextlib.suppress(OSError):
                    os.close(fd)
            self.proc = None
        if self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    # -- protocol -------------------------------------------------------------------------------------------------
    def _send(self, obj) -> None:
        data = _pickle(obj)
        try:
            os.write(self._w, struct.pack("<Q", len(data)))
            view = memoryview(data)
            while view:
                n = os.write(self._w, view)
                view = view[n:]
        except (BrokenPipeError, OSError):
            raise SandboxError(self._death("the sandbox process is gone")) from None

    def _read_exact(self, n: int, deadline: float) -> bytes:
        chunks, got = [], 0
        while got < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise SandboxError(self._kill(f"time limit: no answer within {self.limits.wall_seconds:g} s"))
            ready, _, _ = select.select([self._r], [], [], min(left, 1.0))
            if not ready:
                if self.proc.poll() is not None:
                    raise SandboxError(self._death("the process died"))
                continue
            chunk = os.read(self._r, min(n - got, 1 << 20))
            if not chunk:
                raise SandboxError(self._death("the process died"))
            chunks.append(chunk)
            got += len(chunk)
        return b"".join(chunks)

    def _death(self, what: str) -> str:
        code = self.proc.wait() if self.proc is not None else None
        if code is not None and code < 0:
            name = signal.Signals(-code).name
            why = {"SIGXCPU": "CPU-time limit", "SIGSEGV": "segmentation fault", "SIGKILL": "killed (out of memory?)",
                   "SIGXFSZ": "file-size limit", "SIGABRT": "aborted (out of memory?)"}.get(name, name)
            what = f"{what}: {why}"
        elif code is not None:
            what = f"{what} (exit status {code}: os._exit, a crash, or out of memory?)"
        self.close()
        self.deaths.append(what)
        return what

    def _kill(self, what: str) -> str:
        self.close()
        self.deaths.append(what)
        return what

    def request(self, op: str, **kw) -> dict:
        if not self.alive():
            raise SandboxError("the sandbox is not running")
        self._send(dict(kw, op=op))
        deadline = time.monotonic() + self.limits.wall_seconds
        (size,) = struct.unpack("<Q", self._read_exact(8, deadline))
        if size > MAX_MESSAGE:
            raise SandboxError(self._kill(f"an answer of {size} bytes is over the limit"))
        try:
            answer = json.loads(self._read_exact(size, deadline))
        except (ValueError, UnicodeDecodeError):
            raise SandboxError(self._kill("the sandbox broke the protocol")) from None
        if type(answer) is not dict:
            raise SandboxError(self._kill("the sandbox broke the protocol"))
        return answer

    # -- operations -----------------------------------------------------------------------------------------------
    def execute(self, source: str, name: str = "<cell>") -> tuple[str | None, str]:
        """Run a cell in the student's namespace: ``(error or None, printed output)``."""
        answer = self.request("exec", source=source, name=name)
        return answer.get("error"), str(answer.get("output", ""))[:MAX_OUTPUT]

    def names(self, wanted: list[str]) -> dict[str, dict]:
        """The kinds of the wanted names defined in the student's namespace: ``{"kind": "callable" | "module" |
        "value", "module": name, "value": encoded}``."""
        answer = self.request("names", names=list(wanted))
        return answer.get("names", {}) if isinstance(answer.get("names"), dict) else {}

    def _rng(self) -> dict:
        import numpy as np
        st = np.random.get_state()
        out = {"np": (st[0], st[1], st[2], st[3], st[4])}
        if "torch" in sys.modules:
            out["torch"] = sys.modules["torch"].random.get_rng_state().numpy().tobytes()
        return out

    def _set_rng(self, rng: dict) -> None:
        import numpy as np
        try:
            if rng.get("torch") is not None and "torch" in sys.modules:
                import torch
                raw = _decode_array(rng["torch"])
                torch.random.set_rng_state(torch.from_numpy(raw.astype(np.uint8)))
            if rng.get("np") is not None:
                kind, keys, pos, has_gauss, cached = rng["np"]
                np.random.set_state((str(kind), _decode_array(keys).astype(np.uint32), int(pos), int(has_gauss),
                                     float(cached)))
        except Exception:  # noqa: BLE001 - a student who broke the RNG in the sandbox does not break the grader
            pass

    def call(self, target, args: tuple, kwargs: dict):
        """Call a student's function (a name in the student's namespace or a handle key) with ``args``; mirror
        in-place changes of array, tensor and module arguments back into the grader's objects; return the
        decoded result or raise the student's exception."""
        answer = self.request("call", target=target, args=tuple(args), kwargs=dict(kwargs), rng=self._rng())
        self._set_rng(answer.get("rng") or {})
        for i, state in (answer.get("after") or {}).items():
            obj = args[int(i)] if str(i).isdigit() and int(i) < len(args) else kwargs.get(str(i)[1:])
            _restore(obj, state)
        if answer.get("error"):
            raise remote_exception(str(answer.get("ename", "Exception")), str(answer.get("error")))
        return decode(answer.get("value"), self)

    def getattr(self, key: int, name: str):
        answer = self.request("getattr", key=key, name=name)
        if answer.get("error"):
            raise remote_exception(str(answer.get("ename", "AttributeError")), str(answer.get("error")))
        return decode(answer.get("value"), self)

    def trusted(self, fn, args: tuple, kwargs: dict):
        """Run a trusted function of the grader's (sent by value) in the sandbox, on arguments that may be
        handles: e.g. the reference empirical NTK of a student's network.  Its result is only as trustworthy as
        the sandbox it ran in: it can only misreport this submission's own objects."""
        answer = self.request("trusted", fn=fn, args=tuple(args), kwargs=dict(kwargs), rng=self._rng())
        self._set_rng(answer.get("rng") or {})
        if answer.get("error"):
            raise remote_exception(str(answer.get("ename", "Exception")), str(answer.get("error")))
        return decode(answer.get("value"), self)


def _restore(obj, state) -> None:
    """Write the sandbox's after-call state of an argument into the grader's copy (so that purity checks work)."""
    if state is None or obj is None:
        return
    try:
        import numpy as np
        import torch
        if isinstance(obj, np.ndarray):
            new = decode(state)
            if isinstance(new, np.ndarray) and new.shape == obj.shape:
                obj[...] = new
        elif isinstance(obj, torch.Tensor):
            new = decode(state)
            if isinstance(new, torch.Tensor) and new.shape == obj.shape:
                with torch.no_grad():
                    obj.copy_(new.to(obj.dtype))
        elif isinstance(obj, torch.nn.Module):
            params = list(obj.parameters())
            new = decode(state["params"])
            flags = state["requires_grad"]
            if len(new) != len(params):
                return
            for p, v, rg in zip(params, new, flags):
                if v.dtype != p.dtype or v.shape != p.shape:
                    p.data = v.clone()
                else:
                    with torch.no_grad():
                        p.copy_(v)
                p.requires_grad_(bool(rg))
            obj.train(bool(state["training"]))
    except Exception:  # noqa: BLE001 - a malformed state is ignored (the purity check then sees no change)
        pass


# ==================================================================================================================
# The sandbox side
# ==================================================================================================================
class _Capped(io.TextIOBase):
    def __init__(self, cap: int = MAX_OUTPUT):
        self.parts, self.size, self.cap = [], 0, cap

    def write(self, s) -> int:
        s = str(s)
        if self.size < self.cap:
            self.parts.append(s[: self.cap - self.size])
            self.size += len(self.parts[-1])
        return len(s)

    def writable(self) -> bool:
        return True

    def getvalue(self) -> str:
        return "".join(self.parts)


def _state(obj):
    """The after-call state of an argument the grader will compare: arrays, tensors, modules."""
    mod = type(obj).__module__
    if mod == "numpy" or mod.startswith("torch"):
        import torch
        if isinstance(obj, torch.nn.Module):
            ps = list(obj.parameters())
            return {"params": encode(ps), "requires_grad": [bool(p.requires_grad) for p in ps],
                    "training": bool(obj.training)}
        return encode(obj)
    return None


def _serve() -> None:  # pragma: no cover - runs in the sandbox process
    """The sandbox's main loop: read pickled requests and answer JSON on the pipes named in the environment."""
    rfd, wfd = (int(x) for x in os.environ.pop("TFDL_SANDBOX_FDS").split(","))
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    import pickle

    import numpy as np
    ns: dict = {"__name__": "__main__", "__builtins__": builtins}
    handles: dict = {}
    sys.modules["__main__"].__dict__.update({})  # student code runs in ``ns``

    def read_exact(n):
        buf = b""
        while len(buf) < n:
            chunk = os.read(rfd, n - len(buf))
            if not chunk:
                os._exit(0)
            buf += chunk
        return buf

    def reply(obj):
        try:
            data = json.dumps(obj, allow_nan=True).encode()
        except (TypeError, ValueError) as exc:
            data = json.dumps({"error": f"could not send the answer: {exc}", "ename": "TypeError"}).encode()
        os.write(wfd, struct.pack("<Q", len(data)))
        view = memoryview(data)
        while view:
            view = view[os.write(wfd, view):]

    def resolve(x):
        if isinstance(x, _Ref):
            return handles[x.key]
        if type(x) in (list, tuple):
            return type(x)(resolve(v) for v in x)
        if type(x) is dict:
            return {k: resolve(v) for k, v in x.items()}
        return x

    def set_rng(rng):
        torch = sys.modules.get("torch")
        try:
            if torch is None and rng.get("torch") is not None:
                import torch
            if torch is not None and rng.get("torch") is not None:
                torch.random.set_rng_state(torch.frombuffer(bytearray(rng["torch"]), dtype=torch.uint8))
            if rng.get("np") is not None:
                np.random.set_state(rng["np"])
        except Exception:  # noqa: BLE001
            pass

    def get_rng():
        out = {}
        torch = sys.modules.get("torch")
        try:
            if torch is not None:
                out["torch"] = _encode_array(torch.random.get_rng_state().numpy())
            st = np.random.get_state()
            out["np"] = [str(st[0]), _encode_array(st[1]), int(st[2]), int(st[3]), float(st[4])]
        except Exception:  # noqa: BLE001
            pass
        return out

    def describe(exc: BaseException) -> dict:
        text = str(exc)
        if isinstance(exc, SystemExit):
            text = f"SystemExit({exc.code!r}): your function called sys.exit()"
        return {"ename": type(exc).__name__, "error": text or type(exc).__name__}

    def run(fn):
        out = _Capped()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            import warnings
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    return fn(), None, out.getvalue()
                except BaseException as exc:  # noqa: BLE001 - anything student code raises is an answer
                    return None, exc, out.getvalue()

    # Warm up before the first request, so that no request's wall-clock limit pays for the course's heavy imports
    # (torch alone takes seconds on a loaded machine): then say so.
    for heavy in ("torch", "matplotlib.pyplot"):
        try:
            __import__(heavy)
        except Exception:  # noqa: BLE001 - not installed here: the student's own import will say so
            pass
    reply({"ready": True})
    while True:
        (size,) = struct.unpack("<Q", read_exact(8))
        try:
            req = pickle.loads(read_exact(size))
            op = req["op"]
        except BaseException as exc:  # noqa: BLE001
            reply({"error": f"bad request: {exc}", "ename": "SandboxError"})
            continue
        try:
            if op == "exec":
                def go():
                    exec(compile(req["source"], req.get("name", "<cell>"), "exec"), ns)
                _, exc, output = run(go)
                answer = {"output": output}
                if exc is not None:
                    tb = traceback.format_exception_only(type(exc), exc)
                    answer["error"] = (tb[-1].strip() if tb else type(exc).__name__)[:2000]
                reply(answer)
            elif op == "names":
                found = {}
                for name in req["names"]:
                    if name not in ns:
                        continue
                    v = ns[name]
                    if type(v).__name__ == "module":
                        found[name] = {"kind": "module", "module": str(getattr(v, "__name__", ""))}
                    elif callable(v):
                        found[name] = {"kind": "callable"}
                    else:
                        try:
                            found[name] = {"kind": "value", "value": encode(v, handles)}
                        except Exception:  # noqa: BLE001
                            found[name] = {"kind": "unreadable"}
                reply({"names": found})
            elif op in ("call", "trusted"):
                set_rng(req.get("rng") or {})
                args = resolve(req["args"])
                kwargs = resolve(req["kwargs"])
                if op == "call":
                    target = req["target"]
                    fn = handles[target] if isinstance(target, int) else ns[target]
                else:
                    fn = req["fn"]
                value, exc, _ = run(lambda: fn(*args, **kwargs))
                answer = {"rng": get_rng()}
                if exc is not None:
                    answer.update(describe(exc))
                else:
                    value_enc, exc2, _ = run(lambda: encode(value, handles))
                    if exc2 is not None:
                        answer.update({"ename": "TypeError", "error": f"the result could not be read: {exc2}"})
                    else:
                        answer["value"] = value_enc
                after = {}
                for i, a in enumerate(args):
                    st, e, _ = run(lambda: _state(a))
                    if st is not None and e is None:
                        after[str(i)] = st
                for k, a in kwargs.items():
                    st, e, _ = run(lambda: _state(a))
                    if st is not None and e is None:
                        after["=" + k] = st
                answer["after"] = after
                reply(answer)
            elif op == "getattr":
                value, exc, _ = run(lambda: getattr(handles[req["key"]], req["name"]))
                if exc is None:
                    value, exc, _ = run(lambda: encode(value, handles))
                reply(describe(exc) if exc is not None else {"value": value})
            else:
                reply({"error": f"unknown operation {op!r}", "ename": "SandboxError"})
        except BaseException as exc:  # noqa: BLE001 - e.g. a student's object that breaks while being read
            try:
                reply(describe(exc))
            except BaseException:  # noqa: BLE001
                os._exit(3)
