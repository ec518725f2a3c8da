# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Volume 4, Chapter 3 exercises: tools, memory and teams of agents (sections 4.5-4.7)
#
# Ten pieces of an agent that calls tools, remembers and cooperates: prefix validity of a tool-call grammar,
# constrained sampling, the Toolformer filter and function-calling training pairs (4.5); an exact vector store,
# recall@k, Generative Agents' retrieval score and context-aware decoding (4.6); a publish-subscribe message pool
# and an SOP runner (4.7). Write each body where it says `# YOUR CODE HERE`, run the cell, then the `check(...)`
# cell below it: it answers at once with a green "passed" or a red message that says what to fix. The checks draw
# fresh cases each time, with edge cases.
#
# The lecture is `chapters/v4_agents/03_tools_and_memory.ipynb`. Please write your own code rather than importing
# the course's reference implementations (`manifold_course.agents`).
#
# **Conventions.** Never modify an input in place. Tools are described as in function calling: a dict with a
# `"name"`, a `"parameters"` JSON Schema (`{"type": "object", "properties": {...}}`) and `"x-templates"`
# (instruction templates, used in exercise 4). The syllabus's `function-calling data construction` is exercise 4;
# `recall_at_k` (exercise 6) is added for the vector-index measurements of the lecture. The SYLLABUS writes
# `valid_prefix(s, schema)`; here the schema is the list of tools, `valid_prefix(s, tools)`.

# %%
from manifold_course import seed_everything

rng = seed_everything(0)

import json

import numpy as np
import torch

from manifold_course.grading import check

