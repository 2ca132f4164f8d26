"""Benchmark section "nmrnn": one full-batch training step of the NM-RNN study's network on
measure-wait-go (loss, gradient through the QR of U, element-wise clipping at 1, AdamW), the
C++ core against the same model written as researchers write it today in JAX:
``jit(value_and_grad(loss))`` over a ``lax.scan``, with the QR inside the loss, and the same
AdamW in the jitted step (JAX is an optional dependency: ``pip install jax``; the row is
skipped without it).

Workload: NM-RNN N = 100, rank 3, n_mod 5, tau_x 10, tau_z 100, ``parametrize="qr"``, the 40
training trials of ``MeasureWaitGo(channels=3)`` (T = 110), float32 and float64. Both
implementations start from the same parameters; before timing, one step of each is checked:
the loss and the updated parameters agree to the dtype's tolerance.

Second workload: BPTT throughput (``loss_and_grad``, trial-steps per second) of the NM-RNN
(n = 100, rank 3, n_mod 5) and the LSTM (n = 100) against the RateRNN's (n = 100) at
B = 128, T = 100, float32: the models without a dense recurrent GEMM per step against the one
with.
"""

from __future__ import annotations

import importlib.util
from typing import Any

import flexrnn as fr
import numpy as np

from bench.harness import DTYPES, Context, Impl, Section, Target, compare, speed_target
from bench.render import render_cpu_share, render_targets, render_timing_table

TARGET = Target("jax", 3.0)
LR, WEIGHT_DECAY, CLIP = 1e-2, 1e-4, 1.0
NAMES = ("W_z", "B_z", "A_z", "c_z", "U", "V", "B_x", "C")  # the study's trained parameters
STEP_TOLERANCE = {"float32": 1e-3, "float64": 1e-9}  # relative, on loss and parameters


def _setup(dtype: str):
    task = fr.tasks.MeasureWaitGo()
    trials = task.training_set(dtype=dtype)
    net = fr.presets.costacurta2024("NMRNN", n=100, rank=3, n_mod=5, n_in=3, n_out=1, seed=0,
                                    dtype=dtype)  # fmt: skip
    return net, trials


def flexrnn_step(dtype: str):
    """A closure doing one C++ training step on its own copy of the network."""
    net, trials = _setup(dtype)
    opt = fr.train.AdamW(LR, weight_decay=WEIGHT_DECAY)
    params = {k: net.params()[k] for k in NAMES}

    def step():
        loss, grads = fr.train.loss_and_grad(net, trials)
        g = {k: np.clip(grads[k], -CLIP, CLIP) for k in NAMES}
        opt.step(params, g, LR)
        return float(loss), {k: v.copy() for k, v in params.items()}

    return step


