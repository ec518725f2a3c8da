"""The ``manifold-course`` command: doctor, lab, grade, progress, release, bench."""

from __future__ import annotations

import argparse
import importlib.metadata as md
import json
import os
import platform
import shutil
import sys
from pathlib import Path

from manifold_course.workspace import prepare_workspace  # noqa: F401 - the lab's workspace (re-exported)

# (distribution, import name, extra that installs it, what needs it)
DEPENDENCIES = [
    ("torch", "torch", None, "everything"),
    ("numpy", "numpy", None, "everything"),
    ("scipy", "scipy", None, "chapters"),
    ("scikit-learn", "sklearn", None, "data sets (digits, swiss roll)"),
    ("matplotlib", "matplotlib", None, "plots"),
    ("ipywidgets", "ipywidgets", None, "sliders"),
    ("ipykernel", "ipykernel", None, "notebooks"),
    ("tqdm", "tqdm", None, "progress bars"),
    ("ripser", "ripser", None, "persistent homology"),
    ("networkx", "networkx", None, "graphs"),
    ("jupytext", "jupytext", None, "py:percent notebooks"),
    ("nbclient", "nbclient", None, "grading notebooks"),
    ("platformdirs", "platformdirs", None, "the progress store"),
    ("jupyterlab", "jupyterlab", "lab", "manifold-course lab"),
    ("triton", "triton", "kernels", "Triton kernels (Volume 6)"),
    ("numba", "numba", "kernels", "Numba-CUDA kernels (Volume 6)"),
    ("pytest", "pytest", "dev", "the test suite"),
    ("pytest-xdist", "xdist", "dev", "parallel tests"),
    ("nbval", "nbval", "dev", "notebook tests"),
]


def course_root() -> Path | None:
    """The clone that holds chapters/: the working directory or one of its parents, else the package's checkout."""
    for base in [Path.cwd(), *Path.cwd().parents, Path(__file__).resolve().parents[1]]:
        if (base / "chapters").is_dir() and (base / "solutions").is_dir():
            return base
    return None


def _version(dist: str) -> str | None:
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return None


# ---------------------------------------------------------------- doctor
def cmd_doctor(args: argparse.Namespace) -> int:
    print(f"manifold-course {_version('manifold-course') or '(not installed: pip install -e .)'}")
    print(f"python {platform.python_version()} on {platform.system()} {platform.machine()}, {os.cpu_count()} CPU cores")
    missing_core, missing_extra = [], {}
    for dist, _mod, extra, why in DEPENDENCIES:
        v = _version(dist)
        print(f"  {dist:<14} {v or 'MISSING':<14} {why}")
        if v is None:
            if extra is None:
                missing_core.append(dist)
            else:
                missing_extra.setdefault(extra, []).append(dist)
    try:
        import torch

        gpu = torch.cuda.is_available()
        print(f"torch {torch.__version__}: {'CUDA ' + str(torch.version.cuda) + ' build' if torch.version.cuda else 'CPU build'}, "
              f"{torch.get_num_threads()} threads")
        if gpu:
            print(f"GPU mode: {torch.cuda.get_device_name(0)} (kernels run natively; demos may scale up)")
        else:
            print("CPU mode: no CUDA GPU visible. Every chapter and exercise runs on the CPU; Triton kernels run "
                  "under the Triton interpreter and Numba-CUDA kernels under the CUDA simulator.")
    except Exception as exc:  # noqa: BLE001
        print(f"torch does not import: {exc}")
        missing_core.append("torch")
    from manifold_course.grading import progress
    from manifold_course.grading.registry import all_exercises, unavailable_chapters

    try:
        n_ex = len(all_exercises())
        print(f"exercises: {n_ex} can be graded here")
        for chapter, why in unavailable_chapters().items():
            print(f"  chapter '{chapter}' cannot be graded: {why}")
    except Exception as exc:  # noqa: BLE001 - doctor reports, never crashes
        print(f"the exercise registry failed to load: {exc}")
    print(f"progress store: {progress.store_path()} (override with MANIFOLD_COURSE_PROGRESS)")
    root = course_root()
    print(f"course folder: {root or 'not found (run from a clone of the course)'}")
    if root is not None:
        ws = root / "my_work"
        print(f"your workspace: {ws} ({'exists' if ws.is_dir() else 'created by manifold-course lab on first use'})")
    ok = True
    if missing_core:
        ok = False
        print(f"\nMISSING required packages: {', '.join(missing_core)}\n  fix: pip install -e .   (or ./course setup)")
    for extra, dists in missing_extra.items():
        print(f"\nmissing optional packages for '{extra}': {', '.join(dists)}\n  fix: pip install -e '.[{extra}]'")
    print("\nall required packages are present" if ok else "")
    return 0 if ok else 1


