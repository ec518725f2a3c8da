"""Checks for chapter v4_agents/03_tools_and_memory (Volume 4, sections 4.5-4.7).

Grammar and sampling: ``valid_prefix`` is compared with the reference on *every prefix* of valid calls and of
corrupted ones (an unclosed string, a leading zero, a key out of order, ...), over the chapter's tools and random
tool sets. ``constrained_sample`` and ``function_calling_pairs`` are random, so they are judged by properties:
every output parses with ``json.loads`` and validates with ``jsonschema``; a model that strongly prefers one valid
call gets exactly that call; uniform logits give variety; a seed gives the same pairs twice. Classes and functions
that take callables (``VectorStore``, ``MessagePool``, ``run_sop``, ``constrained_sample``) are driven by adapters
from plain data, so classroom grading sees only plain observations.
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import torch

from manifold_course.agents import constrained as C
from manifold_course.agents import memory as M
from manifold_course.agents import sop as S
from manifold_course.grading import Case, Exercise
from manifold_course.grading.compare import compare, float_problem

CHAPTER = "v4_agents/03_tools_and_memory"


def _plain(v):
    """A learner's value as plain data for the transcript (anything odd becomes its type name)."""
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if v is None or isinstance(v, (str, int, float)):
        return v
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, (np.integer, np.floating)):
        return v.item()
    return f"<{type(v).__name__}>"


# ---------------------------------------------------------------- random tool sets

_NAMES = ["get", "get_time", "lookup", "send", "add"]


def _random_tools(rng) -> list[dict]:
    names = list(rng.choice(_NAMES, size=int(rng.integers(2, 4)), replace=False))
    if "get" in names and "get_time" not in names:
        names.append("get_time")                    # one name a prefix of another
    tools = []
    for name in names:
        props = {}
        for key in rng.choice(["q", "n", "unit", "loud"], size=int(rng.integers(1, 3)), replace=False):
            kind = int(rng.integers(4))
            if kind == 0:
                props[str(key)] = {"type": "string", "maxLength": int(rng.integers(3, 7)), "examples": ["ab", "x y", "z"]}
            elif kind == 1:
                props[str(key)] = {"type": "string", "enum": ["kg", "km", "kmh"][: int(rng.integers(2, 4))]}
            elif kind == 2:
                props[str(key)] = {"type": "integer", "minimum": 0, "maximum": int(rng.choice([7, 42, 250]))}
            else:
                props[str(key)] = {"type": "boolean"}
        tools.append({"name": str(name), "parameters": {"type": "object", "properties": props},
                      "x-templates": [f"{name} " + " ".join("{" + k + "}" for k in props)]})
    return tools


def _random_call(tools, rng) -> str:
    t = tools[int(rng.integers(len(tools)))]
    return C.render_call(t["name"], C.random_args(t, rng))


# ---------------------------------------------------------------- 4.5 valid_prefix


def _corruptions(call: str, rng) -> list[str]:
    out = []
    i = call.find('":"', 10)                         # the closing quote of a string argument, if any
    j = call.find('"', i + 3) if i >= 0 and call.find('"args"') < i else -1
    if j > 0:
        out.append(call[:j] + call[j + 1:])          # an unclosed string: the value runs into the next key
    k = int(rng.integers(1, len(call)))
    out.append(call[:k] + call[k + 1:])              # a character deleted
    out.append(call[:k] + str(rng.choice(list('"{}:,0 a\\'))) + call[k:])   # a character inserted
    out.append(call + "}")                           # something after the end
    return out


