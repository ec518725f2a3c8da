"""Multi-agent collaboration as a standard operating procedure over a publish-subscribe message pool.

MetaGPT (Hong et al., "MetaGPT: Meta Programming for a Multi-Agent Collaborative Framework", 2023,
arXiv:2308.00352) encodes a software team's SOP as roles (product manager -> requirements document, architect ->
design, engineer -> code, QA -> tests) that publish structured artifacts to a shared message pool and subscribe to
the artifact types they need. Here the roles are scripted functions (stated as such: no LLM), the pool and the
scheduling are real, and the QA role *executes* the generated tests.

:func:`run_tests` executes code that our own scripted engineer wrote, in-process, in a fresh namespace with a
reduced set of builtins. That is not a sandbox against hostile code (a real system runs generated code in a
container or a separate process with limits); it is enough for code the chapter itself generated.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass
from typing import Any, Callable, Sequence


class MessagePool:
    """Publish-subscribe: a message (a dict with at least ``"type"`` and ``"sender"``) is delivered to every role
    that subscribed to its type *before* it was published, except its sender, in publish order. ``fetch(role)``
    returns the role's undelivered messages and empties its inbox; ``history`` keeps every message."""

    def __init__(self) -> None:
        self.subscriptions: dict[str, set[str]] = {}
        self.inboxes: dict[str, list[dict]] = {}
        self.history: list[dict] = []

    def subscribe(self, role: str, msg_types: Sequence[str]) -> None:
        self.subscriptions.setdefault(role, set()).update(msg_types)
        self.inboxes.setdefault(role, [])

    def publish(self, msg: dict) -> None:
        self.history.append(msg)
        for role, types in self.subscriptions.items():
            if msg["type"] in types and role != msg.get("sender"):
                self.inboxes[role].append(msg)

    def fetch(self, role: str) -> list[dict]:
        out, self.inboxes[role] = self.inboxes.get(role, []), []
        return out


@dataclass(frozen=True)
class Role:
    """A scripted agent: it needs the artifacts of the types in ``watch`` and produces one of type ``produces``
    with ``act(inputs)``, where ``inputs`` maps each watched type to its content."""

    name: str
    watch: tuple[str, ...]
    produces: str
    act: Callable[[dict], Any]


def run_sop(agents: Sequence[Role], task: str, max_rounds: int) -> dict:
    """Run the SOP in synchronous rounds over a :class:`MessagePool` and return the artifacts ``{type: content}``.

    The task is published first as an artifact of type ``"task"`` (sender ``"user"``). In each round every agent,
    in list order, that has received all the types it watches and has not yet produced its artifact acts on what it
    had received *before the round began*; the round's artifacts are then published in list order. The run stops
    after a round in which nobody acted, or after ``max_rounds`` rounds; an agent whose inputs never appear never
    acts, and an artifact type produced twice keeps its first content."""
    pool = MessagePool()
    for a in agents:
        pool.subscribe(a.name, a.watch)
    pool.publish({"type": "task", "sender": "user", "content": task})
    seen: dict[str, dict] = {a.name: {} for a in agents}
    artifacts = {"task": task}
    done: set[str] = set()
    for _ in range(max_rounds):
        for a in agents:
            for msg in pool.fetch(a.name):
                seen[a.name].setdefault(msg["type"], msg["content"])
        ready = [a for a in agents if a.name not in done and all(w in seen[a.name] for w in a.watch)]
        if not ready:
            break
        outputs = [(a, a.act({w: seen[a.name][w] for w in a.watch})) for a in ready]
        for a, content in outputs:
            done.add(a.name)
            artifacts.setdefault(a.produces, content)
            pool.publish({"type": a.produces, "sender": a.name, "content": content})
    return artifacts


def run_tests(code: str, tests: Sequence[str], entry: str) -> dict:
    """Execute ``code`` (which must define ``entry``), then each test (one ``assert`` statement over ``entry``)
    in a fresh namespace; return ``{"passed": n, "failed": [(test, error), ...], "error": None or str}``.

    In-process ``exec`` with reduced builtins: for code the chapter generated itself, not for untrusted code."""
    safe_builtins = {name: __builtins__[name] if isinstance(__builtins__, dict) else getattr(__builtins__, name)
                     for name in ("len", "range", "reversed", "str", "list", "sorted", "min", "max", "sum",
                              "enumerate", "zip", "isinstance", "int", "bool", "AssertionError", "ValueError")}
    namespace: dict[str, Any] = {"__builtins__": safe_builtins}
    try:
        exec(compile(code, "<engineer>", "exec"), namespace)
        if not callable(namespace.get(entry)):
            return {"passed": 0, "failed": [], "error": f"the code does not define {entry}()"}
    except Exception as exc:  # noqa: BLE001 - a broken artifact is a test-report finding, not a crash
        return {"passed": 0, "failed": [], "error": f"{type(exc).__name__}: {exc}"}
    passed, failed = 0, []
    for t in tests:
        try:
            exec(compile(t, "<qa>", "exec"), dict(namespace))
            passed += 1
        except Exception as exc:  # noqa: BLE001
            failed.append((t, traceback.format_exception_only(type(exc), exc)[-1].strip()))
    return {"passed": passed, "failed": failed, "error": None}


# ---------------------------------------------------------------- the scripted software team


def product_manager(inputs: dict) -> dict:
    """PRD: the function's name and behaviour, with worked examples, parsed from a task 'write NAME: ...'."""
    name = inputs["task"].split()[1].rstrip(":")
    return {"function": name, "goal": inputs["task"], "examples": [["abc", "cba"], ["", ""], ["a b", "b a"],
                                                                   ["racecar", "racecar"], [" hi", "ih "]]}


def architect(inputs: dict) -> dict:
    prd = inputs["prd"]
    return {"signature": f"def {prd['function']}(s: str) -> str", "approach": "slice with step -1"}


def engineer(inputs: dict, buggy: bool = False) -> str:
    sig = inputs["design"]["signature"].replace(" -> str", "")
    body = "return s[::-1].strip()" if buggy else "return s[::-1]"
    return f"{sig}:\n    {body}\n"


def qa_write_tests(inputs: dict) -> list[str]:
    prd = inputs["prd"]
    return [f"assert {prd['function']}({a!r}) == {b!r}" for a, b in prd["examples"]]


def qa_run(inputs: dict) -> dict:
    return run_tests(inputs["code"], inputs["tests"], inputs["prd"]["function"])


def software_team(buggy: bool = False) -> list[Role]:
    """PM -> architect -> engineer, QA writing tests from the PRD and running them on the code."""
    return [Role("ProductManager", ("task",), "prd", product_manager),
            Role("Architect", ("prd",), "design", architect),
            Role("Engineer", ("design",), "code", lambda x: engineer(x, buggy)),
            Role("QAWriter", ("prd",), "tests", qa_write_tests),
            Role("QARunner", ("prd", "code", "tests"), "test_report", qa_run)]