def jax_step(dtype: str):
    """The same step in JAX (jit of value_and_grad over lax.scan), on its own copy."""
    import jax

    if dtype == "float64":
        jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    net, trials = _setup(dtype)
    p0 = {k: jnp.asarray(v) for k, v in net.params().items() if k in NAMES}
    fixed = {k: jnp.asarray(getattr(net, k)) for k in ("b_z", "d", "x0", "z0")}
    u = jnp.asarray(trials.u)  # (T, B, 3)
    target = jnp.asarray(trials.target)
    ax, az = net.alpha_x, net.alpha_z

    def loss_fn(p):
        Q = jnp.linalg.qr(p["U"])[0]  # reduced QR, as the study's code
        B = u.shape[1]

        def one(carry, u_t):
            x, z = carry
            z = (1 - az) * z + az * (jnp.tanh(z) @ p["W_z"].T + u_t @ p["B_z"].T + fixed["b_z"])
            s = jax.nn.sigmoid(z @ p["A_z"].T + p["c_z"])
            rec = ((jnp.tanh(x) @ p["V"]) * s) @ Q.T
            x = (1 - ax) * x + ax * (rec + u_t @ p["B_x"].T)
            return (x, z), x @ p["C"].T + fixed["d"]

        x0 = jnp.broadcast_to(fixed["x0"], (B, fixed["x0"].size))
        z0 = jnp.broadcast_to(fixed["z0"], (B, fixed["z0"].size))
        _, y = jax.lax.scan(one, (x0, z0), u)
        return jnp.mean((y - target) ** 2)

    b1, b2, eps = 0.9, 0.999, 1e-8

    @jax.jit
    def train_step(p, m, v, t):
        loss, g = jax.value_and_grad(loss_fn)(p)
        g = jax.tree_util.tree_map(lambda a: jnp.clip(a, -CLIP, CLIP), g)
        t = t + 1
        m = jax.tree_util.tree_map(lambda m_, g_: b1 * m_ + (1 - b1) * g_, m, g)
        v = jax.tree_util.tree_map(lambda v_, g_: b2 * v_ + (1 - b2) * g_ * g_, v, g)

        def update(p_, m_, v_):
            p_ = p_ * (1 - LR * WEIGHT_DECAY)  # decoupled decay first, as fr.train.AdamW
            return p_ - LR * (m_ / (1 - b1**t)) / (jnp.sqrt(v_ / (1 - b2**t)) + eps)

        return loss, jax.tree_util.tree_map(update, p, m, v), m, v, t

    state = {"p": p0, "m": jax.tree_util.tree_map(jnp.zeros_like, p0),
             "v": jax.tree_util.tree_map(jnp.zeros_like, p0), "t": 0}  # fmt: skip

    def step():
        loss, p, m, v, t = train_step(state["p"], state["m"], state["v"], state["t"])
        state.update(p=p, m=m, v=v, t=int(t))
        jax.block_until_ready(p)
        return float(loss), {k: np.asarray(a) for k, a in p.items()}

    return step


def _check(dtype: str):
    tol = STEP_TOLERANCE[dtype]

    def check(outs: dict[str, Any]) -> dict[str, Any]:
        ref_loss, ref_p = outs["flexrnn"]
        result = {}
        for key, (loss, p) in outs.items():
            if key == "flexrnn":
                continue
            diff = max(float(np.max(np.abs(p[k] - ref_p[k])) / np.max(np.abs(ref_p[k])))
                       for k in NAMES)  # fmt: skip
            loss_diff = abs(loss - ref_loss) / abs(ref_loss)
            result[key] = {"allclose": bool(diff <= tol and loss_diff <= tol),
                           "max_rel_param_diff": diff, "rel_loss_diff": loss_diff}  # fmt: skip
        return result

    return check


THROUGHPUT_SHAPE = {"B": 128, "T": 100, "n": 100, "n_in": 3, "n_out": 1}


def _throughput_impls(dtype: str = "float32") -> list[Impl]:
    sh = THROUGHPUT_SHAPE
    rng = np.random.default_rng(0)
    u = rng.standard_normal((sh["T"], sh["B"], sh["n_in"])).astype(dtype)
    target = (0.5 * rng.standard_normal((sh["T"], sh["B"], sh["n_out"]))).astype(dtype)
    trials = fr.tasks.Trials(u, target, np.ones_like(target))
    nets = {
        "flexrnn": (
            "RateRNN",
            fr.RateRNN.random(sh["n"], sh["n_in"], sh["n_out"], g=1.0, dtype=dtype),
        ),  # fmt: skip
        "nmrnn": (
            "NMRNN (rank 3, n_mod 5)",
            fr.NMRNN.random(sh["n"], 3, 5, sh["n_in"], sh["n_out"], dtype=dtype),
        ),  # fmt: skip
        "lstm": ("LSTM", fr.LSTM.random(sh["n"], sh["n_in"], sh["n_out"], dtype=dtype)),
    }
    return [Impl(key, label, lambda net=net: fr.train.loss_and_grad(net, trials)[0])
            for key, (label, net) in nets.items()]  # fmt: skip


def _macs_per_trial_step(key: str) -> int:
    """Multiply-adds of one forward trial-step (the backward pass costs about twice as many
    for every model): recurrent products, input and readout; the transfer functions left out."""
    sh = THROUGHPUT_SHAPE
    n, n_in, n_out, rank, n_mod = sh["n"], sh["n_in"], sh["n_out"], 3, 5
    return {
        "flexrnn": n * n + n * n_in + n * n_out,
        "nmrnn": 2 * n * rank + n_mod * (n_mod + n_in + rank) + n * n_in + n * n_out,
        "lstm": 4 * n * (n + n_in) + n * n_out,  # four gates
    }[key]