_FIXED_BAD = [
    '{"name":"get_weather","args":{"city":"paris,"days":3}}',   # unclosed string swallows the comma
    '{"name":"get_weather","args":{"city":"paris","days":03}}',  # leading zero
    '{"name":"get_weather","args":{"city":"paris","days":15}}',  # above the maximum
    '{"name":"get_weather","args":{"days":3,"city":"paris"}}',   # keys out of order
    '{"name": "get_weather","args":{"city":"paris","days":3}}',  # whitespace
    '{"name":"get_weather","args":{"city":"a\\"b","days":3}}',   # an escape
    '{"name":"get_weather","args":{"city":"amsterdam_nord","days":3}}',  # longer than maxLength
    '{"name":"convert","args":{"amount":12,"to":"eu"}}',        # not an enum value
    '{"name":"convert","args":{"amount":12}}',                  # a missing argument
    '{"name":"set_alarm","args":{"hour":7,"repeat":tru}}',      # a broken literal
    '{"name":"get_forecast","args":{}}',                        # an unknown tool
    '{"args":{"hour":7},"name":"set_alarm"}',                   # args before name
]


def _prefix_cases(rng):
    good = [_random_call(C.TOOLS, rng) for _ in range(4)]
    yield Case(([""], C.TOOLS), label="the empty string (every call starts there)")
    yield Case((good, C.TOOLS), label="every prefix of 4 valid calls of the chapter's tools must be accepted")
    yield Case((_FIXED_BAD, C.TOOLS), label="broken calls (an unclosed string, a leading zero, 15 > maximum 14, keys "
                                            "out of order, whitespace, an escape, too long, not in the enum, ...)")
    bad = [c for g in good for c in _corruptions(g, rng)]
    yield Case((bad, C.TOOLS), label="randomly corrupted calls of the chapter's tools")
    for _ in range(3):
        tools = _random_tools(rng)
        calls = [_random_call(tools, rng) for _ in range(3)]
        yield Case((calls + [c for g in calls for c in _corruptions(g, rng)], tools),
                   label="random tools " + ", ".join(t["name"] for t in tools) + ", valid and corrupted calls")


def _prefix_observe(fn):
    def observed(strings, tools):
        return [[_plain(fn(s[:i], tools)) for i in range(len(s) + 1)] for s in strings]

    observed.__name__ = getattr(fn, "__name__", "valid_prefix")
    return observed


def _judge_prefix(got, expected, case):
    strings = case.args[0]
    if not isinstance(got, list) or len(got) != len(expected):
        return "the grader could not observe your valid_prefix"
    for s, have, want in zip(strings, got, expected):
        for i, (h, w) in enumerate(zip(have, want)):
            if not isinstance(h, bool):
                return f"valid_prefix({s[:i]!r}) returned {h!r}; return True or False"
            if h != w:
                why = ("it can still be completed into a valid call" if w else
                       f"no valid call starts like this (the character {s[i - 1]!r} at position {i - 1} breaks it)")
                return f"valid_prefix({s[:i]!r}) should be {w}: {why}"
    return None


# ---------------------------------------------------------------- 4.5 constrained_sample


def _vocab(tools) -> list[str]:
    chars = set('{}":,0123456789truefalsenmags_ ') | set("".join(json.dumps(t["parameters"]) + t["name"] for t in tools))
    return sorted(chars | {"'", "[", "x"})


def _sample_cases(rng):
    yield Case((C.TOOLS, _vocab(C.TOOLS), "random", 0, list(range(4)), 80), label="the chapter's tools, a random bigram model")
    tools = _random_tools(rng)
    yield Case((tools, _vocab(tools), "random", int(rng.integers(1000)), list(range(4)), 80),
               label="random tools, a random bigram model that prefers invalid characters")
    yield Case((tools, _vocab(tools), "forced", int(rng.integers(1000)), [0, 1, 2], 80),
               label="a model that strongly prefers one valid call (logits +30 on its next character)")
    yield Case((C.TOOLS, _vocab(C.TOOLS), "uniform", 0, list(range(15)), 80),
               label="uniform logits over 3 tools: 15 samples cannot all name the same tool")


