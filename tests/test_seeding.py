"""The seed knob: MANIFOLD_COURSE_SEED_OFFSET moves every generator, grading ignores it, no bare seeding is left."""

import io
import re
import tokenize
from pathlib import Path

import numpy as np
import pytest
import torch

from manifold_course import seeding
from manifold_course.seeding import course_seed, grading_seeds, manual_seed, numpy_rng, seed_everything, torch_generator

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def offset(monkeypatch):
    def set_(k):
        monkeypatch.setenv("MANIFOLD_COURSE_SEED_OFFSET", str(k))
    return set_


def test_offset_zero_keeps_every_seed(offset):
    offset(0)
    assert [course_seed(s) for s in (0, 1, 7, 2**40)] == [0, 1, 7, 2**40]
    assert torch.equal(torch.rand(5, generator=torch_generator(3)), torch.rand(5, generator=torch.Generator().manual_seed(3)))
    assert np.array_equal(numpy_rng(3).random(4), np.random.default_rng(3).random(4))


def test_unset_and_empty_offsets_mean_zero(monkeypatch):
    monkeypatch.delenv("MANIFOLD_COURSE_SEED_OFFSET", raising=False)
    assert seeding.seed_offset() == 0
    monkeypatch.setenv("MANIFOLD_COURSE_SEED_OFFSET", " ")
    assert seeding.seed_offset() == 0


def test_an_offset_moves_every_helper(offset):
    offset(0)
    base = (seed_everything(0).random(), torch.rand(1).item(), np.random.rand(), torch.rand(1, generator=torch_generator(5)).item(),
            numpy_rng(5).random())
    offset(1)
    moved = (seed_everything(0).random(), torch.rand(1).item(), np.random.rand(), torch.rand(1, generator=torch_generator(5)).item(),
             numpy_rng(5).random())
    assert all(a != b for a, b in zip(base, moved))
    offset(1)
    manual_seed(2)
    a = torch.rand(3)
    manual_seed(2)
    assert torch.equal(a, torch.rand(3)), "the same seed and offset give the same numbers"


def test_offsets_keep_seeds_of_one_chapter_apart(offset):
    """s + k would make offset 1's seed 0 equal offset 0's seed 1: the hash keeps all of them distinct."""
    seeds = {}
    for k in range(0, 5):
        offset(k)
        for s in range(0, 5):
            seeds[(k, s)] = course_seed(s)
    assert len(set(seeds.values())) == len(seeds)
    assert all(0 <= v < 2**32 for v in seeds.values())


def test_negative_offsets_work_and_differ_from_positive(offset):
    offset(-3)
    neg = course_seed(0)
    offset(3)
    assert neg != course_seed(0)


def test_grading_ignores_the_offset(offset):
    offset(5)
    moved = course_seed(4)
    with grading_seeds():
        assert course_seed(4) == 4 and seeding.seed_offset() == 0
        with grading_seeds():
            assert course_seed(4) == 4
        assert course_seed(4) == 4
    assert course_seed(4) == moved != 4


def test_check_draws_the_same_reference_under_any_offset(offset):
    """A learner's function seeds its own generator with the seed it is given; the reference (library code, which
    seeds through the helpers) must draw the same numbers, whatever the offset."""
    from manifold_course.grading import Case, Exercise
    from manifold_course.grading.check import run_exercise

    def reference(n, seed):
        return torch.randn(n, generator=torch_generator(seed))

    def cases(rng):
        yield Case((5, 3))
        yield Case((7, int(rng.integers(100))))

    ex = Exercise("test.seeded_draw", "seeded draw", cases=cases, reference=reference)

    def learner(n, seed):
        return torch.randn(n, generator=torch.Generator().manual_seed(seed))

    for k in (0, 3):
        offset(k)
        assert run_exercise(ex, learner).status == "passed"
    assert course_seed(3) != 3, "the offset is back in force after the check"


@pytest.mark.parametrize("bad", ["x", "1.5", "two"])
def test_a_bad_offset_says_what_to_write(monkeypatch, bad):
    monkeypatch.setenv("MANIFOLD_COURSE_SEED_OFFSET", bad)
    with pytest.raises(ValueError, match="MANIFOLD_COURSE_SEED_OFFSET must be an integer"):
        course_seed(0)


def test_a_bad_thread_count_says_what_to_write(monkeypatch):
    monkeypatch.setenv("MANIFOLD_COURSE_THREADS", "many")
    with pytest.raises(ValueError, match="MANIFOLD_COURSE_THREADS must be a whole number"):
        seed_everything(0)


def test_negative_seeds_are_refused():
    with pytest.raises(ValueError, match="non-negative"):
        course_seed(-1)


def test_meta_device_needs_no_generator():
    assert torch_generator(0, "meta") is None
    assert torch.randn(3, generator=torch_generator(0, "meta"), device="meta").shape == (3,)


# ---------------------------------------------------------------- no bare seeding left
BARE = re.compile(r"(?<![\w.])(torch\.manual_seed|np\.random\.seed|random\.seed)\(|"
                  r"\.manual_seed\(|default_rng\(|RandomState\(|random_state=(?!course_seed)")
# Grading draws its cases from the grading seed (the instructor's --seed), not from the course's offset.
# check.py fixes the global random state before each property (restored afterwards), so that a grading child and
# the grader's replay of its answers see the same draws.
EXEMPT = {"manifold_course/seeding.py", "manifold_course/grading/exercise.py", "manifold_course/grading/check.py"}
EXEMPT_DIRS = ("manifold_course/checks/",)


def _code_lines(path: Path):
    """(line number, code) of the lines outside comments, multi-line strings and solution regions (learner code)."""
    text = path.read_text()
    skip = set()
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        if tok.type == tokenize.STRING and tok.start[0] != tok.end[0]:
            skip.update(range(tok.start[0], tok.end[0] + 1))
    in_solution = False
    for i, line in enumerate(text.splitlines(), 1):
        if "### BEGIN SOLUTION" in line:
            in_solution = True
        if "### END SOLUTION" in line:
            in_solution = False
        code = line.split("#", 1)[0]
        if in_solution or i in skip or not code.strip():
            continue
        yield i, code


def _sources():
    for folder in ("manifold_course", "kernels", "chapters", "solutions"):
        for p in sorted((ROOT / folder).rglob("*.py")):
            rel = p.relative_to(ROOT).as_posix()
            if rel in EXEMPT or rel.startswith(EXEMPT_DIRS) or ".ipynb_checkpoints" in rel:
                continue
            yield p, rel


def test_every_generator_goes_through_seeding():
    bad = [f"{rel}:{i}: {code.strip()}" for p, rel in _sources() for i, code in _code_lines(p) if BARE.search(code)]
    assert not bad, ("seed through manifold_course.seeding (torch_generator, numpy_rng, manual_seed, course_seed) so "
                     "that MANIFOLD_COURSE_SEED_OFFSET moves it:\n  " + "\n  ".join(bad))


def test_the_bare_seed_detector_finds_what_it_should():
    for line in ("g = torch.Generator().manual_seed(2)", "torch.manual_seed(0)", "rng = np.random.default_rng(3)",
                 "np.random.seed(1)", "KMeans(random_state=0)", "random.seed(4)"):
        assert BARE.search(line), line
    for line in ("g = torch_generator(2)", "manual_seed(0)", "rng = numpy_rng(3)", "KMeans(random_state=course_seed(0))"):
        assert not BARE.search(line), line
