"""Smoke test of an installed flexrnn (a wheel in a fresh environment): import, config, a run,
a gradient. Run it from outside the source tree's python/ folder (CI: .ci/run, cibuildwheel)."""

from pathlib import Path

import flexrnn as fr
import numpy as np

info = fr.config()
print("flexrnn", fr.__version__, "from", fr.__file__)
print({k: info[k] for k in ("cpu_level", "cpu_levels", "native", "simd", "openmp", "threads")})
source_tree = Path(__file__).resolve().parent.parent / "python"
assert source_tree not in Path(fr.__file__).resolve().parents, "imported the source tree"
if info["cpu_levels"]:  # the portable x86-64 build: the CPU's best compiled level is in use
    assert info["cpu_level"] in info["cpu_levels"], info

net = fr.RateRNN.random(n=64, n_in=3, n_out=2, g=1.5, seed=0)
u = np.random.default_rng(1).standard_normal((50, 8, 3)).astype(np.float32)
out = net.run(u)
assert out.y.shape == (50, 8, 2) and np.isfinite(out.y).all()


class Trials:
    u = u
    target = np.zeros((50, 8, 2), np.float32)
    mask = np.ones((50, 8, 2), np.float32)


loss, grads = fr.train.loss_and_grad(net, Trials)
assert np.isfinite(loss) and set(grads) >= {"W"}
assert all(np.isfinite(g).all() for g in grads.values())
print(f"run and gradient: loss {loss:.6f}, |dW| {np.linalg.norm(grads['W']):.6f}")