def _sample_observe(fn):
    def observed(tools, vocab, kind, table_seed, seeds, max_len):
        g = np.random.default_rng(table_seed)
        V = len(vocab)
        index = {c: i for i, c in enumerate(vocab)}
        target = _random_call(tools, g) if kind == "forced" else None
        table = 2.0 * g.standard_normal((V + 1, V))
        table[:, [index[c] for c in "'[x"]] += 3.0              # the model likes characters that break JSON

        def logits_fn(s):
            if kind == "uniform":
                return np.zeros(V)
            if kind == "forced":
                z = np.zeros(V)
                if len(s) < len(target):
                    z[index[target[len(s)]]] = 30.0
                return z
            return table[index.get(s[-1], V) if s else V].copy()

        vp = lambda s: C.valid_prefix(s, tools)  # noqa: E731
        outs = [_plain(fn(logits_fn, list(vocab), vp, max_len, np.random.default_rng(sd))) for sd in seeds]
        return {"outputs": outs, "target": target}

    observed.__name__ = getattr(fn, "__name__", "constrained_sample")
    return observed


def _grammar_problem(call: str, tools) -> str | None:
    """None for a complete call of the grammar (it then parses and validates against the schema: the chapter and
    tests/test_agents_tools_memory.py check that with jsonschema), else where it breaks. Checked without
    importing jsonschema, whose first import alone takes seconds."""
    if C.is_complete(call, tools):
        return None
    try:
        json.loads(call)
    except json.JSONDecodeError as exc:
        return f"json.loads fails ({exc.msg} at character {exc.pos})"
    i = next((i for i in range(len(call) + 1) if not C.valid_prefix(call[:i], tools)), None)
    if i is None:
        return "it stops before the call is complete"
    return f"it does not validate against the schema (it goes wrong at character {i - 1}, {call[i - 1]!r})"


def _judge_sample(got, expected, case):
    tools, kind = case.args[0], case.args[2]
    if not isinstance(got, dict) or not isinstance(got.get("outputs"), list):
        return "the grader could not observe your samples"
    for out in got["outputs"]:
        if not isinstance(out, str):
            return f"return the sampled text as a str, got {out!r:.60}"
        problem = _grammar_problem(out, tools)
        if problem:
            return (f"the sample {out!r:.120} is not a valid call: {problem}; mask every token t for which "
                    "valid_prefix(text + t) is False, and stop only when no token is allowed")
    if kind == "forced" and any(o != got["target"] for o in got["outputs"]):
        bad = next(o for o in got["outputs"] if o != got["target"])
        return (f"the model puts logit +30 on each next character of {got['target']!r}, which is valid, but you "
                f"sampled {bad!r}: sample from softmax(logits) restricted to the allowed tokens")
    if kind == "uniform":
        names = {json.loads(o)["name"] for o in got["outputs"]}
        if len(names) < 2:
            return (f"with uniform logits all 15 samples named {names}: sample with rng.choice(len(vocab), p=p') "
                    "instead of taking the argmax")
    return None


# ---------------------------------------------------------------- 4.5 Toolformer filter


def _tf_cases(rng):
    yield Case((np.array([3.0, 3.0, 3.0]), np.array([2.0, 2.5, 2.0]), np.array([3.5, 3.0, 2.25]), 0.5),
               label="exact ties L- - L+ = tau are kept (>=); L- is the smaller of the two losses without a result")
    yield Case((np.array([1.0, 2.0]), np.array([1.5, 0.5]), np.array([0.75, 4.0]), 0.0),
               label="tau = 0; a call whose result makes things worse is dropped")
    yield Case((np.array([2.0]), np.array([1.0]), np.array([0.5]), 0.25),
               label="the call without its result already helps: compare with that, not with the plain loss")
    n = 40
    lp = rng.uniform(0.5, 4, n)
    yield Case((lp, lp - rng.uniform(-1, 2, n), lp + rng.uniform(-1.5, 1, n), float(rng.choice([0.2, 1.0]))),
               label="40 random calls")


# ---------------------------------------------------------------- 4.5 function-calling pairs


def _pairs_cases(rng):
    yield Case((C.TOOLS, 600, int(rng.integers(1000))), label="the chapter's 3 tools, 600 pairs")
    tools = _random_tools(rng)
    yield Case((tools, 400, int(rng.integers(1000))), label="random tools " + ", ".join(t["name"] for t in tools))
    yield Case((C.TOOLS, 1, 5), label="a single pair")


