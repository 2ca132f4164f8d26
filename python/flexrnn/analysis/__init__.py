"""Analysis of trained networks: dimensionality and representational geometry.

>>> import flexrnn as fr
>>> fr.analysis.participation_ratio(out.x)          # states (T, B, n) or (samples, n)
>>> fr.analysis.svcca(out_a.x, out_b.x).distance     # 0 for the same representation
>>> D = fr.analysis.distance_matrix([o.x for o in outs], metric="svcca")
>>> fr.analysis.mds(D, dims=2).embedding, fr.analysis.silhouette_score(D, labels)
"""

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
    silhouette_samples,
    silhouette_score,
    svcca,
)

__all__ = [
    "CCAResult",
    "MDSResult",
    "SVCCAResult",
    "cca",
    "distance_matrix",
    "linear_cka",
    "mds",
    "participation_ratio",
    "procrustes_distance",
    "silhouette_samples",
    "silhouette_score",
    "svcca",
]
