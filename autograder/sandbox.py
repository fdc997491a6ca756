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
address space (RLIMIT_AS), CPU time (RLIMIT_CPU), file size (RLIMIT_FSIZE), the number of processes and threads
(RLIMIT_NPROC, against fork bombs: as root each sandbox runs as a user id of its own, :func:`sandbox_uid`, so the
count is the sandbox's alone) and, per request, a wall-clock limit after which the whole process group is killed.
What crosses back is bounded before it is decoded (:attr:`Limits.answer_mb`, :data:`MAX_ITEMS`): the sandbox
refuses a larger answer while encoding it ("an answer of N MB is over the limit of M MB", only that call fails),
and the grader checks the size and the structure of every answer before it parses it.  Each answer also reports
the sandbox's address space and CPU time, so that the grader can give the next part a fresh sandbox when memory
ran out or is held (:meth:`Sandbox.exhausted`).  Without bubblewrap (:func:`bwrap_available` false) the fallback is a
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
import linecache
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

MAX_MESSAGE = 64 * 2 ** 20  # bytes of one answer from the sandbox (the default of Limits.answer_mb)
MAX_ITEMS = 100_000  # numbers, strings, lists and dicts in one answer (an array is one item, its bytes count)
MAX_DEPTH = 40  # nesting of one answer (encode refuses student values nested deeper than 20)
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
    # Processes and threads of the student's process tree (RLIMIT_NPROC; a fork bomb stops there).  The sandbox
    # itself runs one thread once torch, numpy and matplotlib are imported (their pools at one thread each).
    processes: int = 64
    # One answer from the sandbox (a returned value, an attribute, the after-call state of the arguments), as
    # encoded: the largest thing a check reads back is the parameters of a width-2048 network (17 MB, 23 MB
    # encoded).  Enforced in the sandbox before encoding finishes and in the grader before decoding.
    answer_mb: int = 64


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


class AnswerTooLarge(TypeError):
    """A value too large to cross from the sandbox (over :attr:`Limits.answer_mb` or :data:`MAX_ITEMS`)."""


def too_large(size: int, limit: int, unit: str = "MB") -> str:
    if unit == "MB":
        return f"an answer of {size / 2 ** 20:.0f} MB is over the limit of {limit / 2 ** 20:.0f} MB"
    return f"an answer of {size} {unit} is over the limit of {limit} {unit}"


class _Budget:
    """What one answer may still hold while the sandbox encodes it: so that a huge or huge-to-decode value is
    refused before it is built, not after."""

    def __init__(self, max_bytes: int, max_items: int = MAX_ITEMS):
        self.bytes, self.items, self.max_bytes, self.max_items = 0, 0, max_bytes, max_items

    def take(self, nbytes: int = 0, items: int = 1) -> None:
        self.bytes += nbytes
        self.items += items
        if self.bytes > self.max_bytes:
            raise AnswerTooLarge(too_large(self.bytes, self.max_bytes))
        if self.items > self.max_items:
            raise AnswerTooLarge(too_large(self.items, self.max_items, "items"))


_BUDGET: list = [None]  # the budget of the answer being encoded (the sandbox encodes one answer at a time)


def _encode_array(arr) -> dict:
    import numpy as np
    arr = np.asarray(arr)  # not ascontiguousarray, which turns a 0-d array into shape (1,); tobytes is C order
    if arr.dtype.kind not in _NUMERIC_KINDS:
        raise TypeError(f"array of dtype {arr.dtype}")
    if _BUDGET[0] is not None:
        _BUDGET[0].take(nbytes=4 * (arr.nbytes + 2) // 3 + 64)  # base64 and the envelope, before encoding
    return {"dtype": arr.dtype.str, "shape": list(arr.shape), "b64": base64.b64encode(arr.tobytes()).decode()}


def _decode_array(d: dict):
    import numpy as np
    dtype = np.dtype(d["dtype"])
    if dtype.kind not in _NUMERIC_KINDS or dtype.hasobject:
        raise SandboxError(f"refused array dtype {d['dtype']!r}")
    shape = tuple(int(s) for s in d["shape"])
    raw = base64.b64decode(d["b64"])
    try:
        return np.frombuffer(raw, dtype=dtype).reshape(shape).copy()
    except ValueError:
        raise SandboxError(f"an array of shape {shape} does not match its {len(raw)} bytes") from None


def encode(value: Any, handles: dict | None = None, depth: int = 0) -> Any:
    """Plain JSON-able data for ``value``; objects that are not plain data become handles in ``handles``."""
    if depth > 20:
        raise TypeError("nested too deeply")
    if _BUDGET[0] is not None:
        _BUDGET[0].take(nbytes=len(value) if type(value) is str else 8)
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
    if mod.startswith("sympy"):
        text = _sympy_text(value)
        if text is not None:  # a SymPy expression (a derivation's answer) crosses as its text, never as an object
            return {"__sym": text}
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


MAX_EXPRESSION = 5000  # characters of a SymPy expression's text (autograder.derivation refuses longer answers)


def _sympy_text(value) -> str | None:
    """``sympy.sstr`` of a SymPy object (at most ``MAX_EXPRESSION + 1`` characters), None for anything else."""
    sympy = sys.modules.get("sympy")
    if sympy is None or not isinstance(value, sympy.Basic):
        return None
    return str(sympy.sstr(value))[: MAX_EXPRESSION + 1]


def decode(data: Any, sandbox: "Sandbox | None" = None, _depth: int = 0) -> Any:
    """The inverse of :func:`encode` in the grading process: numpy arrays, torch tensors, lists, tuples, dicts,
    numbers, strings and :class:`RemoteObject` handles.  (What it may cost was bounded before the answer was
    parsed, :meth:`Sandbox.request`; nesting is bounded here.)"""
    if data is None or type(data) in (bool, int, float, str):
        return data
    if _depth > MAX_DEPTH:
        raise SandboxError("an answer nested too deeply")
    sub = _depth + 1
    if type(data) is list:  # never produced by encode, but harmless
        return [decode(v, sandbox, sub) for v in data]
    if type(data) is not dict:
        raise SandboxError(f"unexpected {type(data).__name__} in an answer")
    if "__sym" in data:  # a SymPy expression as text: autograder.derivation parses it with a whitelist
        return str(data["__sym"])[: MAX_EXPRESSION + 1]
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
        return [decode(v, sandbox, sub) for v in data["__l"]]
    if "__tu" in data:
        return tuple(decode(v, sandbox, sub) for v in data["__tu"])
    if "__d" in data:
        out = {}
        for k, v in data["__d"]:
            key = decode(k, sandbox, sub)
            try:
                hash(key)
            except TypeError:
                key = repr(key)
            out[key] = decode(v, sandbox, sub)
        return out
    if "__it" in data:
        return iter([decode(v, sandbox, sub) for v in data["__it"]])
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


class _Name:
    """What a student's name called by name (``submission._Proxy``) pickles to: the sandbox replaces it by what the
    name means in the student's namespace at that moment."""

    def __init__(self, name: str):
        self.name = name


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

    def _tfdl_near(self, fn, args: tuple, kwargs: dict):
        """Run a harness step where this object lives (:func:`autograder.core.near`)."""
        return self._sandbox.trusted(fn, args, kwargs)

    def __repr__(self) -> str:
        return f"<{self._type} in the sandbox>"

    def __bool__(self) -> bool:
        return True


def bwrap_available() -> bool:
    return shutil.which("bwrap") is not None and os.environ.get("TFDL_SANDBOX", "") != "none"


def _pickle(obj) -> bytes:
    import cloudpickle
    return cloudpickle.dumps(obj)


def _environment(workdir: str, isolate: bool) -> dict:
    """The environment of a sandbox process: nothing of the grader's, one thread per numerical library."""
    env = {"PATH": "/usr/bin:/bin", "HOME": workdir, "LANG": "C.UTF-8",
           "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
           "MPLBACKEND": "Agg", "PYTHONHASHSEED": "0", "PYDEVD_DISABLE_FILE_VALIDATION": "1",
           "MPLCONFIGDIR": workdir + "/.mpl"}
    if not isolate:  # the editable install needs nothing else; a venv that is not activated is fine
        env["TMPDIR"] = workdir
    return env


def _apply_limits(lim: "Limits | dict") -> None:
    """The resource limits of one student's process (set in the process itself: after ``fork``, or before the
    ``exec`` of a cold start)."""
    lim = Limits(**lim) if isinstance(lim, dict) else lim
    resource.setrlimit(resource.RLIMIT_AS, (lim.memory_mb * 2 ** 20,) * 2)
    resource.setrlimit(resource.RLIMIT_CPU, (lim.cpu_seconds, lim.cpu_seconds + 5))
    resource.setrlimit(resource.RLIMIT_FSIZE, (lim.file_mb * 2 ** 20,) * 2)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    nproc = _process_limit(lim.processes)
    if nproc is not None:
        resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))