def _pairs_observe(fn):
    def observed(tools, n, seed):
        return {"a": _plain(fn(tools, n, seed)), "again": _plain(fn(tools, n, seed)),
                "other": _plain(fn(tools, n, seed + 1)) if n > 1 else None}

    observed.__name__ = getattr(fn, "__name__", "function_calling_pairs")
    return observed


def _judge_pairs(got, expected, case):
    tools, n, seed = case.args
    pairs = got.get("a") if isinstance(got, dict) else None
    if not isinstance(pairs, list) or len(pairs) != n:
        return f"return a list of {n} (instruction, call) pairs"
    by_name = {t["name"]: t for t in tools}
    used = {t["name"]: {"templates": set(), "values": {}} for t in tools}
    for p in pairs:
        if not (isinstance(p, list) and len(p) == 2 and all(isinstance(x, str) for x in p)):
            return f"each pair should be a tuple of two strings (instruction, call), got {p!r:.80}"
        instr, call = p
        try:
            obj = json.loads(call)
        except json.JSONDecodeError:
            return f"the call {call!r:.100} is not JSON"
        tool = by_name.get(obj.get("name")) if isinstance(obj, dict) else None
        if tool is None or not isinstance(obj.get("args"), dict) or set(obj) != {"name", "args"} or set(
                obj["args"]) != set(tool["parameters"]["properties"]):
            return (f"the call {call!r:.100} should be {{\"name\": one of the tools, \"args\": every argument of "
                    "that tool}}")
        args = {k: obj["args"][k] for k in tool["parameters"]["properties"]}
        if call != C.render_call(tool["name"], args):
            return (f"write the call in the canonical form {C.render_call(tool['name'], args)!r}: "
                    "json.dumps(..., separators=(',', ':')), name first, arguments in the schema's order")
        problem = _grammar_problem(call, tools)
        if problem:
            return f"the call {call!r:.100} is not valid: {problem} (check the types, enums, examples and ranges)"
        filled = [tpl for tpl in tool["x-templates"] if tpl.format(**args) == instr]
        if not filled:
            return f"the instruction {instr!r} is not one of {tool['name']}'s templates filled with {args}"
        used[tool["name"]]["templates"].add(filled[0])
        for k, v in args.items():
            used[tool["name"]]["values"].setdefault(k, []).append(v)
    if got["again"] != pairs:
        return "the same seed must give the same pairs (make a generator from the seed: np.random.default_rng(seed))"
    if n == 1:
        return None
    if got["other"] == pairs:
        return "seed + 1 gave the same pairs as seed: draw from a generator seeded with the seed"
    for t in tools:
        u = used[t["name"]]
        if len(u["templates"]) < len(t["x-templates"]):
            return f"in {n} pairs some templates of {t['name']} never appear: pick tool and template uniformly"
        for k, spec in t["parameters"]["properties"].items():
            vals = u["values"].get(k, [])
            if spec["type"] == "boolean" and len(set(vals)) < 2:
                return f"{t['name']}.{k} is always {vals[:1]}: draw booleans at random"
            choices = spec.get("enum") or spec.get("examples")
            if spec["type"] == "string" and set(vals) != set(choices):
                return f"{t['name']}.{k} should range over all of {choices} (uniformly), got {sorted(set(vals))}"
            if spec["type"] == "integer":
                lo, hi = spec.get("minimum", 0), spec["maximum"]
                mid, sd = (lo + hi) / 2, (hi - lo + 1) / np.sqrt(12 * len(vals))
                if abs(np.mean(vals) - mid) > 6 * sd:
                    return (f"{t['name']}.{k}: the mean of your integers is {np.mean(vals):.2f}; uniform draws in "
                            f"[{lo}, {hi}] (both ends included) average {mid}")
    return None


# ---------------------------------------------------------------- 4.6 VectorStore


