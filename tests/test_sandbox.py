"""autograder.sandbox: student code in a separate, limited process; only plain data comes back."""
from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from autograder import sandbox
from autograder.sandbox import Limits, RemoteError, RemoteObject, Sandbox, SandboxError, decode, encode
from tests.conftest import REPO

needs_bwrap = pytest.mark.skipif(not sandbox.bwrap_available(), reason="bubblewrap is not installed")


@pytest.fixture(scope="module")
def box():
    with Sandbox(Limits(wall_seconds=10, memory_mb=3072)) as sb:
        error, _ = sb.execute("import numpy as np\nimport torch\n"
                              "def double(x):\n    x *= 2\n    return x\n"
                              "def pair(a, b):\n    return (a, [b, {'k': a}])\n"
                              "def stub(*a):\n    raise NotImplementedError()\n"
                              "def leave(*a):\n    import sys\n    sys.exit(3)\n"
                              "def noisy(x):\n    print('x' * 10_000_000)\n    return x\n"
                              "class Yes:\n    def __eq__(self, other):\n        return True\n"
                              "def yes(*a):\n    return Yes()\n"
                              "def draw(n):\n    return torch.randn(n), np.random.rand(n)\n"
                              "def mlp(d):\n    return torch.nn.Sequential(torch.nn.Linear(d, 4), torch.nn.ReLU(),"
                              " torch.nn.Linear(4, 1))\n"
                              "class Mine(torch.nn.Module):\n    def __init__(self):\n        super().__init__()\n"
                              "        self.lin = torch.nn.Linear(3, 1)\n    def forward(self, x):\n"
                              "        return self.lin(x)\n"
                              "def patched(d):\n    torch.nn.Linear.forward = lambda self, x: x.sum(-1, keepdim=True)\n"
                              "    return torch.nn.Sequential(torch.nn.Linear(d, 1))\n"
                              "def spin(*a):\n    while True:\n        pass\n")
        assert error is None
        yield sb


@pytest.mark.parametrize("value", [np.arange(6, dtype=np.float32).reshape(2, 3), np.array([1, 2], dtype=np.int64),
                                   np.array([True]), np.float64(2.5), 3, 2.5, "s", None, float("nan"),
                                   (1, [2.0, {"a": np.zeros(2)}]), {3: "int keys"}])
def test_codec_round_trips_plain_data(value):
    back = decode(encode(value))
    if isinstance(value, np.ndarray):
        assert back.dtype == value.dtype and np.array_equal(back, value)
    elif isinstance(value, float) and value != value:
        assert back != back
    elif isinstance(value, tuple):
        assert back[0] == 1 and back[1][0] == 2.0 and np.array_equal(back[1][1]["a"], np.zeros(2))
    else:
        assert back == value


def test_codec_keeps_tensor_dtypes_and_refuses_objects():
    t = decode(encode(torch.arange(3, dtype=torch.float32)))
    assert isinstance(t, torch.Tensor) and t.dtype == torch.float32
    with pytest.raises(TypeError):
        encode(object())
    with pytest.raises(TypeError):
        encode(np.array([object()], dtype=object), handles={})
    with pytest.raises(SandboxError):  # an answer claiming an object array is refused, never unpickled
        decode({"__nd": {"dtype": "|O", "shape": [1], "b64": ""}})


def test_calls_return_plain_data_and_mirror_in_place_changes(box):
    x = np.ones(3)
    out = box.call("double", (x,), {})
    assert isinstance(out, np.ndarray) and out.tolist() == [2, 2, 2]
    assert x.tolist() == [2, 2, 2]  # the student's in-place change is visible to the purity checks
    assert box.call("pair", (1, "b"), {}) == (1, ["b", {"k": 1}])


def test_exceptions_come_back_as_exceptions_that_cannot_stop_the_grader(box):
    with pytest.raises(NotImplementedError):
        box.call("stub", (), {})
    with pytest.raises(RemoteError) as info:
        box.call("leave", (), {})
    assert type(info.value).__name__ == "SystemExit" and isinstance(info.value, Exception)


