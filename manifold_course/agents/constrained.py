"""Tool calls as constrained text: a tool-call grammar, prefix validity, constrained sampling, the Toolformer filter.

A tool call is written in one canonical form, compact JSON with the keys in a fixed order::

    {"name":"get_weather","args":{"city":"paris","days":3}}

``TOOLS`` below is a list of tool specifications in the function-calling format (a name, a description and a JSON
Schema of the arguments). The grammar accepted by :func:`valid_prefix` is the subset of JSON that

- has no whitespace, the key ``"name"`` first and ``"args"`` second;
- names one of the tools; lists *every* argument of that tool, in the order of its ``properties``;
- writes a ``"string"`` argument without escapes (no ``"`` or ``\\``, printable ASCII only), at most ``maxLength``
  characters, and one of its ``enum`` values if it has an enum; an ``"integer"`` argument in canonical decimal
  (no sign, no leading zero) between 0 and its ``maximum`` (its ``minimum`` must be 0); a ``"boolean"`` as
  ``true`` or ``false``.

Every complete string of the grammar parses with ``json.loads`` and validates (``jsonschema``) against
:func:`call_schema`; the converse is false (JSON allows other key orders and whitespace). The grammar is finite,
so constrained sampling (Willard & Louf, "Efficient Guided Generation for Large Language Models", 2023,
arXiv:2307.09702; llama.cpp's GBNF grammars) always terminates with a complete call when its budget is large enough.

``valid_prefix(s)`` is *viability*: ``s`` can still be completed into a string of the grammar. Masking every token
that breaks viability gives :math:`p'(t) \\propto p(t)\\,\\mathbf 1[s + t \\in \\mathrm{Prefixes}(G)]`.

Toolformer (Schick et al., "Toolformer: Language Models Can Teach Themselves to Use Tools", 2023,
arXiv:2302.04761) keeps a sampled API call only if :math:`L^-_i - L^+_i \\ge \\tau_f`, with :math:`L^+_i` the
weighted loss of the following tokens given the call and its result and :math:`L^-_i = \\min(L_i(\\varepsilon),
L_i(\\text{call without result}))`.
"""

from __future__ import annotations

import functools
import json
from typing import Any, Callable, Sequence

import numpy as np

from manifold_course.seeding import numpy_rng

TOOLS: list[dict] = [
    {"name": "get_weather", "description": "Weather forecast for a city",
     "parameters": {"type": "object", "properties": {
         "city": {"type": "string", "maxLength": 12, "examples": ["paris", "lima", "oslo", "cairo", "kyoto"]},
         "days": {"type": "integer", "minimum": 0, "maximum": 14}}},
     "x-templates": ["what will the weather be in {city} over the next {days} days?",
                     "forecast for {city}, {days} days please"]},
    {"name": "convert", "description": "Convert an amount between currencies",
     "parameters": {"type": "object", "properties": {
         "amount": {"type": "integer", "minimum": 0, "maximum": 9999},
         "to": {"type": "string", "enum": ["eur", "usd", "jpy"]}}},
     "x-templates": ["how much is {amount} in {to}?", "convert {amount} to {to}"]},
    {"name": "set_alarm", "description": "Set an alarm",
     "parameters": {"type": "object", "properties": {
         "hour": {"type": "integer", "minimum": 0, "maximum": 23},
         "repeat": {"type": "boolean"}}},
     "x-templates": ["wake me at {hour} (repeat: {repeat})", "alarm at {hour}, repeating {repeat}"]},
]

STRING_CHARS = frozenset(chr(c) for c in range(32, 127)) - {'"', "\\"}   # printable ASCII without quote, backslash


# ---------------------------------------------------------------- schemas


def call_schema(tools: Sequence[dict] = TOOLS) -> dict:
    """The JSON Schema (draft 2020-12) of a call: one of the tools' ``{"name": const, "args": parameters}``."""
    options = []
    for t in tools:
        params = dict(t["parameters"])
        params.setdefault("required", list(params.get("properties", {})))
        params.setdefault("additionalProperties", False)
        options.append({"type": "object", "properties": {"name": {"const": t["name"]}, "args": params},
                        "required": ["name", "args"], "additionalProperties": False})
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "oneOf": options}


def is_valid_call(s: str, tools: Sequence[dict] = TOOLS) -> bool:
    """True when ``s`` parses with ``json.loads`` and validates against :func:`call_schema` (with ``jsonschema``)."""
    try:
        obj = json.loads(s)
    except (json.JSONDecodeError, TypeError):
        return False
    return _validator(json.dumps(list(tools), sort_keys=True)).is_valid(obj)


