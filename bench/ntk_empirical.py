"""The empirical NTK of the course's NTK-parametrized MLP computed three ways, side by side.

* ``jacobian``: torch.func.jacrev + vmap over the inputs (the solution notebook's method), then J1 J2^T;
* ``loop``: one reverse-mode pass per input and per parameter tensor (autograd.grad), accumulated;
* ``layers``: the per-layer closed form  Θ(x, x') = Σ_l (W_std² <a_{l-1}(x), a_{l-1}(x')> / n_{l-1} + b_std²)
  <δ_l(x), δ_l(x')>,  with a_{l-1} the input of layer l and δ_l = ∂f/∂h_l from one backward sweep:
  no Jacobian is ever formed, so memory stays O(n · width).
Each (method, width) runs in a fresh process, so the peak resident memory it prints is its own.  The three agree
to float64 rounding (printed as the largest difference from ``layers``).

    .venv/bin/python bench/ntk_empirical.py [--widths 1024 4096] [--n 16] [--depth 2]
"""
import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def kernel(method, width, n, depth):
    import numpy as np
    import torch
    sys.path.insert(0, str(ROOT))
    from tests.notebooks import solution_namespace
    ns = solution_namespace("ntk")
    torch.manual_seed(0)
    model = ns["NTKMLP"](3, width, depth, W_std=1.3, b_std=0.5).double()
    X = torch.tensor(np.random.default_rng(0).normal(size=(n, 3)))
    start = time.perf_counter()
    if method == "jacobian":
        K = ns["empirical_ntk"](model, X, X)
    elif method == "loop":
        params = list(model.parameters())
        grads = []
        for i in range(n):
            grads.append(torch.autograd.grad(model(X[i:i + 1]).sum(), params))
        K = torch.zeros(n, n, dtype=torch.float64)
        for p in range(len(params)):
            G = torch.stack([g[p].reshape(-1) for g in grads])
            K += G @ G.T
    else:  # layers: forward keeping the layer inputs, backward sweep of delta = df/dh
        inputs, pre = [], []
        h = X
        for i, layer in enumerate(model.layers):
            a = torch.relu(h) if i else h
            inputs.append(a)
            h = model.W_std / layer.in_features ** 0.5 * a @ layer.weight.T + model.b_std * layer.bias
            pre.append(h)
        delta = torch.ones(n, 1, dtype=torch.float64)
        K = torch.zeros(n, n, dtype=torch.float64)
        for i in reversed(range(len(model.layers))):
            layer, a = model.layers[i], inputs[i]
            K += (model.W_std ** 2 * a @ a.T / layer.in_features + model.b_std ** 2) * (delta @ delta.T)
            if i:
                delta = (delta @ layer.weight * model.W_std / layer.in_features ** 0.5) * (pre[i - 1] > 0)
    seconds = time.perf_counter() - start
    K = K.detach().numpy()
    return seconds, K


def child(method, width, n, depth):
    seconds, K = kernel(method, width, n, depth)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "peak_mb": peak_mb, "K": K.tolist()}))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", type=int, nargs="+", default=[1024, 4096])
    parser.add_argument("--n", type=int, default=16, help="number of inputs")
    parser.add_argument("--depth", type=int, default=2)
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        method, width, n, depth = args.child
        return child(method, int(width), int(n), int(depth))
    import numpy as np
    print(f"empirical NTK of NTKMLP(3, width, {args.depth}, W_std=1.3, b_std=0.5), float64, {args.n} inputs, "
          "one process per row\n")
    print(f"{'width':>6} {'method':>9} {'seconds':>9} {'peak MB':>9} {'max |K - K_layers|':>20}")
    for width in args.widths:
        rows = {}
        for method in ("layers", "jacobian", "loop"):
            out = subprocess.run([sys.executable, __file__, "--child", method, str(width), str(args.n),
                                  str(args.depth)], capture_output=True, text=True, check=True)
            rows[method] = json.loads(out.stdout.strip().splitlines()[-1])
        ref = np.array(rows["layers"]["K"])
        for method, r in rows.items():
            diff = np.abs(np.array(r["K"]) - ref).max()
            print(f"{width:>6} {method:>9} {r['seconds']:>9.3f} {r['peak_mb']:>9.0f} {diff:>20.2e}")
    print("\npeak MB is the whole process's maximum resident set (Python, torch and the model included)")


if __name__ == "__main__":
    main()