def test_objects_stay_in_the_sandbox(box):
    liar = box.call("yes", (), {})
    assert isinstance(liar, RemoteObject)
    assert (liar == 9) is False  # its __eq__ runs nowhere near the grader
    model = box.call("Mine", (), {})  # a module of the student's own class: a handle
    assert isinstance(model, RemoteObject)
    out = model(torch.ones(2, 3))
    assert isinstance(out, torch.Tensor) and out.shape == (2, 1)
    assert sum(p.numel() for p in model.parameters()) == 3 + 1


def test_standard_torch_modules_come_back_by_value_built_from_genuine_classes(box):
    torch.manual_seed(3)
    model = box.call("mlp", (3,), {})
    torch.manual_seed(3)
    twin = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 1))
    assert type(model) is torch.nn.Sequential and [type(m) for m in model] == [type(m) for m in twin]
    x = torch.randn(5, 3)
    assert torch.equal(model(x), twin(x))
    patched = box.call("patched", (3,), {})  # its Linear.forward patch stayed in the sandbox
    assert torch.allclose(patched(x), x @ patched[0].weight.T + patched[0].bias)


def test_rng_state_travels_with_each_call(box):
    torch.manual_seed(7)
    np.random.seed(7)
    t, a = box.call("draw", (3,), {})
    after = torch.randn(1)
    torch.manual_seed(7)
    np.random.seed(7)
    assert torch.equal(t, torch.randn(3)) and np.array_equal(a, np.random.rand(3))
    assert torch.equal(after, torch.randn(1))  # the grader's generator moved on as if the call ran here


def test_printed_output_is_capped(box):
    assert box.call("noisy", (5,), {}) == 5


def test_wall_clock_limit_kills_and_reports():
    with Sandbox(Limits(wall_seconds=2)) as sb:
        sb.execute("def spin():\n    while True:\n        try:\n            pass\n        except BaseException:\n"
                   "            pass")
        start = time.monotonic()
        with pytest.raises(SandboxError, match="time limit"):
            sb.call("spin", (), {})
        assert time.monotonic() - start < 6 and not sb.alive()


def test_os_exit_and_segfault_are_reported():
    with Sandbox(Limits(wall_seconds=10)) as sb:
        with pytest.raises(SandboxError, match="exit status 4"):
            sb.execute("import os\nos._exit(4)")
    with Sandbox(Limits(wall_seconds=10)) as sb:
        with pytest.raises(SandboxError, match="segmentation fault|exit status"):
            sb.execute("import ctypes\nctypes.string_at(0)")


def test_memory_limit():
    with Sandbox(Limits(wall_seconds=20, memory_mb=1024)) as sb:
        error, _ = sb.execute("import numpy as np\nx = np.ones(2 ** 31)")
        assert error and "MemoryError" in error


@needs_bwrap
def test_the_sandbox_sees_no_course_files_no_network_and_writes_nowhere(tmp_path):
    marker = tmp_path / "outside.txt"
    with Sandbox(Limits(wall_seconds=20)) as sb:
        assert sb.isolate
        code = (f"import os, socket\nsolutions = os.path.exists({str(REPO / 'solutions')!r})\n"
                f"course_work = os.path.exists({str(REPO / 'course_work')!r})\n"
                f"tests = os.path.exists({str(REPO / 'tests')!r})\n"
                "env = sorted(os.environ)\n"
                "try:\n    socket.create_connection(('1.1.1.1', 80), timeout=2)\n    net = True\n"
                "except OSError:\n    net = False\n"
                f"try:\n    open({str(marker)!r}, 'w').write('x')\n    wrote = True\nexcept OSError:\n"
                "    wrote = False\n"
                "open('scratch.txt', 'w').write('the working directory is writable')\n"
                "def facts():\n    return solutions, course_work, tests, net, wrote, 'TFDL_COURSE_ROOT' in env, os.getcwd()")
        assert sb.execute(code)[0] is None
        assert sb.call("facts", (), {}) == (False, False, False, False, False, False, "/tmp/work")
    assert not marker.exists()


