"""Plausible wrong answers to the exercises of v4_agents/03_tools_and_memory; each check must reject them."""

from __future__ import annotations

import json

import numpy as np
import torch

from manifold_course.agents import constrained as C
from manifold_course.agents import memory as M
from manifold_course.agents import sop as S

# ---------------------------------------------------------------- valid_prefix


def prefix_unclosed_string(s, tools):
    # a grammar that lets a string value end at a comma or a brace without its closing quote
    fixed = s
    for stop in (',"', "}}"):
        fixed = fixed.replace(stop, '"' + stop) if '"' + stop not in fixed and stop in fixed else fixed
    return C.valid_prefix(s, tools) or C.valid_prefix(fixed, tools)


def prefix_json_only(s, tools):
    # "can json.loads finish it?": ignores the schema (any name, any keys)
    depth, in_str = 0, False
    for c in s:
        if c == '"':
            in_str = not in_str
        elif not in_str and c in "{[":
            depth += 1
        elif not in_str and c in "}]":
            depth -= 1
            if depth < 0:
                return False
    return not (depth == 0 and s and not in_str) or _loads(s)


def _loads(s):
    try:
        json.loads(s)
        return True
    except json.JSONDecodeError:
        return False


def prefix_no_maximum(s, tools):
    relaxed = [{**t, "parameters": {**t["parameters"], "properties": {
        k: ({**v, "maximum": 10**9} if v["type"] == "integer" else v) for k, v in t["parameters"]["properties"].items()}}}
        for t in tools]
    return C.valid_prefix(s, relaxed)


def prefix_complete_only(s, tools):
    return s == "" or C.is_complete(s, tools)


# ---------------------------------------------------------------- constrained_sample


def sample_unconstrained(logits_fn, vocab, valid_prefix, max_len, rng):
    return C.unconstrained_sample(logits_fn, vocab, max_len, rng)


def sample_greedy(logits_fn, vocab, valid_prefix, max_len, rng):
    s = ""
    for _ in range(max_len):
        allowed = [valid_prefix(s + t) for t in vocab]
        if not any(allowed):
            break
        logits = np.where(allowed, logits_fn(s), -np.inf)
        s += vocab[int(np.argmax(logits))]
    return s


def sample_mask_off_by_one(logits_fn, vocab, valid_prefix, max_len, rng):
    # checks the text *before* the token instead of after it, so nothing is ever masked while the text is valid
    s = ""
    for _ in range(max_len):
        allowed = np.array([valid_prefix(s) for _ in vocab])
        if not allowed.any() or s.endswith("}}"):
            break
        logits = np.where(allowed, np.asarray(logits_fn(s), dtype=np.float64), -np.inf)
        p = np.exp(logits - logits.max())
        s += vocab[int(rng.choice(len(vocab), p=p / p.sum()))]
    return s


def sample_ignores_model(logits_fn, vocab, valid_prefix, max_len, rng):
    s = ""
    for _ in range(max_len):
        allowed = [t for t in vocab if valid_prefix(s + t)]
        if not allowed:
            break
        s += allowed[int(rng.integers(len(allowed)))]
    return s


# ---------------------------------------------------------------- toolformer_keep


def keep_plain_only(loss_plain, loss_call_result, loss_call_noresult, tau):
    return (np.asarray(loss_plain) - np.asarray(loss_call_result)) >= tau


def keep_strict(loss_plain, loss_call_result, loss_call_noresult, tau):
    return (np.minimum(loss_plain, loss_call_noresult) - loss_call_result) > tau


def keep_max(loss_plain, loss_call_result, loss_call_noresult, tau):
    return (np.maximum(loss_plain, loss_call_noresult) - loss_call_result) >= tau


# ---------------------------------------------------------------- function_calling_pairs


def pairs_spaced_json(tools, n, seed):
    return [(i, json.dumps(json.loads(c))) for i, c in C.function_calling_pairs(tools, n, seed)]


def pairs_unseeded(tools, n, seed):
    return C.function_calling_pairs(tools, n, int(np.random.randint(1 << 30)))