@functools.lru_cache(maxsize=32)
def _validator(tools_json: str):
    """A compiled ``jsonschema`` validator of :func:`call_schema` (building one is slow; tools come as JSON text
    so that the cache key is hashable)."""
    import jsonschema

    return jsonschema.Draft202012Validator(call_schema(json.loads(tools_json)))


def render_call(name: str, args: dict) -> str:
    """The canonical text of a call: compact JSON, ``name`` then ``args`` (arguments in the order given)."""
    return json.dumps({"name": name, "args": args}, separators=(",", ":"))


# ---------------------------------------------------------------- the grammar


def _string_prefix_ok(body: str, spec: dict, complete: bool) -> bool:
    if len(body) > spec.get("maxLength", 10**9) or not STRING_CHARS.issuperset(body):
        return False
    if "enum" in spec:
        return body in spec["enum"] if complete else any(v.startswith(body) for v in spec["enum"])
    return True


def _match_value(s: str, spec: dict) -> tuple[str, Any]:
    """Match the start of ``s`` against one value. Returns ("partial", ok) when ``s`` ends inside the value,
    ("done", rest) when the value is complete and ``rest`` follows it, or ("bad", None)."""
    kind = spec["type"]
    if kind == "string":
        if s == "":
            return "partial", True
        if s[0] != '"':
            return "bad", None
        end = s.find('"', 1)
        if end < 0:                                         # still inside the string
            return "partial", _string_prefix_ok(s[1:], spec, complete=False)
        return ("done", s[end + 1:]) if _string_prefix_ok(s[1:end], spec, complete=True) else ("bad", None)
    if kind == "integer":
        n = 0
        while n < len(s) and s[n].isdigit() and s[n].isascii():
            n += 1
        digits = s[:n]
        canonical = not (len(digits) > 1 and digits[0] == "0")
        # minimum 0: the smallest integer written with a digit prefix p is p itself
        fits = canonical and (digits == "" or int(digits) <= spec["maximum"])
        if n == len(s):
            return "partial", fits
        return ("done", s[n:]) if fits and digits else ("bad", None)
    if kind == "boolean":
        for word in ("true", "false"):
            if s.startswith(word):
                return "done", s[len(word):]
        return "partial", len(s) < 5 and ("true".startswith(s) or "false".startswith(s))
    raise ValueError(f"unsupported argument type {kind!r}")


def _match_literal(s: str, lit: str) -> tuple[str, Any]:
    if len(s) < len(lit):
        return "partial", lit.startswith(s)
    return ("done", s[len(lit):]) if s.startswith(lit) else ("bad", None)


def _items(tool: dict) -> list:
    props = tool["parameters"].get("properties", {})
    items: list = [',"args":{']
    for i, (key, spec) in enumerate(props.items()):
        items.append(("," if i else "") + '"' + key + '":')           # keys are plain identifiers
        items.append(spec)
    items.append("}}")
    return items


def _viable(s: str, tools: Sequence[dict]) -> tuple[bool, bool]:
    """(viable, complete) for the text ``s``."""
    state, rest = _match_literal(s, '{"name":')
    if state != "done":
        return bool(rest), False
    names = {"type": "string", "enum": [t["name"] for t in tools]}
    state, after = _match_value(rest, names)
    if state != "done":
        return bool(after), False
    name = rest[1: len(rest) - len(after) - 1]                   # between the quotes (names have no escapes)
    tool = next(t for t in tools if t["name"] == name)
    for item in _items(tool):
        state, after = _match_literal(after, item) if isinstance(item, str) else _match_value(after, item)
        if state != "done":
            return bool(after), False
    return after == "", after == ""


def valid_prefix(s: str, tools: Sequence[dict] = TOOLS) -> bool:
    """True when ``s`` can still be completed into a call of the grammar (see the module docstring)."""
    return _viable(s, tools)[0]


def is_complete(s: str, tools: Sequence[dict] = TOOLS) -> bool:
    """True when ``s`` is a complete call of the grammar (then no character can follow it)."""
    return _viable(s, tools)[1]


def random_args(tool: dict, rng: np.random.Generator) -> dict:
    """Arguments drawn uniformly: an enum value, an ``examples`` value, an integer in [minimum, maximum], a bool."""
    args = {}
    for key, spec in tool["parameters"].get("properties", {}).items():
        if spec["type"] == "string":
            choices = spec.get("enum") or spec["examples"]
            args[key] = str(choices[int(rng.integers(len(choices)))])
        elif spec["type"] == "integer":
            args[key] = int(rng.integers(spec.get("minimum", 0), spec["maximum"] + 1))
        else:
            args[key] = bool(rng.integers(2))
    return args