def _store_cases(rng):
    d = 6
    a = rng.standard_normal((7, d)).round(3)
    ops = [["add", a.tolist(), [f"m{i}" for i in range(7)]]]
    for _ in range(3):
        ops.append(["search", rng.standard_normal(d).round(3).tolist(), 3])
    b = rng.standard_normal((30, d)).round(3)
    ops.append(["add", b.tolist(), [f"n{i}" for i in range(30)]])
    ops += [["search", rng.standard_normal(d).round(3).tolist(), 5], ["search", a[2].tolist(), 1]]
    yield Case((d, ops), label="7 then 30 vectors in d = 6; a query equal to a stored vector has cosine 1")
    v = rng.standard_normal(4).round(3)
    w = rng.standard_normal(4).round(3)
    yield Case((4, [["add", [w.tolist(), v.tolist(), w.tolist(), v.tolist()], ["w0", "v1", "w2", "v3"]],
                    ["search", v.tolist(), 4], ["search", w.tolist(), 3]]),
               label="exact duplicates: equal cosines go to the smaller id first")
    yield Case((1, [["add", [[1.0], [2.0], [0.5], [-3.0]], ["a", "b", "c", "d"]], ["search", [5.0], 4]]),
               label="d = 1: three cosines equal 1 exactly, ties to the smaller id")
    yield Case((3, [["add", [[1.0, 0, 0], [0, 0, 0], [0, 1.0, 0]], ["x", "zero", "y"]], ["search", [1.0, 1.0, 0], 3]]),
               label="a zero vector has cosine 0 with everything (no division by zero)")
    yield Case((3, [["search", [1.0, 0, 0], 2], ["add", [[0, 1.0, 0]], ["only"]], ["search", [1.0, 0, 0], 5],
                    ["search", [1.0, 0, 0], 0]]),
               label="an empty store, k larger than the store, k = 0")
    x = rng.standard_normal((200, 16)) * rng.uniform(0.1, 10, (200, 1))
    yield Case((16, [["add", x.tolist(), list(range(200))]] + [["search", rng.standard_normal(16).tolist(), 10]
                                                                for _ in range(3)]),
               label="200 vectors of very different norms (cosine, not inner product)")


def _store_observe(cls):
    def observed(dim, ops):
        store = cls(dim)
        log = []
        for op in ops:
            if op[0] == "add":
                store.add(np.array(op[1], dtype=np.float64), list(op[2]))
            else:
                res = store.search(np.array(op[1], dtype=np.float64), op[2])
                log.append(_plain(res))
        return log

    observed.__name__ = getattr(cls, "__name__", "VectorStore")
    return observed


def _judge_store(got, expected, case):
    if not isinstance(got, list) or len(got) != len(expected):
        return "the grader could not observe your VectorStore's searches"
    queries = [op for op in case.args[1] if op[0] == "search"]
    for q, have, want in zip(queries, got, expected):
        where = f"search(q, k={q[2]}) with q = {np.round(q[1], 3).tolist()[:6]}"
        if not isinstance(have, list) or len(have) != len(want):
            return f"{where} should return a list of {len(want)} (id, score, meta) tuples, got {have!r:.100}"
        for r, (h, w) in enumerate(zip(have, want)):
            if not (isinstance(h, list) and len(h) == 3):
                return f"{where}: result {r} should be a tuple (id, cosine, meta), got {h!r:.80}"
            if h[0] != w[0] or not isinstance(h[0], int):
                return (f"{where}: result {r} should be id {w[0]} (cosine {w[1]:.6f}), got {h[0]!r}; sort by cosine "
                        "(unit-normalise both sides), descending, and break exact ties by the smaller id "
                        "(np.argsort(-s, kind='stable'))")
            problem = float_problem(h[1], f"{where}: the cosine of result {r}") or compare(
                float(h[1]), w[1], 1e-9, 1e-9, f"{where}: the cosine of result {r}")
            if problem:
                return problem
            if h[2] != w[2]:
                return f"{where}: result {r} should carry the metadata {w[2]!r} given with it to add, got {h[2]!r}"
    return None


# ---------------------------------------------------------------- 4.6 memory_scores