def test_fallback_without_bubblewrap_still_limits_time():
    with Sandbox(Limits(wall_seconds=2), isolate=False) as sb:
        sb.execute("def f(x):\n    return x + 1\ndef spin():\n    while True:\n        pass")
        assert sb.call("f", (1,), {}) == 2
        with pytest.raises(SandboxError, match="time limit"):
            sb.call("spin", (), {})


def test_arrays_keep_their_shape_across_the_boundary_zero_dimensional_included():
    import numpy as np
    with Sandbox(Limits(wall_seconds=60), isolate=False) as sb:
        sb.execute("import numpy as np\ndef f():\n    return np.float64(2.5), np.array(3.0), np.ones((2, 0)), "
                   "np.arange(6.0).reshape(2, 3).T")
        scalar, zero_d, empty, transposed = sb.call("f", (), {})
    assert float(scalar) == 2.5
    assert np.shape(zero_d) == () and float(zero_d) == 3.0
    assert empty.shape == (2, 0)
    assert transposed.shape == (3, 2) and transposed.tolist() == [[0, 3], [1, 4], [2, 5]]


# -- issue 21: limits on the process tree and on what crosses from the sandbox ------------------------------------
_BOMB = ("import os, time\n"
         "def bomb(n, sleep):\n    made = 0\n    for _ in range(n):\n        try:\n            pid = os.fork()\n"
         "        except OSError as exc:\n            return made, str(exc)\n        if pid == 0:\n"
         "            time.sleep(sleep)\n            os._exit(0)\n        made += 1\n    return made, None\n")


@needs_bwrap
def test_a_fork_bomb_stops_at_the_process_limit_and_leaves_another_sandbox_alone():
    """A bounded bomb (200 forks, so that a failed limit cannot take the machine down): it stops at the limit,
    the grader stays responsive, and another student's sandbox running at the same time can still fork."""
    limits = Limits(wall_seconds=30, processes=32)
    with Sandbox(limits) as one, Sandbox(limits) as other:
        assert one.execute(_BOMB)[0] is None and other.execute(_BOMB)[0] is None
        start = time.monotonic()
        made, error = one.call("bomb", (200, 15), {})  # its children stay alive while the other one forks
        assert made < 32 and error and "Resource temporarily unavailable" in error
        assert other.call("bomb", (10, 0), {}) == (10, None)
        assert one.call("bomb", (1, 0), {})[0] == 0  # still at its limit, and still answering
        assert time.monotonic() - start < 20


def test_an_answer_over_the_limit_fails_only_that_call():
    with Sandbox(Limits(wall_seconds=30, answer_mb=1)) as sb:
        sb.execute("import numpy as np\ndef big(n):\n    return np.zeros(n)\ndef text(n):\n    return 'x' * n\n"
                   "def many(n):\n    return [[] for _ in range(n)]\ndef deep(n):\n    out = []\n"
                   "    for _ in range(n):\n        out = [out]\n    return out\n")
        encoded = 4 * 8 * 10 ** 6 / 3 / 2 ** 20  # 10**6 float64 as base64
        with pytest.raises(RemoteError, match=rf"an answer of {encoded:.0f} MB is over the limit of 1 MB"):
            sb.call("big", (10 ** 6,), {})
        with pytest.raises(RemoteError, match=r"an answer of 2 MB is over the limit of 1 MB"):
            sb.call("text", (2 * 2 ** 20,), {})
        with pytest.raises(RemoteError, match=r"an answer of 100001 items is over the limit of 100000 items"):
            sb.call("many", (10 ** 6,), {})
        with pytest.raises(Exception, match="nested too deeply"):
            sb.call("deep", (10_000,), {})
        assert sb.alive() and sb.call("big", (3,), {}).tolist() == [0, 0, 0]  # only those calls failed


