"""Benchmark section "analysis": Lyapunov spectra and fixed-point searches (issue 5).

Listed in the registry of bench/run.py. Three workloads, each in float32 and float64:

- **Lyapunov spectrum** (QR method) of a random tanh network, n = 500, k = 50, at g = 2
  (chaotic), dt = 0.05 tau: ``fr.analysis.lyapunov_spectrum`` against the same procedure in
  NumPy (tangent vectors advanced by ``Q J^T`` written as matrix products, ``np.linalg.qr``
  every step); ``flexrnn.reference.lyapunov_spectrum``, which forms each step's n×n
  Jacobian, is a diagnostic row.
- **Minimising q** from 256 states of an n = 100 network by batched Adam (the first stage of
  ``fixed_points``): the C++ minimiser against the same Adam in NumPy, with the gradient
  ``(J - I)^T (F(x) - x)`` as vector-Jacobian products (no Jacobians formed).
- **Whole fixed-point search**, n = 100, 256 initial states: ``fr.analysis.fixed_points``
  (C++ Adam, Levenberg-Marquardt refinement, de-duplication, eigenvalues) against what a
  SciPy user writes: ``scipy.optimize.minimize(method="L-BFGS-B")`` on q with its analytic
  gradient from every initial state, then the same de-duplication and eigenvalues. Both
  searches' fixed points are compared (found by one and not the other).
"""

from __future__ import annotations

import time
from typing import Any

import flexrnn
import numpy as np
from flexrnn import reference

from bench.harness import DTYPES, Context, Impl, Section, compare, fmt_time
from bench.render import render_cpu_share, render_timing_table

try:
    import scipy.optimize as scipy_optimize
except ImportError:  # pragma: no cover - scipy is a test dependency
    scipy_optimize = None

LYAP = {"n": 500, "k": 50, "g": 2.0, "dt": 0.05, "steps": 200, "quick_steps": 50}
FP = {"n": 100, "K": 256, "g": 1.5, "tau": 10.0, "iters": 1000, "check_iters": 20}
# exponents: float64 to rounding over the steps; float32 ~1e-6 per log, chaotic divergence
LYAP_TOL = {"float32": 2e-3, "float64": 1e-8}
# Adam states after check_iters steps (sign-like updates amplify rounding thereafter)
ADAM_TOL = {"float32": 1e-4, "float64": 1e-10}


# --------------------------------------------------------------------------------------------
# NumPy baselines


def _lyapunov_numpy(net, x0, k, steps, gain, seed=0):
    """The QR method in NumPy as products: Q (k, n) rows advanced as
    ``Q J^T = (1 - a) Q + a g (Q * phi'(x)) W^T`` (current form), a QR every step, logs of
    |diag R| averaged. Same initial tangent vectors as the C++ (philox rows, stream 0)."""
    dtype = net.W.dtype
    a, g = dtype.type(net.alpha), dtype.type(gain)
    W, c = net.W, net.b
    x = x0.astype(dtype)[None, :]
    Q = reference.philox_normal(seed, 0, np.arange(k), x.shape[1]).astype(dtype)
    Qm, _ = np.linalg.qr(Q.T)
    Q = np.ascontiguousarray(Qm.T)
    WT = np.ascontiguousarray(W.T)
    sums = np.zeros(k)
    for _ in range(steps):
        r = np.tanh(x)
        d = 1 - r * r
        Q = (1 - a) * Q + (a * g) * ((Q * d) @ WT)
        x = (1 - a) * x + a * (g * (r @ WT) + c)
        Qm, R = np.linalg.qr(Q.T)
        Q = Qm.T
        sums += np.log(np.abs(np.diag(R)).astype(np.float64))
    return sums / steps