TOOLS = [
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

# %% [markdown]
# ## Exercise 1: prefix validity of the tool-call grammar
#
# A call is **one canonical string**: compact JSON (no whitespace), `"name"` first, then `"args"` with **every**
# argument of that tool in the order of its `properties`:
#
# ```
# {"name":"get_weather","args":{"city":"paris","days":3}}
# ```
#
# Values: a `"string"` is written between double quotes without escapes (no `"` or `\` inside, printable ASCII only,
# i.e. characters with codes 32-126), at most `maxLength` characters, and one of its `enum` values if it has an
# enum (`examples` are *not* a restriction); an `"integer"` in canonical decimal (no sign, no leading zero: `0`, `7`,
# `42`), between 0 and its `maximum`; a `"boolean"` is `true` or `false`.
#
# `valid_prefix(s, tools) -> bool`: True when `s` can still be completed into such a call (the empty string can),
# False as soon as no completion exists. Note that inside an open string `}` and `,` are just characters: a grammar
# that lets a string end without its closing quote accepts `{"name":"get_weather","args":{"city":"paris,"days":3}}`,
# which is not even JSON. Hint: walk through the expected pieces (fixed text, then a value, then fixed text...) and
# consume `s`; answer as soon as `s` runs out (inside a piece: is it a prefix of something allowed?) or breaks a piece.
#
# **Checked** on every prefix of valid calls (all True) and of broken ones (an unclosed string, a leading zero, an
# integer above the maximum, keys out of order, whitespace, escapes, too long, not in the enum, a missing argument,
# text after the end, ...), with the tools above and with random tool sets.

# %%
PRINTABLE = {chr(c) for c in range(32, 127)} - {'"', "\\"}


def valid_prefix(s, tools):
    ### BEGIN SOLUTION
    def lit(s, text):                                   # -> ("more", ok) | ("rest", remaining)
        if len(s) < len(text):
            return "more", text.startswith(s)
        return ("rest", s[len(text):]) if s.startswith(text) else ("more", False)

    def string_ok(body, spec, closed):
        if len(body) > spec.get("maxLength", len(body)) or not set(body) <= PRINTABLE:
            return False
        if "enum" in spec:
            return body in spec["enum"] if closed else any(e.startswith(body) for e in spec["enum"])
        return True

    def value(s, spec):
        if spec["type"] == "string":
            if not s:
                return "more", True
            if s[0] != '"':
                return "more", False
            end = s.find('"', 1)
            if end < 0:
                return "more", string_ok(s[1:], spec, closed=False)
            return ("rest", s[end + 1:]) if string_ok(s[1:end], spec, closed=True) else ("more", False)
        if spec["type"] == "integer":
            n = 0
            while n < len(s) and s[n] in "0123456789":
                n += 1
            digits = s[:n]
            ok = not (len(digits) > 1 and digits[0] == "0") and (not digits or int(digits) <= spec["maximum"])
            if n == len(s):
                return "more", ok
            return ("rest", s[n:]) if ok and digits else ("more", False)
        for word in ("true", "false"):
            if s.startswith(word):
                return "rest", s[len(word):]
        return "more", "true".startswith(s) or "false".startswith(s)

    state, rest = lit(s, '{"name":')
    if state == "more":
        return rest
    names = {"type": "string", "enum": [t["name"] for t in tools]}
    state, after = value(rest, names)
    if state == "more":
        return after
    tool = next(t for t in tools if t["name"] == rest[1: len(rest) - len(after) - 1])
    pieces = [',"args":{']
    for i, (key, spec) in enumerate(tool["parameters"]["properties"].items()):
        pieces += [("," if i else "") + '"' + key + '":', spec]
    pieces.append("}}")
    for piece in pieces:
        state, after = lit(after, piece) if isinstance(piece, str) else value(after, piece)
        if state == "more":
            return after
    return after == ""
    ### END SOLUTION


# %%
check("tools_memory.valid_prefix", valid_prefix)

# %% [markdown]
# ## Exercise 2: grammar-constrained sampling
#
# `constrained_sample(logits_fn, vocab, valid_prefix, max_len, rng) -> str`: build a string token by token.
# `vocab` is a list of tokens (single characters here); `logits_fn(s)` returns the model's logits after the text `s`
# (a NumPy array, one entry per token); `valid_prefix(s)` is a one-argument function (your exercise 1 with the tools
# fixed); `rng` a NumPy `Generator`. At each step mask the tokens $t$ with `valid_prefix(s + t)` False and sample
# from the renormalised distribution,
#
# $$p'(t) \propto e^{\ell_t}\,\mathbf 1[\text{valid\_prefix}(s + t)],$$
#
# with `rng.choice(len(vocab), p=p')`. Stop when no token is allowed (the call is complete: nothing can follow a
# complete call) or after `max_len` tokens.
#
# **Checked** by properties, since the output is random: with random bigram models that like characters that break
# JSON, every sample parses with `json.loads` and validates against the schema; a model that puts logit +30 on the
# next character of one valid call yields exactly that call; uniform logits give different tools across 15 seeds.

# %%
def constrained_sample(logits_fn, vocab, valid_prefix, max_len, rng):
    ### BEGIN SOLUTION
    s = ""
    for _ in range(max_len):
        allowed = np.array([valid_prefix(s + t) for t in vocab])
        if not allowed.any():
            break
        logits = np.where(allowed, np.asarray(logits_fn(s), dtype=np.float64), -np.inf)
        p = np.exp(logits - logits.max())
        s += vocab[int(rng.choice(len(vocab), p=p / p.sum()))]
    return s
    ### END SOLUTION


# %%
check("tools_memory.constrained_sample", constrained_sample)

# %% [markdown]
# Try it: a model with uniform logits over the characters of the tool calls, constrained by your grammar.

# %%
demo_vocab = sorted(set('{}":,0123456789truefalsenmags_' + "".join(json.dumps(t) for t in TOOLS)))
try:
    demo = constrained_sample(lambda s: np.zeros(len(demo_vocab)), demo_vocab, lambda s: valid_prefix(s, TOOLS), 100,
                              rng)
    print(demo, json.loads(demo))
except NotImplementedError:
    print("write valid_prefix and constrained_sample first")

# %% [markdown]
# ## Exercise 3: the Toolformer filter
#
# `toolformer_keep(loss_plain, loss_call_result, loss_call_noresult, tau) -> np.ndarray` (bool): for arrays of $n$
# candidate calls, keep call $i$ when
#
# $$\min\big(L_{plain,i},\ L_{call, no\ result, i}\big) - L_{call+result, i} \ge \tau .$$
#
# **Checked** exactly, including exact ties (kept) and calls that already help without their result.

# %%
def toolformer_keep(loss_plain, loss_call_result, loss_call_noresult, tau):
    ### BEGIN SOLUTION
    l_minus = np.minimum(np.asarray(loss_plain, dtype=np.float64), np.asarray(loss_call_noresult, dtype=np.float64))
    return l_minus - np.asarray(loss_call_result, dtype=np.float64) >= tau
    ### END SOLUTION


# %%
check("tools_memory.toolformer_keep", toolformer_keep)

# %% [markdown]
# ## Exercise 4: function-calling training pairs from a schema
#
# `function_calling_pairs(tools, n, seed) -> list[tuple[str, str]]`: `n` pairs (instruction, call). For each pair,
# with a generator `np.random.default_rng(seed)`: pick a tool and one of its `x-templates` uniformly; draw each
# argument uniformly (a `"string"`: one of its `enum` values, else one of its `examples`; an `"integer"`: from
# `minimum` to `maximum`, both included; a `"boolean"`: True or False); the instruction is
# `template.format(**args)` and the call the canonical string of exercise 1,
# `json.dumps({"name": ..., "args": args}, separators=(",", ":"))` with the arguments in schema order.
#
# **Checked** by properties: every call is canonical and valid; every instruction is one of the tool's templates
# filled with the call's arguments; the same seed gives the same pairs, another seed others; over many pairs every
# template, enum value, example and boolean appears, and integers average the middle of their range.

# %%
def function_calling_pairs(tools, n, seed):
    ### BEGIN SOLUTION
    g = np.random.default_rng(seed)
    pairs = []
    for _ in range(n):
        tool = tools[g.integers(len(tools))]
        template = tool["x-templates"][g.integers(len(tool["x-templates"]))]
        args = {}
        for key, spec in tool["parameters"]["properties"].items():
            if spec["type"] == "string":
                options = spec.get("enum") or spec["examples"]
                args[key] = options[g.integers(len(options))]
            elif spec["type"] == "integer":
                args[key] = int(g.integers(spec.get("minimum", 0), spec["maximum"] + 1))
            else:
                args[key] = bool(g.integers(2))
        pairs.append((template.format(**args), json.dumps({"name": tool["name"], "args": args}, separators=(",", ":"))))
    return pairs
    ### END SOLUTION


# %%
check("tools_memory.function_calling_pairs", function_calling_pairs)

# %% [markdown]
# ## Exercise 5: an exact vector store
#
# `class VectorStore` with `__init__(self, dim)`, `add(self, vecs, meta)` and `search(self, q, k)`:
#
# - `add` appends the rows of `vecs` (an array (m, dim)) with one metadata item each (`meta`, a list of m items);
#   ids count from 0 in insertion order over all calls;
# - `search` returns the `min(k, N)` best as a list of tuples `(id, cosine, meta)`, best first: cosine similarity
#   $\cos(q, v) = q\cdot v / (\|q\|\|v\|)$, defined as 0 when either vector is zero; **equal cosines go to the
#   smaller id** (`np.argsort(-scores, kind="stable")`; the default sort is not stable). `id` is a Python int,
#   `cosine` a Python float.
#
# **Checked** against brute force on random stores (vectors of very different norms), exact duplicates, d = 1
# (where several cosines are exactly 1), a zero vector, an empty store, k larger than the store and k = 0.

# %%
def _unit(x):
    """Rows scaled to unit norm; a zero row stays zero."""
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.where(norms > 0, norms, 1.0)


class VectorStore:
    def __init__(self, dim):
        ### BEGIN SOLUTION
        self.dim = dim
        self.unit = np.zeros((0, dim))
        self.meta = []
        ### END SOLUTION

    def add(self, vecs, meta):
        ### BEGIN SOLUTION
        v = np.asarray(vecs, dtype=np.float64).reshape(-1, self.dim)
        self.unit = np.vstack([self.unit, _unit(v)])
        self.meta = self.meta + list(meta)
        ### END SOLUTION

    def search(self, q, k):
        ### BEGIN SOLUTION
        scores = self.unit @ _unit(np.asarray(q, dtype=np.float64))
        order = np.argsort(-scores, kind="stable")[:k]
        return [(int(i), float(scores[i]), self.meta[i]) for i in order]
        ### END SOLUTION


# %%
check("tools_memory.VectorStore", VectorStore)

# %% [markdown]
# ## Exercise 6: recall@k
#
# `recall_at_k(approx_ids, exact_ids) -> float`: two integer arrays (B, k) of ids, one row per query: what an
# approximate index returned and the exact top k. Return the mean over queries of $|A_q\cap E_q| / k$, counting each
# id once, where `-1` (faiss's "no result") never matches anything.
#
# **Checked** exactly, with `-1`s and repeated ids.

# %%
def recall_at_k(approx_ids, exact_ids):
    ### BEGIN SOLUTION
    A, E = np.asarray(approx_ids), np.asarray(exact_ids)
    return float(np.mean([len(set(a[a >= 0].tolist()) & set(e.tolist())) / len(e) for a, e in zip(A, E)]))
    ### END SOLUTION


# %%
check("tools_memory.recall_at_k", recall_at_k)

# %% [markdown]
# ## Exercise 7: Generative Agents' retrieval score
#
# `memory_scores(memories, query_vec, now, weights, decay) -> np.ndarray` (float64, shape (N,)): `memories` is a list
# of dicts with `"vec"` (a list or array), `"time"` (hours) and `"importance"` (1-10); `weights = (a_rec, a_imp,
# a_rel)`. With recency $\gamma^{\,now - time}$ ($\gamma$ = `decay`), the importance, and relevance
# $\cos(q, vec)$ (0 for a zero vector), each min-max normalised over the memories,
# $\hat x = (x - \min x)/(\max x - \min x)$, **and 0.5 everywhere when all are equal** (as in the authors' code),
#
# $$\text{score} = a_{rec}\,\hat r + a_{imp}\,\hat\imath + a_{rel}\,\hat c .$$
#
# **Checked** against the reference on random memories, equal importances, vectors of different norms and a single
# memory.

# %%
def memory_scores(memories, query_vec, now, weights, decay=0.995):
    ### BEGIN SOLUTION
    def min_max(x):
        span = x.max() - x.min()
        return np.full_like(x, 0.5) if span == 0 else (x - x.min()) / span

    def unit(x):
        n = np.linalg.norm(x, axis=-1, keepdims=True)
        return x / np.where(n > 0, n, 1.0)

    V = unit(np.array([np.asarray(m["vec"], dtype=np.float64) for m in memories]))
    q = unit(np.asarray(query_vec, dtype=np.float64))
    rec = decay ** (now - np.array([m["time"] for m in memories], dtype=np.float64))
    imp = np.array([m["importance"] for m in memories], dtype=np.float64)
    return weights[0] * min_max(rec) + weights[1] * min_max(imp) + weights[2] * min_max(V @ q)
    ### END SOLUTION


# %%
check("tools_memory.memory_scores", memory_scores)

# %% [markdown]
# ## Exercise 8: context-aware decoding
#
# `context_aware_decoding(logits_ctx, logits_noctx, alpha) -> torch.Tensor`: the probabilities
# $\mathrm{softmax}\big((1+\alpha)\,\ell_{ctx} - \alpha\,\ell_{no\,ctx}\big)$ over the **last** axis (Shi et al., 2023,
# arXiv:2305.14739), same shape and dtype as the inputs; $\alpha = 0$ gives `softmax(logits_ctx)`. Logits can be in
# the thousands: subtract the maximum before exponentiating (or use `torch.softmax`).
#
# **Checked** against the reference for several shapes and $\alpha$, huge logits and float32, and by the property
# that raising $\alpha$ moves mass towards answers the context supports more than the prior does.

# %%
def context_aware_decoding(logits_ctx, logits_noctx, alpha):
    ### BEGIN SOLUTION
    z = (1 + alpha) * logits_ctx - alpha * logits_noctx
    z = z - z.max(dim=-1, keepdim=True).values
    e = torch.exp(z)
    return e / e.sum(dim=-1, keepdim=True)
    ### END SOLUTION


# %%
check("tools_memory.context_aware_decoding", context_aware_decoding)

# %% [markdown]
# ## Exercise 9: a publish-subscribe message pool
#
# `class MessagePool` with `subscribe(self, role, msg_types)`, `publish(self, msg)` and `fetch(self, role)`. A message
# is a dict with at least `"type"`, `"sender"` and `"content"`. A published message is delivered to every role that
# had subscribed to its type **before** it was published, **except its sender**; `fetch(role)` returns the role's
# undelivered messages in publish order and empties its inbox (a role that never subscribed gets `[]`). Subscribing
# again adds types.
#
# **Checked** on scripted and random sequences of operations.

# %%
class MessagePool:
    def __init__(self):
        ### BEGIN SOLUTION
        self.types = {}
        self.inbox = {}
        ### END SOLUTION

    def subscribe(self, role, msg_types):
        ### BEGIN SOLUTION
        self.types.setdefault(role, set()).update(msg_types)
        self.inbox.setdefault(role, [])
        ### END SOLUTION

    def publish(self, msg):
        ### BEGIN SOLUTION
        for role, types in self.types.items():
            if msg["type"] in types and role != msg.get("sender"):
                self.inbox[role].append(msg)
        ### END SOLUTION

    def fetch(self, role):
        ### BEGIN SOLUTION
        messages = self.inbox.get(role, [])
        self.inbox[role] = []
        return messages
        ### END SOLUTION


# %%
check("tools_memory.MessagePool", MessagePool)

# %% [markdown]
# ## Exercise 10: running a standard operating procedure
#
# `run_sop(agents, task, max_rounds) -> dict`: each agent has attributes `name`, `watch` (a tuple of artifact types
# it needs), `produces` (one type) and a method `act(inputs)` that takes `{type: content}` for its watched types and
# returns the content it produces. Start with the artifacts `{"task": task}`. Then run **synchronous rounds**: in each
# round, every agent (in list order) that has not acted yet and whose watched types **all existed before the round
# began** acts once; after all of them have acted, their outputs are added (a type already present keeps its first
# content; two agents producing the same type in one round: the first in list order wins). Stop after a round in
# which nobody acted, or after `max_rounds` rounds. Return the artifacts. (The reference routes the artifacts through
# a `MessagePool`; a dict is enough here.)
#
# **Checked** by the order in which the agents act and by the artifacts: the lecture's software team, a cut-off
# after two rounds, an input that appears during a round, a missing input and a cycle, two producers of one type,
# `max_rounds = 0`, and random dependency graphs.

# %%
def run_sop(agents, task, max_rounds):
    ### BEGIN SOLUTION
    artifacts = {"task": task}
    acted = set()
    for _ in range(max_rounds):
        ready = [a for a in agents if a.name not in acted and all(w in artifacts for w in a.watch)]
        if not ready:
            break
        outputs = [(a, a.act({w: artifacts[w] for w in a.watch})) for a in ready]
        for a, content in outputs:
            acted.add(a.name)
            artifacts.setdefault(a.produces, content)
    return artifacts
    ### END SOLUTION


# %%
check("tools_memory.run_sop", run_sop)

# %% [markdown]
# ## What next
#
# Back to the lecture (`chapters/v4_agents/03_tools_and_memory.ipynb`) for what these pieces do together: a 4-gram
# model whose tool calls become 100% valid under the grammar, the Toolformer filter on a copying language model,
# faiss's IVF and HNSW against exact search up to $10^5$ vectors, reflection, the singleton-rate and
# context-aware-decoding experiments, and a MetaGPT-style team whose QA role runs the tests.