def _mem(rng, n, d=5):
    return [{"vec": rng.standard_normal(d).round(3).tolist(), "time": float(rng.integers(0, 500)),
             "importance": float(rng.integers(1, 11))} for _ in range(n)]


def _scores_cases(rng):
    for w in ((1.0, 1.0, 1.0), (3.0, 0.5, 1.0), (0.0, 0.0, 1.0)):
        yield Case((_mem(rng, 12), rng.standard_normal(5).round(3).tolist(), 500.0, w, 0.995), label=f"weights {w}")
    m = _mem(rng, 6)
    for x in m:
        x["importance"] = 4.0
    yield Case((m, rng.standard_normal(5).tolist(), 600.0, (1.0, 1.0, 1.0), 0.99),
               label="all importances equal: a constant term normalises to 0.5")
    m = _mem(rng, 5)
    for i, x in enumerate(m):
        x["vec"] = (np.asarray(x["vec"]) * (i + 1) * 3).tolist()
    yield Case((m, rng.standard_normal(5).tolist(), 500.0, (0.5, 0.0, 2.0), 0.9),
               label="vectors of different norms: relevance is the cosine")
    yield Case(([{"vec": [1.0, 0.0], "time": 0.0, "importance": 3.0}], [0.0, 1.0], 10.0, (1.0, 1.0, 1.0), 0.995),
               label="a single memory: every term is 0.5")


# ---------------------------------------------------------------- 4.6 context-aware decoding


def _cad_cases(rng):
    t = lambda *s: torch.as_tensor(rng.standard_normal(s) * 3)  # noqa: E731
    yield Case((t(4, 7), t(4, 7), 0.0), label="alpha = 0: the distribution with the context")
    yield Case((t(4, 7), t(4, 7), 0.5), label="alpha = 0.5")
    yield Case((t(9), t(9), 1.0), label="one distribution (V,), alpha = 1")
    yield Case((t(2, 3, 5), t(2, 3, 5), 2.5), label="shape (2, 3, 5): the vocabulary is the last axis")
    yield Case((t(3, 6) * 300, t(3, 6) * 300, 1.0), label="logits in the thousands: no overflow (softmax subtracts the max)")
    yield Case((t(2, 5).float(), t(2, 5).float(), 1.0), label="float32 stays float32", rtol=1e-5, atol=1e-6)


def _cad_property(fn):
    # the context's evidence is amplified: an answer favoured by the context but not by the prior gains mass
    lc = torch.tensor([2.0, 1.0, 0.0], dtype=torch.float64)
    ln = torch.tensor([0.0, 3.0, 0.0], dtype=torch.float64)
    p0, p1 = fn(lc, ln, 0.0), fn(lc, ln, 1.0)
    if not (isinstance(p1, torch.Tensor) and p1.shape == (3,) and p1[0] > p0[0]):
        return "raising alpha should move probability towards answers the context supports more than the prior does"
    return None


# ---------------------------------------------------------------- 4.7 MessagePool


def _pool_cases(rng):
    yield Case(([["subscribe", "eng", ["design"]], ["publish", {"type": "design", "sender": "arch", "content": "d1"}],
                 ["publish", {"type": "prd", "sender": "pm", "content": "p1"}], ["fetch", "eng"], ["fetch", "eng"]],),
               label="delivered only to subscribers of its type; fetch empties the inbox")
    yield Case(([["publish", {"type": "prd", "sender": "pm", "content": "early"}], ["subscribe", "arch", ["prd"]],
                 ["publish", {"type": "prd", "sender": "pm", "content": "late"}], ["fetch", "arch"]],),
               label="a message published before the subscription is not delivered")
    yield Case(([["subscribe", "qa", ["code", "tests"]], ["publish", {"type": "tests", "sender": "qa", "content": "t"}],
                 ["publish", {"type": "code", "sender": "eng", "content": "c"}], ["fetch", "qa"], ["fetch", "nobody"]],),
               label="a role never receives its own messages; an unknown role fetches []")
    yield Case(([["subscribe", "a", ["x"]], ["subscribe", "a", ["y"]], ["publish", {"type": "y", "sender": "b", "content": 1}],
                 ["publish", {"type": "x", "sender": "b", "content": 2}], ["fetch", "a"]],),
               label="subscribing twice adds types; order of publication is kept")
    roles, types = ["pm", "arch", "eng", "qa"], ["prd", "design", "code", "report"]
    ops = [["subscribe", r, sorted(set(rng.choice(types, size=2).tolist()))] for r in roles]
    for i in range(25):
        u = rng.random()
        if u < 0.6:
            ops.append(["publish", {"type": str(rng.choice(types)), "sender": str(rng.choice(roles)), "content": i}])
        elif u < 0.9:
            ops.append(["fetch", str(rng.choice(roles))])
        else:
            ops.append(["subscribe", str(rng.choice(roles)), [str(rng.choice(types))]])
    yield Case((ops + [["fetch", r] for r in roles],), label="25 random operations of 4 roles")