def _q_grad_numpy(X, net, gain):
    """q (K,) and its gradient (K, n) by vector-Jacobian products (current form, tanh)."""
    dtype = net.W.dtype
    a, g = dtype.type(net.alpha), dtype.type(gain)
    r = np.tanh(X)
    F = (1 - a) * X + a * (g * (r @ net.W.T) + net.b)
    R = F - X
    G = (1 - a) * R + (a * g) * (1 - r * r) * (R @ net.W) - R  # (J - I)^T R
    return 0.5 * np.sum(R * R, axis=1), G


def _adam_numpy(net, X0, iters, lr, gain=1.0):
    """Batched Adam on q, each state its own moments: the C++ minimiser's algorithm."""
    X = X0.copy()
    dtype = X.dtype.type
    b1, b2, eps, lr = dtype(0.9), dtype(0.999), dtype(1e-12), dtype(lr)
    m, v = np.zeros_like(X), np.zeros_like(X)
    b1t = b2t = dtype(1)
    for _ in range(iters):
        _, G = _q_grad_numpy(X, net, gain)
        b1t, b2t = b1t * b1, b2t * b2
        m = b1 * m + (1 - b1) * G
        v = b2 * v + (1 - b2) * G * G
        X = X - lr * (m / (1 - b1t)) / (np.sqrt(v / (1 - b2t)) + eps)
    return X, _q_grad_numpy(X, net, gain)[0]


def _adam_cpp(net, X0, iters, lr):
    u = np.zeros(net.W_in.shape[1], net.dtype)
    X, q, _ = flexrnn._core.rate_minimize_q(
        net._kernel(), net._options(), u, 1.0, None, X0, iters, lr, 0.0,
    )  # fmt: skip
    return X, q


def _scipy_search(net, X0, fp_tol, dedup_tol):
    """Per initial state, L-BFGS-B on q (float64, analytic gradient), then the points with
    q <= fp_tol merged greedily by RMS distance and their Jacobian eigenvalues."""
    net64 = net.astype("float64")
    found = []
    for x0 in X0.astype(np.float64):

        def fun(x):
            q, G = _q_grad_numpy(x[None, :], net64, 1.0)
            return float(q[0]), G[0]

        res = scipy_optimize.minimize(
            fun, x0, jac=True, method="L-BFGS-B",
            options={"maxiter": 2000, "ftol": 0.0, "gtol": 1e-12},
        )  # fmt: skip
        if res.fun <= fp_tol:
            found.append((res.fun, res.x))
    found.sort(key=lambda t: t[0])
    kept: list[np.ndarray] = []
    limit = dedup_tol**2 * net.W.shape[0]
    for _, x in found:
        if not kept or np.min(np.sum((np.array(kept) - x) ** 2, axis=1)) > limit:
            kept.append(x)
    X = np.array(kept).reshape(-1, net.W.shape[0])
    u = np.zeros(net.W_in.shape[1])
    J = reference.rate_map_jacobian(X, net64.W, net64.W_in, net64.b, u, alpha=net.alpha)
    return X, np.linalg.eigvals(J)


# --------------------------------------------------------------------------------------------
# Workloads


def _lyap_net(dtype):
    n = LYAP["n"]
    net = flexrnn.RateRNN.random(n, 1, 1, g=1.0, tau=1.0, dt=LYAP["dt"], seed=0, dtype=dtype)
    x0 = np.random.default_rng(0).standard_normal(n).astype(dtype)
    # start on the attractor: 20 tau of the autonomous network at gain g
    T = int(20 / LYAP["dt"])
    x0 = net.run(np.zeros((T, 1, 1), dtype), x0=x0, gain=LYAP["g"]).x[-1, 0].copy()
    return net, x0


def _fp_net(dtype):
    return flexrnn.RateRNN.random(
        FP["n"], 3, 1, g=FP["g"], tau=FP["tau"], dt=1.0, seed=0, dtype=dtype
    )