def run(ctx: Context) -> dict[str, Any]:
    have_jax = importlib.util.find_spec("jax") is not None
    if not have_jax:
        ctx.log("jax not installed: the JAX row of the nmrnn section is skipped (pip install jax)")
    out: dict[str, Any] = {"by_dtype": {}, "targets": [], "jax": have_jax}
    for dtype in DTYPES:
        ctx.log(f"nmrnn training step, {dtype}")

        def make(dtype=dtype):
            impls = [Impl("flexrnn", "flexrnn (C++ BPTT + NumPy AdamW)", flexrnn_step(dtype))]
            if have_jax:
                impls.append(Impl("jax", "JAX jit(value_and_grad(lax.scan))", jax_step(dtype)))
            return impls

        m = compare(ctx, make, _check(dtype))
        out["by_dtype"][dtype] = m
        if have_jax:
            out["targets"].append(speed_target("nmrnn", "nmrnn_step", "NM-RNN training step",
                                               dtype, TARGET, m))  # fmt: skip
    ctx.log("BPTT throughput at B = 128: NM-RNN and LSTM against the RateRNN")
    out["throughput"] = compare(ctx, _throughput_impls, lambda outs: {})
    return out


def render(data: dict[str, Any], ctx: Context) -> list[str]:
    lines = [
        "One full-batch training step of the NM-RNN study's network on measure-wait-go "
        "(N = 100, rank 3, n_mod 5, QR-parametrised U; 40 trials × 110 steps; loss, gradient, "
        "clipping at 1, AdamW). Each step is checked against the C++ one before timing "
        "(relative difference of the loss and the updated parameters).",
        "",
    ]
    if not data.get("jax"):
        lines += ["JAX was not installed: only the C++ step was timed (`pip install jax`).", ""]

    def text(c):
        return f"{'ok' if c['allclose'] else 'MISMATCH'} (params {c['max_rel_param_diff']:.1e})"

    lines += render_timing_table(data["by_dtype"], text, check_header="step check")
    lines += render_cpu_share(data["by_dtype"])
    if data["targets"]:
        lines += render_targets(data["targets"], {"jax": "JAX"})
    if "throughput" in data:
        sh, m = THROUGHPUT_SHAPE, data["throughput"]
        trial_steps = sh["B"] * sh["T"]
        lines += [
            f"BPTT throughput (`loss_and_grad`, float32, B = {sh['B']}, T = {sh['T']}, "
            f"n = {sh['n']}): trial-steps per second, each model's time over the "
            "RateRNN's, its multiply-adds per forward trial-step (products only) over the "
            "RateRNN's, and the time per multiply-add over the RateRNN's (above 1: the model "
            "does its arithmetic less efficiently than the dense GEMM of the RateRNN). The "
            "NM-RNN's products are a tenth of the RateRNN's, so its time is set by the "
            "element-wise work of its n units (tanh, leak, their adjoints), which equals the "
            "RateRNN's.",
            "",
            "| model | median time | trial-steps / s | time / RateRNN's | multiply-adds / "
            "RateRNN's | time per multiply-add / RateRNN's |",
            "|---|---|---|---|---|---|",
        ]
        base_macs = _macs_per_trial_step("flexrnn")
        for key, tm in m["timings"].items():
            ratio = 1.0 if key == "flexrnn" else m["speedup_of_cpp"][key]
            work = _macs_per_trial_step(key) / base_macs
            lines.append(
                f"| {tm['label']} | {tm['median_s'] * 1e3:.1f} ms | "
                f"{trial_steps / tm['median_s']:.3g} | {ratio:.2f} | {work:.2f} | "
                f"{ratio / work:.2f} |"
            )
        lines += [""] + render_cpu_share({"float32": m})
    return lines


SECTION = Section(
    "nmrnn",
    "NM-RNN training step (MWG) against JAX",
    run,
    render,
    check_text="the JAX step's loss and updated parameters agree with the C++ step's",
    impl_names={"jax": "JAX"},
)
