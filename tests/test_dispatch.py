"""Runtime CPU dispatch: the portable build picks the compiled level the CPU supports."""

import importlib.machinery
import json
import os
import shutil
import subprocess
import sys
from types import SimpleNamespace

import flexrnn as fr
import numpy as np
import pytest
from flexrnn import _dispatch

V2 = {"cx16", "lahf_lm", "popcnt", "sse4_1", "sse4_2", "ssse3", "sse", "sse2", "pni"}
V3 = V2 | {"avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "abm", "movbe", "xsave"}
V4 = V3 | {"avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"}


def test_supported_levels_are_those_whose_features_are_all_present():
    assert _dispatch.supported_levels(frozenset(V4)) == ["x86-64-v2", "x86-64-v3", "x86-64-v4"]
    assert _dispatch.supported_levels(frozenset(V3)) == ["x86-64-v2", "x86-64-v3"]
    # AVX-512 without its VL extension (first Xeon Phi) is not x86-64-v4
    assert _dispatch.supported_levels(frozenset(V4 - {"avx512vl"})) == ["x86-64-v2", "x86-64-v3"]
    # AVX2 without FMA is not x86-64-v3; without SSE4.2 nothing is supported
    assert _dispatch.supported_levels(frozenset(V4 - {"fma"})) == ["x86-64-v2"]
    assert _dispatch.supported_levels(frozenset(V4 - {"sse4_2"})) == []
    assert _dispatch.supported_levels(None) == []


def test_cpu_flags_are_read_from_the_flags_line_of_cpuinfo(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: X\nflags\t\t: fpu sse4_2 avx2\n\nprocessor\t: 1")
    assert _dispatch.cpu_flags(str(info)) == frozenset({"fpu", "sse4_2", "avx2"})
    assert _dispatch.cpu_flags(str(tmp_path / "missing")) is None


def test_compiled_levels_are_the_level_folders_holding_an_extension(tmp_path):
    suffix = importlib.machinery.EXTENSION_SUFFIXES[0]
    for level in ("x86-64-v4", "x86-64-v2"):
        (tmp_path / level).mkdir()
        (tmp_path / level / ("_core" + suffix)).write_bytes(b"")
    (tmp_path / "x86-64-v3").mkdir()  # a folder without its extension is no level
    found = _dispatch.compiled_levels(tmp_path)
    assert list(found) == ["x86-64-v2", "x86-64-v4"]  # lowest first
    assert found["x86-64-v4"] == tmp_path / "x86-64-v4" / ("_core" + suffix)
    assert _dispatch.compiled_levels(tmp_path / "missing") == {}


ALL = ["x86-64-v2", "x86-64-v3", "x86-64-v4"]


def test_the_chosen_level_is_the_best_compiled_one_the_cpu_supports():
    assert _dispatch.choose_level(ALL, frozenset(V4)) == "x86-64-v4"
    assert _dispatch.choose_level(ALL, frozenset(V3)) == "x86-64-v3"
    assert _dispatch.choose_level(["x86-64-v2", "x86-64-v3"], frozenset(V4)) == "x86-64-v3"
    # features unknown: the lowest level compiled
    assert _dispatch.choose_level(ALL, None) == "x86-64-v2"


def test_the_environment_variable_caps_the_level():
    assert _dispatch.choose_level(ALL, frozenset(V4), "x86-64-v2") == "x86-64-v2"
    assert _dispatch.choose_level(ALL, frozenset(V4), "x86-64-v3") == "x86-64-v3"
    assert _dispatch.choose_level(ALL, frozenset(V4), "") == "x86-64-v4"


def test_a_level_the_cpu_lacks_is_refused_with_a_clear_error():
    with pytest.raises(ImportError, match="FLEXRNN_CPU_LEVEL='x86-64-v4': this CPU does not"):
        _dispatch.choose_level(ALL, frozenset(V3), "x86-64-v4")
    with pytest.raises(ImportError, match="FLEXRNN_CPU_LEVEL='avx9': expected one of"):
        _dispatch.choose_level(ALL, frozenset(V4), "avx9")
    # a CPU below every compiled level (no SSE4.2) imports nothing rather than crash
    with pytest.raises(ImportError, match="supports none of the compiled levels"):
        _dispatch.choose_level(ALL, frozenset(V2 - {"sse4_2"}))


def test_the_loaded_core_is_the_one_flexrnn_core_everywhere():
    from flexrnn import _core

    assert sys.modules["flexrnn._core"] is _core is fr._core
    # process-wide state lives in that one module
    before = fr.get_num_threads()
    try:
        fr.set_num_threads(1)
        assert _core.get_num_threads() == 1
    finally:
        fr.set_num_threads(before)


def test_config_reports_the_level_in_use_and_the_levels_compiled():
    info = fr.config()
    levels = info["cpu_levels"]
    assert isinstance(levels, list)
    if levels:  # the portable build: the best compiled level this CPU supports
        supported = _dispatch.supported_levels(_dispatch.cpu_flags())
        usable = [lvl for lvl in levels if lvl in supported]
        cap = os.environ.get("FLEXRNN_CPU_LEVEL")
        if cap:
            usable = [lvl for lvl in usable if lvl <= cap]
        assert info["cpu_level"] == usable[-1]
        assert fr._core.build_level == info["cpu_level"] == info["level"]
        assert info["native"] is False
    else:
        assert info["cpu_level"] in ("native", "default")
        assert info["level"] == info["cpu_level"]


_PROBE = """
import json, numpy as np, flexrnn as fr
net = fr.RateRNN.random(n=64, n_in=3, n_out=2, g=1.5, seed=0, dtype=np.float64)
u = np.random.default_rng(1).standard_normal((30, 5, 3))
out = net.run(u)
trials = type("T", (), {})()
trials.u, trials.target, trials.mask = u, np.zeros((30, 5, 2)), np.ones((30, 5, 2))
loss, grads = fr.train.loss_and_grad(net, trials)
print(json.dumps({"level": fr.config()["cpu_level"], "y": out.y.ravel().tolist(),
                  "loss": float(loss), "gW": np.asarray(grads["W"]).ravel().tolist()}))
"""


def _probe(level=None):
    env = dict(os.environ)
    env.pop("FLEXRNN_CPU_LEVEL", None)
    if level is not None:
        env["FLEXRNN_CPU_LEVEL"] = level
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True, timeout=120
    )
    return proc


def _portable_levels():
    levels = fr.config()["cpu_levels"]
    if not levels:
        pytest.skip("a single-level build (FLEXRNN_NATIVE=ON or non-x86): nothing to dispatch")
    supported = _dispatch.supported_levels(_dispatch.cpu_flags())
    return [lvl for lvl in levels if lvl in supported]


def test_every_level_this_cpu_supports_runs_and_agrees_with_the_others():
    results = {}
    for level in _portable_levels():
        proc = _probe(level)
        assert proc.returncode == 0, proc.stderr
        results[level] = SimpleNamespace(**json.loads(proc.stdout))
        assert results[level].level == level
    base = results[next(iter(results))]
    for r in results.values():
        # FMA and wider packets change the last bits, not the results
        np.testing.assert_allclose(r.y, base.y, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(r.loss, base.loss, rtol=1e-9)
        np.testing.assert_allclose(r.gW, base.gW, rtol=1e-7, atol=1e-12)


def test_a_bad_level_in_the_environment_is_refused_naming_the_variable():
    _portable_levels()
    proc = _probe("x86-64-v9")
    assert proc.returncode != 0
    assert "FLEXRNN_CPU_LEVEL" in proc.stderr


def test_bound_classes_name_flexrnn_core_as_their_module_whichever_level_is_loaded():
    import pickle

    from flexrnn import _core

    classes = [v for v in vars(_core).values() if isinstance(v, type)]
    classes = [v for v in classes if v.__module__ != "builtins"]
    assert classes
    for cls in classes:
        # pickles made on one machine name flexrnn._core, not a level another CPU may lack
        assert cls.__module__ == "flexrnn._core", cls
        assert pickle.loads(pickle.dumps(cls)) is cls


def test_the_extension_exports_only_its_init_function():
    # our functions and the Eigen template instances inside the extension stay local to it
    # (cmake/module.map): nothing of one level can interpose, or be interposed by, other code
    nm = shutil.which("nm")
    if nm is None:
        pytest.skip("no nm (binutils) on this machine")
    from flexrnn import _core

    out = subprocess.run(
        [nm, "-D", "--defined-only", _core.__file__], capture_output=True, text=True, check=True
    ).stdout
    linker_marks = {"_edata", "_end", "__bss_start", "_init", "_fini"}
    names = {line.split()[-1].split("@")[0] for line in out.splitlines() if line.strip()}
    assert names - linker_marks == {"PyInit__core"}