def _tasks_of(uid: int) -> int:
    """Processes and threads of ``uid`` on the machine (what RLIMIT_NPROC counts), from /proc."""
    n = 0
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":", 1) for line in status.read_text().splitlines() if ":" in line)
            if int(fields["Uid"].split()[0]) == uid:
                n += int(fields["Threads"])
        except (OSError, KeyError, ValueError):
            continue
    return n


def _process_limit(processes: int) -> int | None:
    """RLIMIT_NPROC for a student's process tree of at most ``processes`` processes and threads.

    The kernel counts RLIMIT_NPROC per user, and not at all for root.  As root, each sandbox becomes a user of
    its own (:func:`sandbox_uid`, dropped to in the sandbox), so the limit is exactly ``processes`` and one
    student's fork bomb cannot take another's share.  As an ordinary user, the limit is what that user already
    runs plus ``processes``: a fork bomb still stops, but shares that margin with the user's other sandboxes."""
    if os.geteuid() == 0:
        return processes
    return _tasks_of(os.getuid()) + processes


_UIDS = iter(range(1 << 30))


def sandbox_uid() -> int:
    """A user id of its own for one sandbox started as root: no account of the machine has it, and no other
    sandbox running at the same time (it is made of this grader's pid and a counter)."""
    return 100_000_000 + (os.getpid() % 4_194_304) * 64 + next(_UIDS) % 64