_FORGE = ("import fcntl, os, struct\n"
          "def forge(header, body):\n"
          "    for fd in map(int, os.listdir('/proc/self/fd')):\n"
          "        try:\n            target = os.readlink(f'/proc/self/fd/{fd}')\n"
          "            mode = fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE\n        except OSError:\n"
          "            continue\n"
          "        if target.startswith('pipe:') and mode == os.O_WRONLY:\n"
          "            os.write(fd, struct.pack('<Q', header) + body)\n"
          "    import time\n    time.sleep(30)\n")


@pytest.mark.parametrize("answer_mb, header, body, message", [
    (1, 2 ** 40, b"", r"an answer of 1048576 MB is over the limit of 1 MB"),
    (4, 3 * 600_000 + 1, b"[" + b"[]," * 600_000, r"an answer of \d+ items is over the limit of 100000 items"),
])
def test_the_grader_refuses_a_forged_answer_before_decoding_it(answer_mb, header, body, message):
    """A student who writes to the answer pipe directly: the size, then the structure, are checked before
    anything is read or parsed; the sandbox is stopped (it broke the protocol)."""
    with Sandbox(Limits(wall_seconds=10, answer_mb=answer_mb)) as sb:
        sb.execute(_FORGE)
        with pytest.raises(SandboxError, match=message):
            sb.call("forge", (header, body[:header]), {})
        assert not sb.alive()


def test_a_sandbox_that_ran_out_of_memory_or_holds_it_is_exhausted():
    """What decides that the next part gets a fresh sandbox (autograder.submission)."""
    with Sandbox(Limits(wall_seconds=30)) as sb:
        sb.execute("import numpy as np\nblocks = []\ndef hog():\n    try:\n        while True:\n"
                   "            blocks.append(np.empty(2 ** 27))\n    except MemoryError:\n        return len(blocks)\n"
                   "def bomb():\n    return [np.empty(2 ** 27) for _ in range(10 ** 6)]\n")
        assert sb.exhausted() is None
        assert sb.call("hog", (), {}) > 0
        assert "MB of its 6144 MB" in sb.exhausted()
    with Sandbox(Limits(wall_seconds=30)) as sb:
        sb.execute("import numpy as np\ndef bomb():\n    return [np.empty(2 ** 27) for _ in range(10 ** 6)]\n")
        with pytest.raises(Exception, match="Unable to allocate"):
            sb.call("bomb", (), {})
        assert sb.exhausted() == "it ran out of memory"


# ----------------------------------------------------------------------------------------------------------------
# Warm sandboxes: a fork server per grading process (issue 20)
# ----------------------------------------------------------------------------------------------------------------
LEAVE_TRACES = """
import builtins, os, sys, time
builtins.LEFT_BY_STUDENT_ONE = 42
sys.modules['json'].LEFT = 1
open('/tmp/work/left.txt', 'w').write('answers')
open('/tmp/left.txt', 'w').write('answers')
os.makedirs('/tmp/work/private', exist_ok=True)
os.chmod('/tmp/work/private', 0o700)
if os.fork() == 0:  # a daemon of its own session, which tries to outlive the student
    os.setsid()
    while True:
        time.sleep(0.1)
"""

LOOK_FOR_TRACES = """
import builtins, json, os
seen = {'builtin': hasattr(builtins, 'LEFT_BY_STUDENT_ONE'), 'module': hasattr(json, 'LEFT'),
        'files': sorted(os.listdir('/tmp/work')) + sorted(os.listdir('/tmp')), 'work': sorted(os.listdir('/tmp/work')),
        'processes': sorted(int(p) for p in os.listdir('/proc') if p.isdigit()), 'me': os.getpid()}
"""