def function_calling_pairs(tools: Sequence[dict], n: int, seed: int) -> list[tuple[str, str]]:
    """``n`` (instruction, call) training pairs: for each, a tool and one of its ``x-templates`` uniformly at
    random, arguments from :func:`random_args`, the instruction ``template.format(**args)`` and the call
    :func:`render_call` of the arguments. The same seed gives the same pairs."""
    rng = numpy_rng(seed)
    pairs = []
    for _ in range(n):
        tool = tools[int(rng.integers(len(tools)))]
        template = tool["x-templates"][int(rng.integers(len(tool["x-templates"])))]
        args = random_args(tool, rng)
        pairs.append((template.format(**args), render_call(tool["name"], args)))
    return pairs


# ---------------------------------------------------------------- sampling


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max()
    p = np.exp(z)
    return p / p.sum()


def constrained_sample(logits_fn: Callable[[str], np.ndarray], vocab: Sequence[str],
                       valid_prefix: Callable[[str], bool], max_len: int, rng: np.random.Generator) -> str:
    """Sample a string one token at a time with :math:`p'(t) \\propto p(t)\\,\\mathbf 1[\\text{valid\\_prefix}(s+t)]`.

    ``logits_fn(s)`` gives the model's logits (one per entry of ``vocab``) after the text ``s``. Stops when no
    token keeps the text viable (for a prefix-free grammar: the call is complete) or after ``max_len`` tokens.
    One ``rng.choice(len(vocab), p=p')`` per step."""
    s = ""
    for _ in range(max_len):
        allowed = np.array([valid_prefix(s + t) for t in vocab])
        if not allowed.any():
            break
        logits = np.asarray(logits_fn(s), dtype=np.float64)
        p = _softmax(np.where(allowed, logits, -np.inf))
        s += vocab[int(rng.choice(len(vocab), p=p))]
    return s


def unconstrained_sample(logits_fn: Callable[[str], np.ndarray], vocab: Sequence[str], max_len: int,
                         rng: np.random.Generator, stop: str = "}}") -> str:
    """Plain ancestral sampling from the same model; stops after ``stop`` or ``max_len`` tokens."""
    s = ""
    for _ in range(max_len):
        s += vocab[int(rng.choice(len(vocab), p=_softmax(np.asarray(logits_fn(s), dtype=np.float64))))]
        if s.endswith(stop):
            break
    return s


class CharNGram:
    """A character n-gram model with add-``k`` smoothing, trained by counting; ``logits(s)`` for the next char.

    Contexts are the last ``n - 1`` characters, with ``^`` padding at the start."""

    def __init__(self, texts: Sequence[str], vocab: Sequence[str], n: int = 4, k: float = 0.01):
        self.vocab, self.n, self.k = list(vocab), n, k
        self.index = {c: i for i, c in enumerate(self.vocab)}
        self.counts: dict[str, np.ndarray] = {}
        for text in texts:
            padded = "^" * (n - 1) + text
            for i in range(n - 1, len(padded)):
                ctx = padded[i - n + 1: i]
                self.counts.setdefault(ctx, np.zeros(len(self.vocab)))[self.index[padded[i]]] += 1

    def logits(self, s: str) -> np.ndarray:
        ctx = ("^" * (self.n - 1) + s)[-(self.n - 1):]
        c = self.counts.get(ctx, np.zeros(len(self.vocab)))
        return np.log(c + self.k)


# ---------------------------------------------------------------- Toolformer


def toolformer_weights(n: int, decay: float = 0.2) -> np.ndarray:
    """Toolformer's weights over the following tokens: :math:`\\tilde w_t = \\max(0, 1 - \\text{decay}\\cdot t)`,
    :math:`t = 0..n-1`, normalised to sum to 1."""
    w = np.maximum(0.0, 1.0 - decay * np.arange(n))
    return w / w.sum()


def toolformer_keep(loss_plain, loss_call_result, loss_call_noresult, tau: float) -> np.ndarray:
    """Boolean mask of calls to keep: :math:`\\min(L_{plain}, L_{call, no result}) - L_{call+result} \\ge \\tau`."""
    l_minus = np.minimum(np.asarray(loss_plain, dtype=np.float64), np.asarray(loss_call_noresult, dtype=np.float64))
    return (l_minus - np.asarray(loss_call_result, dtype=np.float64)) >= tau