def pairs_first_template(tools, n, seed):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        t = tools[int(rng.integers(len(tools)))]
        args = C.random_args(t, rng)
        out.append((t["x-templates"][0].format(**args), C.render_call(t["name"], args)))
    return out


def pairs_integer_max_excluded(tools, n, seed):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        t = tools[int(rng.integers(len(tools)))]
        tpl = t["x-templates"][int(rng.integers(len(t["x-templates"])))]
        args = C.random_args(t, rng)
        for k, spec in t["parameters"]["properties"].items():
            if spec["type"] == "integer":
                args[k] = int(rng.integers(0, spec["maximum"] // 2 + 1))   # only the lower half
        out.append((tpl.format(**args), C.render_call(t["name"], args)))
    return out


# ---------------------------------------------------------------- VectorStore


class StoreTiesToLargerId(M.VectorStore):
    def search(self, q, k):
        q = np.asarray(q, dtype=np.float64)
        q = q / (np.linalg.norm(q) or 1.0)
        s = self.vecs @ q
        order = np.argsort(s, kind="stable")[::-1][:k]
        return [(int(i), float(s[i]), self.meta[i]) for i in order]


class StoreInnerProduct(M.VectorStore):
    def add(self, vecs, meta):
        self.vecs = np.concatenate([self.vecs, np.asarray(vecs, dtype=np.float64).reshape(-1, self.dim)])
        self.meta.extend(meta)


class StoreAlwaysK:
    def __init__(self, dim):
        self.inner = M.VectorStore(dim)

    def add(self, vecs, meta):
        self.inner.add(vecs, meta)

    def search(self, q, k):
        res = self.inner.search(q, k)
        return res + [res[-1]] * (k - len(res)) if res else []


# ---------------------------------------------------------------- recall@k


def recall_counts_missing(approx_ids, exact_ids):
    A, E = np.asarray(approx_ids), np.asarray(exact_ids)
    return float(np.mean([len(set(a.tolist()) & set(e.tolist())) / len(e) for a, e in zip(A, E)]))


def recall_counts_repeats(approx_ids, exact_ids):
    A, E = np.asarray(approx_ids), np.asarray(exact_ids)
    return float(np.mean([sum(x in set(e.tolist()) for x in a.tolist() if x >= 0) / len(e) for a, e in zip(A, E)]))


# ---------------------------------------------------------------- memory_scores


def scores_unnormalised(memories, query_vec, now, weights, decay=0.995):
    V = np.array([m["vec"] for m in memories], dtype=np.float64)
    q = np.asarray(query_vec, dtype=np.float64)
    cos = V @ q / (np.linalg.norm(V, axis=1) * np.linalg.norm(q))
    rec = decay ** (now - np.array([m["time"] for m in memories]))
    imp = np.array([m["importance"] for m in memories]) / 10
    return weights[0] * rec + weights[1] * imp + weights[2] * cos


def scores_constant_nan(memories, query_vec, now, weights, decay=0.995):
    mm = lambda x: (x - x.min()) / (x.max() - x.min())  # noqa: E731
    V = np.array([m["vec"] for m in memories], dtype=np.float64)
    q = np.asarray(query_vec, dtype=np.float64)
    cos = V @ q / (np.linalg.norm(V, axis=1) * np.linalg.norm(q))
    rec = decay ** (now - np.array([m["time"] for m in memories], dtype=np.float64))
    imp = np.array([m["importance"] for m in memories], dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return weights[0] * mm(rec) + weights[1] * mm(imp) + weights[2] * mm(cos)


def scores_dot_not_cosine(memories, query_vec, now, weights, decay=0.995):
    V = np.array([m["vec"] for m in memories], dtype=np.float64)
    rec = decay ** (now - np.array([m["time"] for m in memories], dtype=np.float64))
    imp = np.array([m["importance"] for m in memories], dtype=np.float64)
    return weights[0] * M.min_max(rec) + weights[1] * M.min_max(imp) + weights[2] * M.min_max(V @ np.asarray(query_vec))


# ---------------------------------------------------------------- context-aware decoding


def cad_no_one_plus(logits_ctx, logits_noctx, alpha):
    return torch.softmax(logits_ctx - alpha * logits_noctx, dim=-1)


def cad_naive_exp(logits_ctx, logits_noctx, alpha):
    z = torch.exp((1 + alpha) * logits_ctx - alpha * logits_noctx)
    return z / z.sum(-1, keepdim=True)


def cad_product_of_probs(logits_ctx, logits_noctx, alpha):
    # mixes probabilities instead of logits
    p = (1 + alpha) * torch.softmax(logits_ctx, -1) - alpha * torch.softmax(logits_noctx, -1)
    return p.clamp_min(0) / p.clamp_min(0).sum(-1, keepdim=True)


# ---------------------------------------------------------------- MessagePool


class PoolBroadcast(S.MessagePool):
    def publish(self, msg):
        self.history.append(msg)
        for role in self.inboxes:
            if role != msg.get("sender"):
                self.inboxes[role].append(msg)


class PoolToSender(S.MessagePool):
    def publish(self, msg):
        self.history.append(msg)
        for role, types in self.subscriptions.items():
            if msg["type"] in types:
                self.inboxes[role].append(msg)


class PoolReplaysHistory(S.MessagePool):
    def subscribe(self, role, msg_types):
        new = role not in self.subscriptions
        super().subscribe(role, msg_types)
        if new:
            self.inboxes[role] = [m for m in self.history if m["type"] in msg_types and m.get("sender") != role]


class PoolKeepsInbox(S.MessagePool):
    def fetch(self, role):
        return list(self.inboxes.get(role, []))


# ---------------------------------------------------------------- run_sop


def sop_sequential(agents, task, max_rounds):
    artifacts = {"task": task}
    done = set()
    for _ in range(max_rounds):
        acted = False
        for a in agents:
            if a.name not in done and all(w in artifacts for w in a.watch):
                artifacts.setdefault(a.produces, a.act({w: artifacts[w] for w in a.watch}))
                done.add(a.name)
                acted = True
        if not acted:
            break
    return artifacts


def sop_ignores_max_rounds(agents, task, max_rounds):
    return S.run_sop([S.Role(a.name, a.watch, a.produces, a.act) for a in agents], task, 100)


def sop_acts_every_round(agents, task, max_rounds):
    artifacts = {"task": task}
    for _ in range(max_rounds):
        ready = [a for a in agents if all(w in artifacts for w in a.watch)]
        if not ready:
            break
        outs = [(a, a.act({w: artifacts[w] for w in a.watch})) for a in ready]
        for a, c in outs:
            artifacts[a.produces] = c
    return artifacts


WRONG = {
    "tools_memory.valid_prefix": [prefix_unclosed_string, prefix_json_only, prefix_no_maximum, prefix_complete_only],
    "tools_memory.constrained_sample": [sample_unconstrained, sample_greedy, sample_mask_off_by_one,
                                        sample_ignores_model],
    "tools_memory.toolformer_keep": [keep_plain_only, keep_strict, keep_max],
    "tools_memory.function_calling_pairs": [pairs_spaced_json, pairs_unseeded, pairs_first_template,
                                            pairs_integer_max_excluded],
    "tools_memory.VectorStore": [StoreTiesToLargerId, StoreInnerProduct, StoreAlwaysK],
    "tools_memory.recall_at_k": [recall_counts_missing, recall_counts_repeats],
    "tools_memory.memory_scores": [scores_unnormalised, scores_constant_nan, scores_dot_not_cosine],
    "tools_memory.context_aware_decoding": [cad_no_one_plus, cad_naive_exp, cad_product_of_probs],
    "tools_memory.MessagePool": [PoolBroadcast, PoolToSender, PoolReplaysHistory, PoolKeepsInbox],
    "tools_memory.run_sop": [sop_sequential, sop_ignores_max_rounds, sop_acts_every_round],
}