def _pool_observe(cls):
    def observed(ops):
        pool = cls()
        log = []
        for op in ops:
            if op[0] == "subscribe":
                pool.subscribe(op[1], list(op[2]))
            elif op[0] == "publish":
                pool.publish(dict(op[1]))
            else:
                log.append(_plain(pool.fetch(op[1])))
        return log

    observed.__name__ = getattr(cls, "__name__", "MessagePool")
    return observed


def _judge_pool(got, expected, case):
    if not isinstance(got, list) or len(got) != len(expected):
        return "the grader could not observe your MessagePool's fetches"
    fetches = [op for op in case.args[0] if op[0] == "fetch"]
    for k, (op, have, want) in enumerate(zip(fetches, got, expected)):
        if have != want:
            return (f"fetch #{k + 1} ({op[1]!r}) should return {[m['content'] for m in want]} (contents of the messages "
                    f"in publish order), got {have if not isinstance(have, list) else [_content(m) for m in have]}; "
                    "deliver a message to roles subscribed to its type before it was published, never to its sender, "
                    "and empty the inbox on fetch")
    return None


def _content(m):
    return m.get("content") if isinstance(m, dict) else m


# ---------------------------------------------------------------- 4.7 run_sop


def _sop_cases(rng):
    team = [["PM", ["task"], "prd"], ["Architect", ["prd"], "design"], ["Engineer", ["design"], "code"],
            ["QAWriter", ["prd"], "tests"], ["QARunner", ["prd", "code", "tests"], "report"]]
    yield Case((team, "write reverse_string", 10), label="the software team: every artifact, each role once")
    yield Case((team, "write reverse_string", 2), label="max_rounds = 2: only the first two rounds run")
    yield Case(([["B", ["x"], "y"], ["A", ["task"], "x"]], "t", 1),
               label="one round: B's input appears during the round, so B waits for round 2 (synchronous rounds)")
    yield Case(([["A", ["task"], "x"], ["Stuck", ["missing"], "z"], ["L", ["w"], "v"], ["W", ["v"], "w"]], "t", 5),
               label="a missing input and a cycle: those roles never act, and the run still ends")
    yield Case(([["A1", ["task"], "x"], ["A2", ["task"], "x"], ["B", ["x"], "y"]], "t", 5),
               label="two roles produce x in the same round: the first in list order wins")
    yield Case(([["A", ["task"], "x"]], "t", 0), label="max_rounds = 0: only the task")
    names = [f"R{i}" for i in range(6)]
    types = ["task"] + [f"a{i}" for i in range(6)]
    spec = [[n, sorted(set(rng.choice(types[: i + 1], size=int(rng.integers(1, 3))).tolist())), types[i + 1]]
            for i, n in enumerate(names)]
    order = rng.permutation(6)
    yield Case(([spec[i] for i in order], "random task", 6), label="6 roles in a random order of a random DAG")


def _sop_observe(fn):
    def observed(spec, task, max_rounds):
        calls = []

        def make(name, produces):
            def act(inputs):
                calls.append(name)
                return {"by": name, "from": {str(k): v for k, v in sorted(dict(inputs).items())}}
            return act

        agents = [SimpleNamespace(name=n, watch=tuple(w), produces=p, act=make(n, p)) for n, w, p in spec]
        arts = fn(agents, task, max_rounds)
        return {"artifacts": _plain(arts), "calls": list(calls)}

    observed.__name__ = getattr(fn, "__name__", "run_sop")
    return observed