def _fp_init(dtype):
    """256 initial states: states of a run of the network from N(0, 1), plus noise 0.1."""
    net = _fp_net(dtype)
    rng = np.random.default_rng(0)
    out = net.run(np.zeros((50, 32, 3), dtype), x0=rng.standard_normal((32, FP["n"])))
    pool = out.x.reshape(-1, FP["n"])
    X0 = pool[rng.integers(0, len(pool), FP["K"])] + 0.1 * rng.standard_normal((FP["K"], FP["n"]))
    return X0.astype(dtype)


def _lyap_impls(ctx: Context, dtype: str) -> list[Impl]:
    net, x0 = _lyap_net(dtype)
    k, g = LYAP["k"], LYAP["g"]
    steps = LYAP["quick_steps"] if ctx.quick else LYAP["steps"]
    args = (net.W, net.W_in, net.b, np.zeros(1, dtype))
    kw = dict(alpha=net.alpha, phi_name="tanh", form="current", gain=g)
    impls = [
        Impl(
            "flexrnn",
            "flexrnn C++ (`fr.analysis.lyapunov_spectrum`)",
            lambda: flexrnn.analysis.lyapunov_spectrum(
                net, k=k, steps=steps, transient=0, gain=g, x0=x0, per="step"
            ),
        ),
        Impl(
            "numpy",
            "NumPy, tangent by products + `np.linalg.qr`",
            lambda: np.sort(_lyapunov_numpy(net, x0, k, steps, g))[::-1],
        ),
    ]
    if not ctx.quick:
        impls.append(
            Impl(
                "reference",
                "`flexrnn.reference.lyapunov_spectrum` (n×n Jacobian per step) *(diagnostic)*",
                lambda: np.sort(
                    reference.lyapunov_spectrum(
                        lambda X: reference.rate_map(X, *args, **kw),
                        lambda X: reference.rate_map_jacobian(X, *args, **kw),
                        x0,
                        k=k,
                        steps=steps,
                        transient=0,
                    )
                )[::-1],  # fmt: skip
                diagnostic=True,
            )
        )
    return impls


def _check_close(outs: dict[str, Any], tol: float) -> dict[str, dict]:
    ref = np.asarray(outs["flexrnn"], dtype=np.float64)
    result = {}
    for key, out in outs.items():
        if key == "flexrnn":
            continue
        diff = float(np.max(np.abs(np.asarray(out, dtype=np.float64) - ref)))
        result[key] = {"allclose": diff <= tol, "max_abs_diff": diff, "atol": tol}
    return result


def _adam_impls(ctx: Context, dtype: str) -> list[Impl]:
    net, X0 = _fp_net(dtype), _fp_init(dtype)
    iters = FP["iters"] // (4 if ctx.quick else 1)
    return [
        Impl(
            "flexrnn",
            "flexrnn C++ (`_core.rate_minimize_q`)",
            lambda: _adam_cpp(net, X0, iters, 0.01),
        ),
        Impl(
            "numpy",
            "NumPy batched Adam, gradient by products",
            lambda: _adam_numpy(net, X0, iters, 0.01),
        ),
    ]


def _adam_check(dtype: str) -> dict[str, dict]:
    """Adam trajectories agree over the first check_iters steps (the timed runs' outputs are
    not compared: Adam's sign-like late steps amplify rounding differences)."""
    net, X0 = _fp_net(dtype), _fp_init(dtype)
    a, _ = _adam_cpp(net, X0, FP["check_iters"], 0.01)
    b, _ = _adam_numpy(net, X0, FP["check_iters"], 0.01)
    diff = float(np.max(np.abs(a.astype(np.float64) - b)))
    return {
        "numpy": {
            "allclose": diff <= ADAM_TOL[dtype],
            "max_abs_diff": diff,
            "atol": ADAM_TOL[dtype],
            "what": f"states after {FP['check_iters']} Adam steps",
        }
    }


