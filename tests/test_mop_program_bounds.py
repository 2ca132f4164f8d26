"""The compiled terminal programs handed to the core are checked before any of them is read
(a malformed program used to read outside its arrays)."""

import flexrnn as fr
import numpy as np
import pytest
from flexrnn import _core
from flexrnn.mop.terminal import compile_sets

X = np.array([[0.5, -0.5], [2.0, 0.0]])


def _program(*sets):
    return compile_sets(list(sets), X.shape[1])


def test_a_valid_program_evaluates():
    program, custom = _program(fr.mop.Threshold(0, 1.0), fr.mop.Custom(lambda s: s[:, 0] > 1))
    assert _core.mop_terminal(program, X, 1, custom).tolist() == [False, True]


def test_program_starts_that_decrease_are_rejected_before_code_is_read():
    program, custom = _program(fr.mop.Threshold(0, 1.0), fr.mop.Threshold(1, 1.0))
    # program 0 would run over code[0:1000): far past the end of code
    program["start"] = np.array([0, 1000, len(program["code"])], np.int32)
    with pytest.raises(ValueError, match="start must not decrease"):
        _core.mop_terminal(program, X, 0, custom)


@pytest.mark.parametrize("start", [[[0, 1]], np.int32(0)])
def test_program_starts_must_be_one_dimensional(start):
    program, custom = _program(fr.mop.Threshold(0, 1.0))
    program["start"] = np.array(start, np.int32)
    with pytest.raises(ValueError, match="start and kind must be 1-d"):
        _core.mop_terminal(program, X, 0, custom)


@pytest.mark.parametrize("index", [-1, -(2**40), 1, 2**40])
def test_custom_atoms_without_a_predicate_are_rejected(index):
    program, custom = _program(fr.mop.Custom(lambda s: s[:, 0] > 0))
    program["index"][0, 0] = index
    with pytest.raises(ValueError, match=f"custom atom {index} has no predicate"):
        _core.mop_terminal(program, X, 0, custom)


def test_custom_atoms_with_a_negative_index_are_rejected_in_a_rollout():
    env = fr.mop.RNNEnv.random(n=6, n_bits=2, terminal=fr.mop.Custom(lambda s: s[:, 0] > 9),
                               seed=0)  # fmt: skip
    agent = fr.mop.MOPAgent(env, hidden=4, seed=0)
    program, custom = env.programs()
    program["index"][0, 0] = -1
    with pytest.raises(ValueError, match="custom atom -1 has no predicate"):
        _core.mop_epoch(env.kernel_env([env]), agent._options(0), program, None, custom,
                        agent.theta[None], np.zeros((1, 2, env.dim)), np.zeros((1, 2), np.int64),
                        3, np.zeros(1, np.uint64), 0, None)  # fmt: skip