def _reference_sop(agents, task, max_rounds):
    return S.run_sop([S.Role(a.name, a.watch, a.produces, a.act) for a in agents], task, max_rounds)


def _judge_sop(got, expected, case):
    if not isinstance(got, dict) or not isinstance(got.get("artifacts"), dict):
        return "return the artifacts as a dict {type: content}, with the task under 'task'"
    if got["calls"] != expected["calls"]:
        return (f"the roles acted in the order {got['calls']}, expected {expected['calls']}: in each round every role "
                "whose inputs all existed before the round, and that has not acted yet, acts once, in list order")
    have, want = got["artifacts"], expected["artifacts"]
    if sorted(have) != sorted(want):
        return f"the artifacts should have the types {sorted(want)}, got {sorted(have)}"
    for k in want:
        if have[k] != want[k]:
            return (f"artifact {k!r} should be {want[k]!r:.150}, got {have[k]!r:.150}: pass each role the contents "
                    "of the types it watches, and keep the first content of a type")
    return None


# ---------------------------------------------------------------- 4.6 recall@k


def _recall_cases(rng):
    yield Case((np.array([[1, 2, 3], [4, 5, 6]]), np.array([[3, 2, 1], [6, 7, 8]])), label="order does not matter")
    yield Case((np.array([[1, -1, -1]]), np.array([[1, 2, 3]])), label="-1 (no result) never counts")
    yield Case((np.array([[-1, -1]]), np.array([[-1, 5]])), label="-1 never matches, even an exact -1")
    A = rng.integers(0, 30, (20, 10))
    E = np.stack([rng.permutation(30)[:10] for _ in range(20)])
    yield Case((A, E), label="20 random queries, k = 10 (approximate ids may repeat: count each id once)")


# ---------------------------------------------------------------- the list

EXERCISES = [
    Exercise("tools_memory.valid_prefix", "Prefix validity of the tool-call grammar", cases=_prefix_cases,
             reference=C.valid_prefix, adapter=_prefix_observe, judge=_judge_prefix),
    Exercise("tools_memory.constrained_sample", "Grammar-constrained sampling", cases=_sample_cases,
             reference=None, known_good=C.constrained_sample, adapter=_sample_observe, judge=_judge_sample),
    Exercise("tools_memory.toolformer_keep", "The Toolformer filter", cases=_tf_cases, reference=C.toolformer_keep),
    Exercise("tools_memory.function_calling_pairs", "Function-calling training pairs from a schema",
             cases=_pairs_cases, reference=None, known_good=C.function_calling_pairs, adapter=_pairs_observe,
             judge=_judge_pairs),
    Exercise("tools_memory.VectorStore", "An exact vector store", cases=_store_cases, reference=M.VectorStore,
             adapter=_store_observe, judge=_judge_store),
    Exercise("tools_memory.recall_at_k", "recall@k of an approximate index", cases=_recall_cases,
             reference=M.recall_at_k, rtol=1e-12, atol=1e-12),
    Exercise("tools_memory.memory_scores", "Generative Agents' retrieval score", cases=_scores_cases,
             reference=M.memory_scores, rtol=1e-9, atol=1e-12),
    Exercise("tools_memory.context_aware_decoding", "Context-aware decoding", cases=_cad_cases,
             reference=M.context_aware_decoding, properties=[_cad_property], rtol=1e-9, atol=1e-12),
    Exercise("tools_memory.MessagePool", "A publish-subscribe message pool", cases=_pool_cases,
             reference=S.MessagePool, adapter=_pool_observe, judge=_judge_pool),
    Exercise("tools_memory.run_sop", "Running a standard operating procedure", cases=_sop_cases,
             reference=_reference_sop, adapter=_sop_observe, judge=_judge_sop),
]