def become(uid: int) -> None:
    """Drop from root (with CAP_SETUID) to ``uid`` for good: its capabilities go with it."""
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)


class Sandbox:
    """One sandbox process holding one student's namespace.  Use as a context manager."""

    def __init__(self, limits: Limits | None = None, isolate: bool | None = None,
                 server: "ForkServer | None" = None):
        self.limits = limits or Limits()
        self.isolate = bwrap_available() if isolate is None else isolate
        self.server = server  # with a server, the process is a fresh fork of its warm one (see fresh_sandbox)
        self._ready = False
        self.proc: subprocess.Popen | _Child | None = None
        self._tmp: str | None = None
        self.deaths: list[str] = []
        self._registered: set[str] = set()

    # -- process --------------------------------------------------------------------------------------------------
    def command(self, workdir: str, entry: str = "_serve") -> list[str]:
        python = str(Path(sys.executable).absolute())  # the venv's python (a symlink into base_prefix)
        worker = [python, "-I", "-X", "faulthandler", "-c", f"from autograder.sandbox import {entry}; {entry}()"]
        server = entry
        if not self.isolate:
            return worker
        ro = {Path("/usr"), Path(sys.base_prefix).resolve(), Path(sys.prefix), PACKAGE}
        for entry in sys.path:  # e.g. an editable install's site-packages outside the venv
            p = Path(entry)
            if entry and p.is_dir() and "site-packages" in p.parts:
                ro.add(p)
        tmpfs = ["--size", str(self.limits.tmpfs_mb * 2 ** 20), "--tmpfs", "/tmp", "--dir", "/tmp/work"]
        if os.geteuid() == 0:
            # As root, a user namespace would map the student to root itself, whom RLIMIT_NPROC does not limit.
            # So bubblewrap runs privileged, without one, keeping only the capability to change user; the sandbox
            # becomes its own unprivileged user at once (_serve, sandbox_uid) and loses it.  The folders it
            # creates must then be readable by that user (bwrap makes the missing parents of a bind 0700).
            cmd = ["bwrap", "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
                   "--die-with-parent", "--new-session", "--cap-drop", "ALL", "--cap-add", "CAP_SETUID",
                   "--cap-add", "CAP_SETGID"]
            if server == "_zygote":  # a fork server cleans up after each student's (other) user; its children,
                # becoming that user, lose these capabilities as they lose CAP_SETUID
                cmd += ["--cap-add", "CAP_KILL", "--cap-add", "CAP_DAC_OVERRIDE", "--cap-add", "CAP_FOWNER"]
            tmpfs = ["--perms", "1777", "--size", str(self.limits.tmpfs_mb * 2 ** 20), "--tmpfs", "/tmp",
                     "--perms", "1777", "--dir", "/tmp/work"]
        else:
            cmd = ["bwrap", "--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL"]
        # The private /tmp first: bwrap mounts in order, so the read-only binds below stay visible even when the
        # course (its venv, this package) lives under /tmp, as a CI clone may.
        cmd += tmpfs
        made, bound = {Path("/"), Path("/tmp"), Path("/tmp/work")}, set()

        def bind(p: Path) -> None:
            for parent in reversed(p.parents):
                if os.geteuid() == 0 and parent not in made and not any(b in parent.parents for b in bound):
                    cmd.extend(["--perms", "0755", "--dir", str(parent)])
                made.add(parent)
            cmd.extend(["--ro-bind", str(p), str(p)])
            made.add(p)
            bound.add(p)

        for p in sorted(ro, key=lambda p: len(p.parts)):
            bind(p)
        for name in ("lib", "lib64", "bin", "sbin"):
            if Path("/" + name).is_symlink():
                cmd += ["--symlink", os.readlink("/" + name), "/" + name]
            elif Path("/" + name).is_dir():
                bind(Path("/" + name))
        for f in ("/etc/ld.so.cache", "/etc/localtime", "/etc/nsswitch.conf", "/etc/passwd", "/etc/group"):
            if Path(f).exists():
                bind(Path(f))
        cmd += ["--proc", "/proc", "--dev", "/dev", "--remount-ro", "/", "--chdir", "/tmp/work"]
        return cmd + worker

    def child_env(self) -> dict:
        """The environment that differs from one sandbox process to the next (both for a cold start and for a
        fork server's child, which sets it before it serves)."""
        env = {"TFDL_ANSWER_BYTES": str(self.limits.answer_mb * 2 ** 20)}
        if self.isolate and os.geteuid() == 0:
            env["TFDL_SANDBOX_UID"] = str(sandbox_uid())
        return env

    def start(self) -> "Sandbox":
        """Start the process and wait until it is ready (``spawn()`` then ``wait_ready()``)."""
        return self.spawn().wait_ready()

    def spawn(self) -> "Sandbox":
        """Start the process without waiting for it (a cold start imports the course's libraries meanwhile; with
        a server, a fork of its warm process: :class:`ForkServer`). ``wait_ready()`` before the first request."""
        self._ready = False
        self._registered = set()
        if self.server is not None:  # a fresh child of a warm fork server (ForkServer)
            self.proc = self.server.fork(self.limits, self.child_env())
            self._w, self._r = self.proc.w, self.proc.r
            return self
        self._tmp = tempfile.mkdtemp(prefix="tfdl-sandbox-")
        workdir = self._tmp if not self.isolate else "/tmp/work"
        env = _environment(workdir, self.isolate)
        env.update(self.child_env())
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        lim = self.limits

        env["TFDL_SANDBOX_FDS"] = f"{to_child_r},{from_child_w}"
        self.proc = subprocess.Popen(self.command(workdir), cwd=self._tmp, env=env, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     preexec_fn=lambda: _apply_limits(lim),
                                     pass_fds=(to_child_r, from_child_w),
                                     start_new_session=True)
        os.close(to_child_r)
        os.close(from_child_w)
        self._w, self._r = to_child_w, from_child_r
        self._registered = set()
        return self

    def wait_ready(self) -> "Sandbox":
        """Wait for the spawned process's ready message. The process is ready when it has imported the course's
        libraries; that start-up has its own, generous limit and is not charged to any request of the
        student's. Raises :class:`SandboxError` if it died meanwhile."""
        if not self._ready:
            deadline = time.monotonic() + START_SECONDS
            (size,) = struct.unpack("<Q", self._read_exact(8, deadline))
            self._read_exact(size, deadline)
            self._ready = True
        return self

    def close(self) -> None:
        if self.proc is not None:
            if isinstance(self.proc, _Child):  # the server kills it (and, before its next fork, all it left)
                self.proc.kill()
                self.proc.forget()
            else:
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
        # The sandbox refuses an answer over the limits itself (with the same message, and only that call fails);
        # one that arrives anyway broke the protocol.  Both bounds hold before anything is parsed: the bytes, and
        # the structure (each list, dict and item costs a bracket or a comma; base64 has neither).
        limit = self.limits.answer_mb * 2 ** 20
        if size > limit:
            raise SandboxError(self._kill(too_large(size, limit)))
        raw = self._read_exact(size, deadline)
        tokens = raw.count(b",") + raw.count(b"[") + raw.count(b"{")
        if tokens > 8 * MAX_ITEMS:
            raise SandboxError(self._kill(too_large(tokens // 8, MAX_ITEMS, "items")))
        try:
            answer = json.loads(raw)
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise SandboxError(self._kill("the sandbox broke the protocol")) from None
        if type(answer) is not dict:
            raise SandboxError(self._kill("the sandbox broke the protocol"))
        self._account(answer)
        return answer

    # -- what is left of the budget -------------------------------------------------------------------------------
    def _account(self, answer: dict) -> None:
        """Keep the usage the sandbox reports with each answer (its address space, its CPU time, whether memory
        ran out), for :meth:`exhausted`.  The figures are the student process's own and can only misreport
        this student's sandbox."""
        usage = getattr(self, "_usage", None)
        if usage is None or usage["proc"] is not self.proc:
            usage = self._usage = {"proc": self.proc, "base": None, "vm": None, "cpu": 0.0, "oom": False}
        with contextlib.suppress(TypeError, ValueError):
            vm = int(answer.get("vm_mb", -1))
            if vm >= 0:
                usage["vm"] = vm
                usage["base"] = vm if usage["base"] is None else min(usage["base"], vm)
            usage["cpu"] = float(answer.get("cpu_s", usage["cpu"]))
        usage["oom"] = usage["oom"] or bool(answer.get("memory_error"))

    def exhausted(self) -> str | None:
        """Why this sandbox cannot give the next part the full budget (None when it can): memory ran out in it
        (a MemoryError since it started), its address space is nearly full (more than 3/4 of what was free when
        it started is taken: something holds the memory), or it has less CPU time left than one request's
        wall-clock limit.  Then the next part gets a fresh sandbox."""
        usage = getattr(self, "_usage", None)
        if usage is None or usage["proc"] is not self.proc:
            return None
        if usage["oom"]:
            return "it ran out of memory"
        limit, base, vm = self.limits.memory_mb, usage["base"], usage["vm"]
        if base is not None and vm is not None and vm > base + 0.75 * (limit - base):
            return f"it holds {vm} MB of its {limit} MB of memory"
        if usage["cpu"] > self.limits.cpu_seconds - self.limits.wall_seconds:
            return f"it used {usage['cpu']:.0f} s of its {self.limits.cpu_seconds} s of CPU time"
        return None

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
        if answer.get("output"):  # what the student's function printed: the checks' feedback shows it
            sys.stdout.write(str(answer["output"])[:MAX_OUTPUT])
        for i, state in (answer.get("after") or {}).items():
            obj = args[int(i)] if str(i).isdigit() and int(i) < len(args) else kwargs.get(str(i)[1:])
            _restore(obj, state)
        if answer.get("error"):
            exc = remote_exception(str(answer.get("ename", "Exception")), str(answer.get("error")))
            exc.student_line = str(answer.get("where") or "")  # read by autograder.core._describe_exception
            raise exc
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


# ==================================================================================================================
# Warm sandboxes: a fork server
# ==================================================================================================================
class _Child:
    """A sandbox process forked by a :class:`ForkServer`: ``poll``, ``wait`` and ``kill`` as for a Popen (its
    exit status comes from the server, which is its parent)."""

    def __init__(self, server: "ForkServer", pid: int, w: int, r: int, generation: int):
        self.server, self.pid, self.w, self.r, self.generation = server, pid, w, r, generation
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            self.returncode = self.server.exit_code(self)
        return self.returncode

    def wait(self, timeout: float = 10.0) -> int:
        deadline = time.monotonic() + timeout
        while self.poll() is None and time.monotonic() < deadline:
            self.server.pump(0.05)
        if self.returncode is None:  # the server does not answer: it is stopped or stuck; start it afresh
            self.server.close()
            self.returncode = -signal.SIGKILL
        return self.returncode

    def kill(self) -> None:
        if self.poll() is None:
            self.server.kill(self)

    def forget(self) -> None:
        """Nobody will ask for its exit status (a closed sandbox): the server's report of it is dropped."""
        if self.returncode is None:
            self.returncode = -signal.SIGKILL
            self.server.forgotten.add(self.pid)


class ForkServer:
    """One warm sandbox process that forks a fresh process for every student (issue 20).

    The server runs in the same bubblewrap container as a cold sandbox would, and has imported numpy, torch and
    matplotlib once; each :class:`Sandbox` it serves is a ``fork`` of it, ready in milliseconds, with the
    student's limits set in the child. Nothing of one student reaches the next: before each fork the server kills
    every other process of its PID namespace (a student's daemon included) and empties the private ``/tmp``; a
    child never gets the server's control socket, and the server is not dumpable, so a child can neither trace
    it nor write its memory. A child may kill or stop the server: then that child dies with it (or the next fork
    times out), and a new server is started for the next sandbox. Used by :func:`fresh_sandbox`."""

    FORK_SECONDS = 30.0  # for the server to answer a fork request (milliseconds when it is well)

    def __init__(self, limits: Limits | None = None, modules: tuple = ()):
        self.limits = limits or Limits()
        self.modules = tuple(modules)  # imported before the first fork, beside WARM_MODULES
        self.proc: subprocess.Popen | None = None
        self.sock = None
        self.generation = 0
        self.exits: dict[int, int] = {}
        self.forgotten: set[int] = set()
        self.starts = 0  # how many server processes this object started (a benchmark figure)
        self._ready = False

    adopted = False  # started by the process this one is a fork of (start_servers): not this process's child

    def alive(self) -> bool:
        if self.proc is None:
            return False
        return _running(self.proc.pid) if self.adopted else self.proc.poll() is None

    def detach(self) -> None:
        """Drop this process's hold on the server's control socket (the fd then points at /dev/null), leaving
        the server to the process it was handed to; the server ends when that process's copy closes."""
        if self.sock is not None:
            to_devnull(self.sock.fileno())

    def spawn(self) -> "ForkServer":
        """Start the server's process without waiting for it (``start()`` waits)."""
        import socket
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        env = _environment("/tmp/work", True)
        env["TFDL_ZYGOTE_FD"] = str(theirs.fileno())
        env["TFDL_WARM"] = ",".join(self.modules)
        lim = self.limits

        def limit():
            resource.setrlimit(resource.RLIMIT_AS, (lim.memory_mb * 2 ** 20,) * 2)
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

        command = Sandbox(lim, isolate=True).command("/tmp/work", entry="_zygote")
        self.proc = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, preexec_fn=limit, pass_fds=(theirs.fileno(),),
                                     start_new_session=True)
        theirs.close()
        self.sock, self.generation, self.exits, self.forgotten = ours, self.generation + 1, {}, set()
        self.starts += 1
        self.adopted = False
        self._ready = False
        return self

    def start(self) -> "ForkServer":
        """Start the server and wait until it has imported the course's libraries."""
        if not self.alive():
            self.close()
            self.spawn()
        if not self._ready:
            message = self._receive(START_SECONDS)
            if not message or not message.get("ready"):
                self.close()
                raise SandboxError("the sandbox server did not start")
            self._ready = True
        return self

    def close(self) -> None:
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            self.proc = None
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def _receive(self, timeout: float) -> dict | None:
        """The next message of the server (a fork's pid, a child's exit), or None after ``timeout`` s."""
        if self.sock is None:
            return None
        ready, _, _ = select.select([self.sock], [], [], max(0.0, timeout))
        if not ready:
            return None
        try:
            data = self.sock.recv(4096)
            message = json.loads(data) if data else None
        except (OSError, ValueError):
            message = None
        if not isinstance(message, dict):  # the server is gone (or broken)
            self.close()
            return None
        if "exit" in message:
            pid = int(message["exit"])
            if pid in self.forgotten:
                self.forgotten.discard(pid)
            else:
                self.exits[pid] = int(message["code"])
        return message

    def pump(self, timeout: float = 0.0) -> None:
        """Read the messages that are waiting (children's exits)."""
        while self._receive(timeout) is not None:
            timeout = 0.0

    def exit_code(self, child: _Child) -> int | None:
        if child.generation != self.generation or not self.alive():
            return -signal.SIGKILL  # its server is gone, and with it its PID namespace
        self.pump()
        return self.exits.pop(child.pid) if child.pid in self.exits else None

    def kill(self, child: _Child) -> None:
        if child.generation == self.generation and self.sock is not None:
            with contextlib.suppress(OSError):
                self.sock.send(json.dumps({"kill": child.pid}).encode())

    def fork(self, limits: Limits, env: dict | None = None) -> _Child:
        """A fresh child with ``limits`` and the extra environment ``env``; (re)starts the server when it is not
        running or does not answer."""
        import socket
        from dataclasses import asdict
        request = json.dumps({"fork": asdict(limits), "env": dict(env or {})}).encode()
        for _attempt in (1, 2):
            self.start()
            to_child_r, to_child_w = os.pipe()
            from_child_r, from_child_w = os.pipe()
            message = None
            try:
                socket.send_fds(self.sock, [request], [to_child_r, from_child_w])
                deadline = time.monotonic() + self.FORK_SECONDS
                while time.monotonic() < deadline:
                    message = self._receive(deadline - time.monotonic())
                    if message is None or "child" in message:
                        break
            except OSError:
                message = None
            finally:
                os.close(to_child_r)
                os.close(from_child_w)
            if message is not None and "child" in message:
                return _Child(self, int(message["child"]), to_child_w, from_child_r, self.generation)
            os.close(to_child_w)
            os.close(from_child_r)
            self.close()  # stopped, stuck or dead: the next attempt starts a new one
        raise SandboxError("the sandbox server does not fork")


_SERVERS: dict = {}
os.register_at_fork(after_in_child=_SERVERS.clear)  # a forked copy of this process starts servers of its own


def fresh_sandbox(limits: Limits | None = None, isolate: bool | None = None, modules: tuple = ()) -> Sandbox:
    """A sandbox nobody has used, not started yet (``start()`` it). Isolated, it is a fork of this process's
    warm :class:`ForkServer` for these limits (milliseconds instead of the seconds of a cold start with its
    imports); without isolation, a cold process. ``modules``: what the server imports before its first fork, if
    it is started now (the assignment's imports, :func:`autograder.submission.warm_modules`)."""
    limits = limits or Limits()
    isolate = bwrap_available() if isolate is None else isolate
    if not isolate:
        return Sandbox(limits, isolate=False)
    key = _server_key(limits)
    server = _SERVERS.get(key)
    if server is None:
        if not _SERVERS:
            import atexit
            atexit.register(close_servers)
        server = _SERVERS[key] = ForkServer(limits, modules)
    return Sandbox(limits, isolate=True, server=server)


def prestart(limits: Limits | None = None, modules: tuple = ()) -> None:
    """Start this process's fork server for ``limits`` now, without waiting for it (a grading worker does it at
    start-up, so that its first student does not wait for the server's imports)."""
    limits = limits or Limits()
    if bwrap_available():
        server = fresh_sandbox(limits, True, modules).server
        if server is not None and not server.alive():
            server.spawn()


def start_servers(limits: Limits | None, modules: tuple, count: int) -> list[ForkServer]:
    """``count`` fork servers for ``limits`` started now, without waiting, for grading processes that do not
    exist yet (a batch starts them before its preflight, which leaves a core idle): each is handed to one forked
    copy of this process (:func:`adopt`). This process's own copies are dropped with :meth:`ForkServer.detach`
    once the copies exist; it reaps the servers when they are done (:func:`end_servers`). None without
    bubblewrap."""
    if not bwrap_available():
        return []
    return [ForkServer(limits or Limits(), modules).spawn() for _ in range(count)]


def adopt(server: ForkServer, others: list[ForkServer] = ()) -> None:
    """In a forked copy of the process that started ``server`` (:func:`start_servers`): make it this process's
    fork server for its limits, and drop this copy's hold on the ``others`` (each another copy's)."""
    for other in others:
        if other is not server:
            other.detach()
    server.adopted = True
    _SERVERS[_server_key(server.limits)] = server


def end_servers(servers: list[ForkServer]) -> None:
    """In the process that started ``servers``: stop and reap them (their grading processes are done)."""
    for server in servers:
        server.close()


def _server_key(limits: Limits) -> tuple:
    """What one fork server serves: the limits its own process and container fix (the others are set per child)."""
    return (limits.memory_mb, limits.tmpfs_mb)


def to_devnull(fd: int) -> None:
    """Point ``fd`` at /dev/null: this process no longer holds the pipe or socket it was (another process's end
    stays open), and whatever closes ``fd`` later closes nothing that matters."""
    devnull = os.open(os.devnull, os.O_RDWR)
    with contextlib.suppress(OSError):
        os.dup2(devnull, fd)
    os.close(devnull)


def _running(pid: int) -> bool:
    """Whether process ``pid`` (not necessarily a child of this one) runs: it exists and is no zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] not in ("Z", "X")


def close_servers() -> None:
    """Stop this process's fork servers (at exit; tests)."""
    for server in _SERVERS.values():
        server.close()
    _SERVERS.clear()


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


def _address_space_mb() -> int:
    """The sandbox's address space in MB (what RLIMIT_AS limits), from /proc; -1 where unknown."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) // 1024
    except (OSError, ValueError):
        pass
    return -1


def _serve(rfd: int | None = None, wfd: int | None = None) -> None:  # pragma: no cover - in the sandbox
    """The sandbox's main loop: read pickled requests and answer JSON on the pipes ``rfd``/``wfd`` (by default
    the ones named in the environment; a fork server's child gets them from the server)."""
    if rfd is None or wfd is None:
        rfd, wfd = (int(x) for x in os.environ.pop("TFDL_SANDBOX_FDS").split(","))
    uid = os.environ.pop("TFDL_SANDBOX_UID", "")
    if uid:  # bubblewrap ran as root: become this sandbox's own unprivileged user (RLIMIT_NPROC then counts)
        try:
            become(int(uid))
        except OSError:
            os._exit(5)  # never run a student's code as root
    answer_bytes = int(os.environ.pop("TFDL_ANSWER_BYTES", str(MAX_MESSAGE)))
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
            obj["vm_mb"] = _address_space_mb()
            usage = resource.getrusage(resource.RUSAGE_SELF)
            obj["cpu_s"] = usage.ru_utime + usage.ru_stime
            data = json.dumps(obj, allow_nan=True).encode()
        except (TypeError, ValueError) as exc:
            data = json.dumps({"error": f"could not send the answer: {exc}", "ename": "TypeError"}).encode()
        if len(data) > answer_bytes:  # e.g. a long string: the answer is refused here, and only this call fails
            data = json.dumps({"error": too_large(len(data), answer_bytes), "ename": "AnswerTooLarge",
                               "vm_mb": _address_space_mb()}).encode()
        os.write(wfd, struct.pack("<Q", len(data)))
        view = memoryview(data)
        while view:
            view = view[os.write(wfd, view):]

    def resolve(x):
        if isinstance(x, _Ref):
            return handles[x.key]
        if isinstance(x, _Name):
            return ns[x.name]
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

    cells: dict = {}  # cell name -> source, to name the line of the student's code an exception came from

    def describe(exc: BaseException) -> dict:
        text = str(exc)[:MAX_OUTPUT]
        if isinstance(exc, SystemExit):
            text = f"SystemExit({exc.code!r}): your function called sys.exit()"
        answer = {"ename": type(exc).__name__, "error": text or type(exc).__name__}
        tb, where = exc.__traceback__, None  # the last frame in one of the student's cells
        while tb is not None:
            if tb.tb_frame.f_code.co_filename in cells:
                where = tb
            tb = tb.tb_next
        if where is not None and not isinstance(exc, (NotImplementedError, SystemExit)):
            code = where.tb_frame.f_code
            lines = cells[code.co_filename].splitlines()
            line = lines[where.tb_lineno - 1].strip()[:120] if 0 < where.tb_lineno <= len(lines) else ""
            answer["where"] = (f"line {where.tb_lineno} of cell {code.co_filename}"
                               + ("" if code.co_name == "<module>" else f" in {code.co_name}")
                               + (f": {line}" if line else ""))
        return answer

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
    _warm_up(os.environ.pop("TFDL_WARM", ""))
    reply({"ready": True})
    while True:
        # What the last request left (its value, its exception and the traceback's frames, with whatever a
        # function that ran out of memory had allocated) is freed before the next one runs.
        value = exc = value_enc = exc2 = answer = args = kwargs = None
        _BUDGET[0] = None
        (size,) = struct.unpack("<Q", read_exact(8))
        try:
            req = pickle.loads(read_exact(size))
            op = req["op"]
        except BaseException as exc:  # noqa: BLE001
            reply({"error": f"bad request: {exc}", "ename": "SandboxError"})
            continue
        _BUDGET[0] = _Budget(answer_bytes)
        try:
            if op == "exec":
                def go():
                    cells[req.get("name", "<cell>")] = req["source"]
                    # a traceback of a harness step run here (autograder.core.near) shows the student's line
                    linecache.cache[req.get("name", "<cell>")] = (len(req["source"]), None,
                                                                  req["source"].splitlines(True), req.get("name"))
                    exec(compile(req["source"], req.get("name", "<cell>"), "exec"), ns)
                _, exc, output = run(go)
                answer = {"output": output}
                if exc is not None:
                    tb = traceback.format_exception_only(type(exc), exc)
                    answer["error"] = (tb[-1].strip() if tb else type(exc).__name__)[:2000]
                    answer["ename"] = type(exc).__name__
                    answer["memory_error"] = isinstance(exc, MemoryError)
                    traceback.clear_frames(exc.__traceback__)
                reply(answer)
            elif op == "names":
                found = {}
                for name in req["names"]:
                    if name not in ns:
                        continue
                    v = ns[name]
                    if type(v).__name__ == "module":
                        found[name] = {"kind": "module", "module": str(getattr(v, "__name__", ""))}
                    elif callable(v) and _sympy_text(v) is None:  # a SymPy Symbol is callable, yet a value
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
                value, exc, printed = run(lambda: fn(*args, **kwargs))
                answer = {"rng": get_rng(), "output": printed[:MAX_OUTPUT]}
                if exc is not None:
                    answer.update(describe(exc))
                    answer["memory_error"] = isinstance(exc, MemoryError)
                    traceback.clear_frames(exc.__traceback__)
                else:
                    value_enc, exc2, _ = run(lambda: encode(value, handles))
                    if isinstance(exc2, AnswerTooLarge):
                        answer.update({"ename": "AnswerTooLarge", "error": str(exc2)})
                    elif exc2 is not None:
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


# Imported once by the sandbox process before its first request, or by the fork server before it forks any
# student's process (the children share them): what every assignment needs, and what the assignment being graded
# imports (``modules`` of :func:`fresh_sandbox`, from its source notebook: SymPy, SciPy, scikit-learn, ...).
WARM_MODULES = ("pickle", "cloudpickle", "numpy", "torch", "matplotlib.pyplot", "autograder.core")


def _warm_up(modules: str = "") -> None:  # pragma: no cover - runs in the sandbox
    extra = [m for m in modules.split(",") if m]
    for heavy in (*WARM_MODULES, *extra):
        try:
            __import__(heavy)
        except Exception:  # noqa: BLE001 - not installed here: the student's own import will say so
            pass
    if "torch.func" in extra:  # its first transform loads some 800 modules (~1 s): once, not per student
        try:
            import torch
            from torch.func import jacrev, vmap
            vmap(jacrev(lambda x: (x * x).sum()))(torch.zeros(2, 2))
        except Exception:  # noqa: BLE001
            pass


def _zygote() -> None:  # pragma: no cover - runs in the sandbox container
    """The fork server's loop (:class:`ForkServer`): import the heavy libraries once, then for every fork request
    clean the container, fork, and report the child's pid; report every child's exit status; kill on request."""
    import ctypes
    import socket
    ctl = socket.socket(fileno=int(os.environ.pop("TFDL_ZYGOTE_FD")))
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    _warm_up(os.environ.pop("TFDL_WARM", ""))
    libc = ctypes.CDLL(None, use_errno=True)
    PR_SET_DUMPABLE = 4
    libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)  # no child can ptrace this process or open its memory
    me = os.getpid()
    try:
        in_namespace = me < 10 and b"bwrap" in Path("/proc/1/cmdline").read_bytes()
    except OSError:
        in_namespace = False
    children: set[int] = set()

    def send(obj) -> None:
        try:
            ctl.send(json.dumps(obj).encode())
        except OSError:
            os._exit(0)

    def reap() -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid in children:
                children.discard(pid)
                send({"exit": pid, "code": os.waitstatus_to_exitcode(status)})

    def empty(folder: str, device: int) -> bool:
        """Remove what ``folder`` holds on its own file system (``device``): never a mount point, nor anything
        below one (e.g. the course's read-only binds when the course lives under /tmp); keep /tmp/work itself.
        True when ``folder`` is now empty."""
        left = False
        for entry in os.listdir(folder):
            path = os.path.join(folder, entry)
            try:
                st = os.lstat(path)
            except OSError:
                continue
            if st.st_dev != device:  # a mount point: not ours to empty
                left = True
                continue
            if os.path.isdir(path) and not os.path.islink(path):
                if empty(path, device) and path != "/tmp/work":
                    with contextlib.suppress(OSError):
                        os.rmdir(path)
                        continue
                left = True
            else:
                try:
                    os.unlink(path)
                except OSError:
                    left = True
        return not left

    def clean() -> None:
        """Nothing of an earlier child survives: its processes (daemons included) and its files."""
        for _ in range(100):
            if in_namespace:
                others = [int(d) for d in os.listdir("/proc") if d.isdigit() and int(d) not in (1, me)]
            else:
                others = list(children)
            if not others:
                break
            for pid in others:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.005)
            reap()
        if in_namespace:
            for root in ("/tmp", "/dev/shm"):  # emptied, but for the work folder and the read-only mounts in it
                with contextlib.suppress(OSError):
                    empty(root, os.lstat(root).st_dev)
        os.makedirs("/tmp/work/.mpl", exist_ok=True)
        for folder in ("/tmp/work", "/tmp/work/.mpl"):  # writable by the child's own user (sandbox_uid)
            with contextlib.suppress(OSError):
                os.chmod(folder, 0o1777)
        os.chdir("/tmp/work")

    send({"ready": True})
    while True:
        ready, _, _ = select.select([ctl], [], [], 0.2)
        reap()
        if not ready:
            continue
        try:
            data, fds, _, _ = socket.recv_fds(ctl, 65536, 4)
        except OSError:
            os._exit(0)
        if not data:
            os._exit(0)  # the grader is gone
        try:
            request = json.loads(data)
        except ValueError:
            request = {}
        if "kill" in request:
            pid = int(request["kill"])
            if pid in children:
                with contextlib.suppress(OSError):
                    os.killpg(pid, signal.SIGKILL)
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
            continue
        if "fork" not in request or len(fds) != 2:
            for fd in fds:
                os.close(fd)
            continue
        clean()
        pid = os.fork()
        if pid == 0:  # the student's process
            try:
                ctl.close()
                os.setsid()
                libc.prctl(PR_SET_DUMPABLE, 1, 0, 0, 0)
                os.environ.update({str(k): str(v) for k, v in (request.get("env") or {}).items()})
                _apply_limits(request["fork"])
                _serve(fds[0], fds[1])
            finally:
                os._exit(0)
        for fd in fds:
            os.close(fd)
        children.add(pid)
        send({"child": pid})