# ---------------------------------------------------------------- lab
LAB_SETTINGS = {
    # a py:percent chapter opens as a notebook, not in the text editor
    "@jupyterlab/docmanager-extension:plugin": {"defaultViewers": {"python": "Jupytext Notebook"}},
    # the course runs offline: no news or update checks (and no pop-up asking about them)
    "@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": False},
}


def write_lab_settings(prefix: Path) -> Path:
    """Make JupyterLab open a py:percent file as a notebook (Jupytext Notebook as the default viewer)."""
    target = prefix / "share" / "jupyter" / "lab" / "settings" / "overrides.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    current = {}
    if target.exists():
        try:
            current = json.loads(target.read_text())
        except ValueError:
            current = {}
    current.update(LAB_SETTINGS)
    target.write_text(json.dumps(current, indent=2))
    return target


def cmd_lab(args: argparse.Namespace) -> int:
    root = course_root()
    if root is None:
        print("manifold-course lab: run it inside a clone of the course (the folder with chapters/ and exercises/)")
        return 2
    workspace = Path(args.workspace).resolve() if args.workspace else root / "my_work"
    print(prepare_workspace(root, workspace).summary())
    write_lab_settings(Path(sys.prefix))
    if shutil.which("jupyter-lab") is None and _version("jupyterlab") is None:
        print("JupyterLab is not installed: pip install -e '.[lab]'   (or ./course lab)")
        return 1
    # rooted in the workspace: what the learner opens and saves are copies, never the course's tracked files
    cmd = [sys.executable, "-m", "jupyterlab", f"--ServerApp.root_dir={workspace}"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    cmd += args.jupyter_args
    print("starting:", " ".join(cmd))
    if args.dry_run:
        return 0
    sys.stdout.flush()  # execv replaces the process: unflushed output would be lost
    os.execv(sys.executable, cmd)
    return 0  # not reached


# ---------------------------------------------------------------- grade
def cmd_grade(args: argparse.Namespace) -> int:
    from concurrent.futures import ThreadPoolExecutor

    from manifold_course.grading.isolated import isolation_name
    from manifold_course.grading.notebook import format_table, grade_notebook

    paths = [Path(nb) for nb in args.notebooks]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        print(f"no such notebook: {', '.join(missing)}")
        return 2
    # the grading sandbox sees none of the submissions (it gets the code it runs on its stdin) and not the outputs
    hide = sorted({p.resolve() for p in paths})
    for out in (args.report, args.feedback):
        if out:
            hide.append(Path(out).resolve())
    jobs = max(1, args.jobs or (os.cpu_count() or 1))
    print(f"grading {len(paths)} notebook(s), {jobs} at a time; isolation: {isolation_name()}", file=sys.stderr)
    with ThreadPoolExecutor(max_workers=jobs) as pool:  # each grading child is a process: threads only wait
        reports = list(pool.map(lambda p: grade_notebook(p, timeout=args.timeout, seed=args.seed,
                                                         assignment=args.assignment, hide=hide,
                                                         exercise_timeout=args.exercise_timeout), paths))
    # every child is dead here: only now are the table, the feedback and the report written
    names = _submission_names(paths)
    print(format_table(reports, names))
    if args.feedback:
        out = Path(args.feedback)
        out.mkdir(parents=True, exist_ok=True)
        for name, rep in zip(names, reports):
            (out / (name.replace("/", "__") + ".feedback.txt")).write_text(format_table([rep], [name]) + "\n")
        print(f"feedback files written to {out}/")
    if args.report:
        Path(args.report).write_text(json.dumps([dict(r.to_dict(), name=n) for n, r in zip(names, reports)], indent=1))
        print(f"report written to {args.report}")
    return 0


def _submission_names(paths: list[Path]) -> list[str]:
    """Each submission's path relative to what all of them share (no instructor's absolute path), without suffix."""
    parts = [p.resolve().with_suffix("").parts for p in paths]
    common = 0
    if len(parts) > 1:
        while all(len(q) > common + 1 for q in parts) and len({q[common] for q in parts}) == 1:
            common += 1
    else:
        common = len(parts[0]) - 1
    return ["/".join(q[common:]) for q in parts]


# ---------------------------------------------------------------- progress
def cmd_progress(args: argparse.Namespace) -> int:
    from manifold_course.grading import progress
    from manifold_course.grading.registry import all_exercises, chapter_of

    by_chapter: dict[str, list[str]] = {}
    for ex_id, ex in all_exercises().items():
        by_chapter.setdefault(ex.chapter, []).append(ex_id)
    chapters = [(chapter_of(key), ids) for key, ids in by_chapter.items()]
    print(progress.format_progress(progress.load()["exercises"], chapters, verbose=args.verbose)
          + f"  (store: {progress.store_path()})")
    return 0


# ---------------------------------------------------------------- release
def cmd_release(args: argparse.Namespace) -> int:
    from manifold_course.grading.release import ReleaseError, release

    root = course_root()
    if root is None:
        print("manifold-course release: run it inside a clone of the course")
        return 2
    try:
        plan = release(root, check_only=args.check, only=[Path(p) for p in args.solutions] or None)
    except ReleaseError as exc:
        print(f"release failed: {exc}")
        return 1
    if args.check:
        if plan.stale:
            print("exercises/ is stale; run `manifold-course release`. Stale files:")
            for f in plan.stale:
                print(f"  {f.relative_to(root)}")
            return 1
        print("exercises/ is up to date with solutions/")
        return 0
    print(f"wrote {len(plan.written)} files" + "".join(f"\n  {f.relative_to(root)}" for f in plan.written))
    return 0


# ---------------------------------------------------------------- bench
def cmd_bench(args: argparse.Namespace) -> int:
    import torch

    if not torch.cuda.is_available():
        print("manifold-course bench: no CUDA GPU here, so GPU performance cannot be measured. "
              "Kernels are still checked for correctness on the CPU by the test suite.")
        return 0
    from manifold_course.systems import bench

    return bench.main(json_path=args.json, plot_path=args.plot, quick=args.quick)


# ---------------------------------------------------------------- gpu-check
def cmd_gpu_check(args: argparse.Namespace) -> int:
    from manifold_course.systems import gpu_check

    return gpu_check.main(args.out, test_timeout=args.test_timeout)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="manifold-course", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("doctor", help="versions, CPU or GPU mode, what is missing and how to fix it").set_defaults(fn=cmd_doctor)
    lab = sub.add_parser("lab", help="copy or update the chapters and exercises in your workspace and open JupyterLab there")
    lab.add_argument("--workspace", help="your copies of the chapters and exercises (default: my_work/ in the course folder)")
    lab.add_argument("--dry-run", action="store_true", help="prepare everything, print the command, do not start")
    lab.epilog = "Any other option is passed on to jupyter lab (e.g. --no-browser --port 8899)."
    lab.set_defaults(fn=cmd_lab)
    g = sub.add_parser("grade", help="grade notebooks in a sandbox and print a score table")
    g.add_argument("notebooks", nargs="+")
    g.add_argument("--report", help="write a JSON report to this file")
    g.add_argument("--timeout", type=float, default=600,
                   help="seconds for a notebook's cells (default 600); each exercise also has its own limit")
    g.add_argument("--seed", type=int, help="draw hidden cases from this seed; feedback then hides expected values")
    g.add_argument("--feedback", help="write one feedback text file per notebook into this folder")
    g.add_argument("--assignment", help="the chapter every notebook answers (a check-module key, e.g. "
                                        "high_dim_geometry); default: from each notebook's file name")
    g.add_argument("--jobs", type=int, help="submissions graded at once (default: the number of cores)")
    g.add_argument("--exercise-timeout", type=float,
                   help="seconds for each exercise's cases, instead of the chapter's own limits (usually 10)")
    g.set_defaults(fn=cmd_grade)
    pr = sub.add_parser("progress", help="your progress per chapter")
    pr.add_argument("-v", "--verbose", action="store_true", help="list every exercise")
    pr.set_defaults(fn=cmd_progress)
    r = sub.add_parser("release", help="write exercises/ from solutions/")
    r.add_argument("solutions", nargs="*", help="only these solution notebooks (solutions/.../x.py or .ipynb); default: all")
    r.add_argument("--check", action="store_true", help="fail if exercises/ is stale; write nothing")
    r.set_defaults(fn=cmd_release)
    b = sub.add_parser("bench", help="time kernels against PyTorch on a GPU")
    b.add_argument("--json", default="bench.json", help="write the results here (default bench.json)")
    b.add_argument("--plot", default="bench.png", help="write a plot of the results here (default bench.png)")
    b.add_argument("--quick", action="store_true", help="only each kernel's smallest size (seconds, not minutes)")
    b.set_defaults(fn=cmd_bench)
    gc = sub.add_parser("gpu-check", help="on a GPU machine: run the GPU tests and a quick benchmark, write the results")
    gc.add_argument("out", nargs="?", default="gpu-check", help="folder for the results (default: gpu-check/)")
    gc.add_argument("--test-timeout", type=float, default=360, help="seconds for the GPU tests (default 360)")
    gc.set_defaults(fn=cmd_gpu_check)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown and args.command != "lab":
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    args.jupyter_args = unknown
    return int(args.fn(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