def _search_impls(ctx: Context, dtype: str) -> list[Impl]:
    net, X0 = _fp_net(dtype), _fp_init(dtype)
    impls = [
        Impl(
            "flexrnn",
            "`fr.analysis.fixed_points` (C++ Adam + LM refinement)",
            lambda: flexrnn.analysis.fixed_points(net, n_init=0, x_init=X0, seed=0),
        )
    ]
    if scipy_optimize is not None:
        fp_tol = FP["n"] * 1e-18

        impls.append(
            Impl(
                "scipy",
                "SciPy L-BFGS-B per state (float64, analytic gradient)",
                lambda: _scipy_search(net, X0, fp_tol, 1e-3),
            )
        )
    return impls


def _search_check(outs: dict[str, Any]) -> dict[str, dict]:
    """Which fixed points each search found (RMS distance 1e-3 counts as the same point)."""
    fp = outs["flexrnn"]
    ours = fp.x[fp.fixed].astype(np.float64)
    limit = 1e-3**2 * FP["n"]

    def matched(A, B):
        if len(B) == 0:
            return np.zeros(len(A), bool)
        return np.array([np.min(np.sum((B - a) ** 2, axis=1)) <= limit for a in A], dtype=bool)

    result = {}
    for key, out in outs.items():
        if key == "flexrnn":
            continue
        theirs = out[0]

        result[key] = {
            "allclose": bool(matched(theirs, ours).all()),
            "flexrnn_fixed_points": int(len(ours)),
            "baseline_fixed_points": int(len(theirs)),
            "baseline_missed_by_flexrnn": int((~matched(theirs, ours)).sum()),
            "flexrnn_missed_by_baseline": int((~matched(ours, theirs)).sum()),
            "flexrnn_stable": int((fp.stable & fp.fixed).sum()),
            "flexrnn_slow_points": int((~fp.fixed).sum()),
        }
    return result


# --------------------------------------------------------------------------------------------
# Section


def _timed(ctx: Context, title: str, make, check) -> dict[str, Any]:
    ctx.log(title)
    return compare(ctx, make, check)


def run(ctx: Context) -> dict[str, Any]:
    """The three workloads (module docstring), each implementation checked, then timed."""
    steps = LYAP["quick_steps"] if ctx.quick else LYAP["steps"]
    iters = FP["iters"] // (4 if ctx.quick else 1)
    results: dict[str, Any] = {
        "lyapunov": {"workload": {**LYAP, "steps": steps}, "by_dtype": {}},
        "adam": {"workload": {**FP, "iters": iters}, "by_dtype": {}},
        "search": {"workload": {**FP}, "by_dtype": {}},
    }
    for dt in DTYPES:
        results["lyapunov"]["by_dtype"][dt] = _timed(
            ctx, f"analysis/lyapunov n={LYAP['n']} k={LYAP['k']} {dt}",
            lambda dt=dt: _lyap_impls(ctx, dt),
            lambda outs, dt=dt: _check_close(outs, LYAP_TOL[dt]),
        )  # fmt: skip
        results["adam"]["by_dtype"][dt] = _timed(
            ctx, f"analysis/adam n={FP['n']} K={FP['K']} {dt}",
            lambda dt=dt: _adam_impls(ctx, dt),
            lambda outs, dt=dt: _adam_check(dt),
        )  # fmt: skip
    # one dtype for the whole search: SciPy's optimiser works in float64 anyway
    t0 = time.perf_counter()
    results["search"]["by_dtype"]["float64"] = _timed(
        ctx, f"analysis/fixed-point search n={FP['n']} K={FP['K']} float64",
        lambda: _search_impls(ctx, "float64"), _search_check,
    )  # fmt: skip
    results["search"]["wall_s"] = time.perf_counter() - t0
    return results


def _table(data: dict[str, Any], check_text) -> list[str]:
    return render_timing_table(data["by_dtype"], check_text, check_header="check") + (
        render_cpu_share(data["by_dtype"])
    )


