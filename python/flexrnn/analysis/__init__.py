"""Analysis of trained networks: dimensionality and representational geometry.

>>> import flexrnn as fr
>>> fr.analysis.participation_ratio(out.x)          # states (T, B, n) or (samples, n)
>>> fr.analysis.svcca(out_a.x, out_b.x).distance     # 0 for the same representation
>>> D = fr.analysis.distance_matrix([o.x for o in outs], metric="svcca")
>>> fr.analysis.mds(D, dims=2).embedding, fr.analysis.silhouette_score(D, labels)
>>> fr.analysis.silhouette_score(D, labels, method="rows")   # rows of D as feature vectors
>>> fr.analysis.topology(net, fr.analysis.decision_inputs()).descriptor  # kNN of fixed points
>>> fr.analysis.svcca_protocol(nets).distances      # the learning-rule study's SVCCA inputs
>>> fp = fr.analysis.fixed_points(net, u_const, n_init=100)  # .x, .eigenvalues, .stable, .plot()
>>> fr.analysis.lyapunov_spectrum(net, k=10, gain=[0.5, 2.0, 3.0])  # (G, k) per tau
>>> fr.analysis.gain_sweep(net, np.linspace(0.5, 3, 11)).plot()  # the transition to chaos
>>> br = fr.analysis.continuation(net, np.linspace(0.5, 2, 16))  # .branches, .bifurcations
>>> fr.analysis.performance_vs_gain(net, task, np.linspace(0.5, 2, 7)).plot()
"""

from .continuation import Bifurcation, Branch, Continuation, continuation
from .fixed_points import FixedPoints, LineAttractor, fixed_points, line_attractor
from .geometry import (
    CCAResult,
    MDSResult,
    SVCCAResult,
    cca,
    distance_matrix,
    linear_cka,
    mds,
    participation_ratio,
    procrustes_distance,
    row_distances,
    silhouette_samples,
    silhouette_score,
    svcca,
)
from .lyapunov import lyapunov_spectrum
from .performance import PerformanceVsGain, performance_vs_gain
from .regimes import GainSweep, Regime, gain_sweep, regime
from .topology import (
    SVCCAProtocol,
    Topology,
    context_inputs,
    decision_inputs,
    svcca_protocol,
    topology,
    topology_distances,
)

__all__ = [
    "Bifurcation",
    "Branch",
    "CCAResult",
    "Continuation",
    "FixedPoints",
    "GainSweep",
    "LineAttractor",
    "MDSResult",
    "PerformanceVsGain",
    "Regime",
    "SVCCAProtocol",
    "SVCCAResult",
    "Topology",
    "cca",
    "continuation",
    "context_inputs",
    "decision_inputs",
    "distance_matrix",
    "fixed_points",
    "gain_sweep",
    "line_attractor",
    "linear_cka",
    "lyapunov_spectrum",
    "mds",
    "participation_ratio",
    "performance_vs_gain",
    "procrustes_distance",
    "regime",
    "row_distances",
    "silhouette_samples",
    "silhouette_score",
    "svcca",
    "svcca_protocol",
    "topology",
    "topology_distances",
]