@needs_bwrap
def test_a_warm_sandbox_is_a_fresh_process_that_no_earlier_student_left_anything_in():
    first = sandbox.fresh_sandbox(Limits(wall_seconds=20)).start()
    server = first.server
    assert server is not None and server.alive()
    assert first.execute(LEAVE_TRACES, "student one")[0] is None
    first.close()
    second = sandbox.fresh_sandbox(Limits(wall_seconds=20)).start()
    assert second.server is server  # the same warm server, a new process
    assert second.execute(LOOK_FOR_TRACES, "student two")[0] is None
    seen = second.names(["seen"])["seen"]["value"]
    second.close()
    seen = decode(seen)
    assert not seen["builtin"] and not seen["module"]
    # /tmp/work empty but for matplotlib's folder; /tmp holds the work folder (and the mount points of the course's
    # read-only binds when the course itself lives under /tmp, as a CI clone does)
    assert not {"left.txt", "private"} & set(seen["files"]), seen["files"]
    assert seen["work"] in ([], [".mpl"]), seen["work"]
    assert seen["processes"] == sorted({1, 2, seen["me"]})  # bwrap, the server, this process: no daemon


@needs_bwrap
def test_a_forked_sandbox_starts_in_milliseconds_and_keeps_its_limits():
    box = sandbox.fresh_sandbox(Limits(wall_seconds=2, memory_mb=3072))
    box.start()  # the server may start here (cold); the next one is a fork
    box.close()
    t = time.perf_counter()
    box = sandbox.fresh_sandbox(Limits(wall_seconds=2, memory_mb=3072)).start()
    assert time.perf_counter() - t < 2.0  # a cold start imports torch: seconds
    try:
        with pytest.raises(SandboxError, match="time limit"):
            box.execute("while True:\n    pass\n")
        box.start()  # a restart: another fork
        error, _ = box.execute("import numpy as np\nx = np.ones(2 ** 32, dtype=np.uint8)\n")
        assert error is not None and "MemoryError" in error
        error, _ = box.execute("import torch\ny = float((torch.ones(3, 3) @ torch.ones(3, 3)).sum())\n")
        assert error is None and decode(box.names(["y"])["y"]["value"]) == 27.0
    finally:
        box.close()


@needs_bwrap
def test_a_student_cannot_reach_the_server_and_a_dead_server_is_replaced():
    box = sandbox.fresh_sandbox(Limits(wall_seconds=20)).start()
    server = box.server
    # the server's memory is closed to its children (not dumpable); its control socket is not theirs
    error, _ = box.execute("import os\nopen(f'/proc/{os.getppid()}/mem', 'rb').read(1)\n")
    assert error is not None and ("PermissionError" in error or "OSError" in error)
    # a student who kills the server (if its user may) takes only its own process down with it
    box.execute("import os, signal\ntry:\n    os.kill(os.getppid(), signal.SIGKILL)\nexcept OSError:\n    pass\n")
    box.close()
    starts = server.starts
    import os
    import signal
    os.killpg(server.proc.pid, signal.SIGKILL)  # the server dies while it waits for the next student
    server.proc.wait()
    box = sandbox.fresh_sandbox(Limits(wall_seconds=20)).start()
    try:
        assert box.execute("x = 1 + 1")[0] is None
        assert box.server is server and server.starts == starts + 1 and server.alive()
    finally:
        box.close()


@needs_bwrap
def test_the_server_imports_the_assignments_modules_before_it_forks_a_student():
    """A server started for an assignment has imported what its source notebook imports (warm_modules): a
    student's process finds them loaded without importing them itself."""
    from autograder.submission import warm_modules
    modules = warm_modules(REPO, "ntk")
    assert {"sympy", "torch.func", "autograder.variants"} <= set(modules)
    limits = Limits(wall_seconds=20, memory_mb=3584)  # its own server: the other tests' started without these
    box = sandbox.fresh_sandbox(limits, modules=modules).start()
    try:
        error, _ = box.execute("import sys\nloaded = [m in sys.modules for m in ('sympy', 'torch.func', "
                               "'torch._functorch.eager_transforms', 'autograder.variants')]\n")
        assert error is None and decode(box.names(["loaded"])["loaded"]["value"]) == [True] * 4
    finally:
        box.close()
        sandbox._SERVERS.pop((limits.memory_mb, limits.tmpfs_mb)).close()