def _diff_text(c: dict[str, Any]) -> str:
    verdict = "agree" if c["allclose"] else "**DIFFER**"
    return f"{verdict} (max abs diff {c['max_abs_diff']:.1e} ≤ {c['atol']:g})"


def _search_text(c: dict[str, Any]) -> str:
    return (
        f"{c['baseline_fixed_points']} fixed points, "
        f"{c['baseline_missed_by_flexrnn']} missed by flexrnn; flexrnn "
        f"{c['flexrnn_fixed_points']} ({c['flexrnn_stable']} stable; "
        f"{c['flexrnn_missed_by_baseline']} missed by SciPy) + {c['flexrnn_slow_points']} slow"
    )


def render(data: dict[str, Any], ctx: Context) -> list[str]:
    ly, ad, se = data["lyapunov"], data["adam"], data["search"]
    w = ly["workload"]
    lines = [
        f"### Lyapunov spectrum: n={w['n']}, k={w['k']}, {w['steps']} steps",
        "",
        f"`RateRNN.random({w['n']}, 1, 1, tau=1, dt={w['dt']})` at gain {w['g']} (chaotic), "
        "started on the attractor (after 20 tau); the k largest exponents by the QR method, "
        "a QR every step. The NumPy version advances the tangent vectors Q (k×n) as "
        "`(1-a) Q + a g (Q * phi'(x)) @ W.T` and calls `np.linalg.qr` each step; the "
        "diagnostic reference forms the n×n Jacobian each step. *Check*: the exponents "
        "(per step) agree with the C++'s.",
        "",
    ]
    lines += _table(ly, _diff_text)
    fp64 = ly["by_dtype"]["float64"]["timings"]["flexrnn"]["median_s"]
    lines += [
        f"C++ float64: {fmt_time(fp64 / w['steps'])} per step "
        f"({2 * w['k'] * w['n'] ** 2 / (fp64 / w['steps']) / 1e9:.1f} GFLOP/s in the tangent "
        "product `Q J^T`, 2·k·n² flop per step; one gain runs on one thread).",
        "",
    ]
    wa = ad["workload"]
    lines += [
        f"### Minimising q: n={wa['n']}, {wa['K']} states, {wa['iters']} Adam steps",
        "",
        f"`RateRNN.random({wa['n']}, 3, 1, g={wa['g']}, tau={wa['tau']:g}, dt=1)` at zero "
        "input; initial states from a run of the network plus noise (std 0.1). Batched Adam "
        "on q = ½|F(x) - x|², every state its own moments (lr 0.01), in C++ (chunks of 16 "
        "states on the threads) and in NumPy (all states at once; the gradient "
        "`(J - I)^T (F(x) - x)` by products, no Jacobians). *Check*: the states after "
        f"{FP['check_iters']} steps agree (later, Adam's sign-like steps amplify rounding "
        "differences between the two).",
        "",
    ]
    lines += _table(ad, _diff_text)
    lines += [
        f"### Whole fixed-point search: n={wa['n']}, {wa['K']} initial states",
        "",
        "The same network and initial states. `fr.analysis.fixed_points(net, x_init=X0)`: "
        "2000 Adam steps in C++, Levenberg-Marquardt refinement of the states with "
        "q < 1e-3, de-duplication, Jacobian eigenvalues, fixed (q ≤ 1e-16) and slow points. "
        "The SciPy search is what a user of SciPy would write: `scipy.optimize.minimize(q, "
        'jac=True, method="L-BFGS-B")` from each initial state in float64 (gtol 1e-12), '
        "keeping q ≤ 1e-16, the same de-duplication (RMS distance 1e-3) and eigenvalues. "
        "*Check*: the fixed points each search found that the other did not.",
        "",
    ]
    lines += _table(se, _search_text)
    return lines


SECTION = Section("analysis", "Dynamics analysis: Lyapunov spectra and fixed points", run, render)
