"""Every chapter, once: under a moved seed and other CPU kernels, so that a claim that holds for one random draw, or
on one processor, only cannot land.

``MANIFOLD_COURSE_SEED_OFFSET`` moves every random number a chapter draws (see manifold_course/seeding.py).
This is CI's one run of each chapter (``./course test``; nbval runs the solution notebooks). It uses offset 4,
which the robust run (``./course test --robust``: offsets 1, 2, 3, and offset 0 under 2 threads and under AVX2
kernels, every chapter and solution) does not, so CI sees a fifth draw of every claim. Offset 0, what a learner
runs, is one draw like the others. The run also limits the matrix kernels to AVX2 (``robust.isa_env``): on an
AVX-512 machine this is the round-off of a CPU without it (most AMD machines), where the same seed trains another
model; elsewhere it changes nothing. Every cell runs even after a failure, so one run names every failing claim.
"""

from pathlib import Path

from notebook_classes import add_notebook_classes, notebook_class

from manifold_course.robust import LONG_WAIT_S, ROOT, Config, configs, isa_env, run_notebook

OFFSET = 4
ISA = "avx2"
CHAPTERS = sorted((ROOT / "chapters").rglob("*.ipynb"))


def test_there_are_chapters():
    assert len(CHAPTERS) >= 10


def _claims_hold_under_a_moved_seed(path: Path, record_property) -> None:
    offset = configs([OFFSET], [])[0]                            # the robust run's own configuration for one offset
    run = run_notebook(str(path), Config(f"{offset.name}, {ISA} kernels", offset.env + isa_env(ISA)))
    # conftest.py lists the suite's slowest cells at the end, from these
    record_property("slowest_cells", [(run.notebook, c.index, c.first_line, c.seconds) for c in run.slowest(3)])
    if run.outside_cells > LONG_WAIT_S:                         # conftest.py names the longest stretch
        record_property("long_wait", (run.notebook, run.outside_cells, *run.longest_wait()))
    problems = [f"code cell {f.index} ({f.first_line}): {f.error}" for f in run.failures]
    if run.crashed:
        problems.append(f"did not finish: {run.crashed}")
    assert not problems, (f"{run.notebook} under seed offset {OFFSET} with {ISA} kernels: a claim held for seed 0 but "
                          "not for another draw; state what holds across seeds and CPUs:\n  " + "\n  ".join(problems))


add_notebook_classes(globals(), [
    notebook_class("TestMovedSeed_", p.relative_to(ROOT / "chapters"), p, "test_claims_hold_under_a_moved_seed",
                   lambda record_property, p=p: _claims_hold_under_a_moved_seed(p, record_property))
    for p in CHAPTERS])
