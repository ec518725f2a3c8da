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
# # Volume 4, Chapter 2: Reasoning and acting (sections 4.3, 4.4, 4.9)
#
# A language model writes one token at a time, and each token gets the same fixed amount of computation. This
# chapter looks at three ways of buying more: writing intermediate steps (chain-of-thought), calling tools between
# steps (ReAct), and searching over several lines of thought instead of committing to one (Tree of Thoughts).
# Every "model" here is either a tiny transformer trained in this notebook or a scripted function, stated as such;
# the protocols and the searches are real code.
#
# | section | question | what you will measure |
# |---|---|---|
# | 4.3 | what does chain-of-thought buy? | a tiny GPT trained on addition with and without a scratchpad: per-token error and exact-match accuracy against problem length |
# | 4.3 lens (F2) | does error compound as $(1-e)^n$? | the correlation of per-position errors; the $(1-e)^n$ curve fitted on short problems held against long ones |
# | 4.4 | how does an agent act? | ReAct traces with a scripted model and three safe tools; malformed actions, unknown tools, loops and code injection |
# | 4.9 | chain or tree? | Game of 24 with exact fractions: greedy chain vs beam search vs exhaustive search; jumps in DFS traces (F20b) |
#
# **Goals.** After this chapter you can
# - say what a scratchpad changes for a transformer (more serial steps) and what it does not (the total work);
# - measure whether per-token errors are independent, and test the $(1-e)^n$ model on held-out lengths;
# - write a ReAct loop that keeps the model's thoughts, turns every failure into an observation and stops;
# - evaluate model-written arithmetic without `eval`;
# - search over thoughts with a beam, and describe a search trace as a tree with jumps.
#
# **Prerequisites.** The course's GPT (Volume 2, chapter 1: `manifold_course.nn.gpt`); next-token cross-entropy;
# Python's `ast` module at the level of "a parse tree of nodes"; breadth-first and depth-first search.
#
# **Time.** About 1.5 hours of reading and running, plus 1.5 hours for the exercises. The notebook runs in about
# 30 s on an idle 2-core CPU (most of it training three tiny GPTs). `SCALE = 1`; raise it on a faster machine: it
# multiplies the GPT's training steps and the number of Game-of-24 puzzles.
#
# **Symbols.** $N$ the number of parameters of a model; $n$ the number of digits of each operand; $L$ the number of
# tokens of an answer (its completion); $e$ a per-token error probability and $e_\ell$ the error rate at completion
# position $\ell$; $a(n)$ the exact-match accuracy on $n$-digit problems; $\rho$ a correlation between the error
# indicators of two positions; $b$ the beam width; $V$ a value function over search states; $S_t$ the set of
# states kept after $t$ thoughts.

# %%
from manifold_course import seed_everything
from manifold_course.seeding import numpy_rng

rng = seed_everything(0)

import math
import time
from fractions import Fraction

import matplotlib.pyplot as plt
import numpy as np

from manifold_course import plotting
from manifold_course.agents import react as ra
from manifold_course.agents import scratchpad as sp
from manifold_course.agents import tree_of_thoughts as tot

SCALE = 1            # multiplies training steps and the number of puzzles; 1 runs in ~30 s on a 2-core CPU
SEEDS = (0, 1, 2)    # every trained-model claim below is checked over these three seeds
T0 = time.process_time()

# %% [markdown]
# ## 4.3 What chain-of-thought really does
#
# A transformer with $N$ parameters spends about $2N$ floating-point operations on every token it writes, and
# between reading the prompt and writing the first answer token it can take only as many serial steps as it has
# layers. Asked for "23 x 18 + 9" in one token, it gets one token's worth of depth. Writing the work first,
# "23 x 8 = 184, 23 x 10 = 230, ...", lets every later token read the results of earlier ones: a scratchpad
# (Nye et al., "Show Your Work: Scratchpads for Intermediate Computation with Language Models", 2021,
# arXiv:2112.00114), or chain-of-thought when the model is prompted to write it (Wei et al., "Chain-of-Thought
# Prompting Elicits Reasoning in Large Language Models", 2022, arXiv:2201.11903; the zero-shot trigger "Let's think
# step by step" is from Kojima et al., "Large Language Models are Zero-Shot Reasoners", 2022, arXiv:2205.11916).
#
# The seed's worked example, 23 x 18 + 9 = 423, through the multiplication scratchpad of exercise 1 and the
# answer parser of exercise 5:

# %%
pad = sp.scratchpad_multiplication(23, 18)
print(pad)
assert sp.extract_final_answer(pad) == 23 * 18 == 414 and 414 + 9 == 423
assert sp.extract_final_answer("20 * 18 = 360\n3 * 18 = 54\n360 + 54 + 9 = 423") == 423    # no marker: the last integer
for a, b in numpy_rng(1).integers(0, 10**4, (200, 2)):
    assert sp.extract_final_answer(sp.scratchpad_multiplication(int(a), int(b))) == a * b

# %% [markdown]
# > **Careful.** It is sometimes said that chain-of-thought "splits an $O(N^2)$ problem into $O(N)$ linear steps".
# > Nothing supports that complexity claim. The defensible statement is the one above: extra tokens add serial
# > computation, each token reading everything written before it. Theory agrees: a transformer allowed a
# > number of intermediate steps that grows with the input can compute things a fixed-depth one provably cannot
# > (Merrill & Sabharwal, "The Expressive Power of Transformers with Chain of Thought", ICLR 2024,
# > arXiv:2310.07923; Feng et al., "Towards Revealing the Mystery behind Chain of Thought", NeurIPS 2023,
# > arXiv:2305.15408). The total work grows, it does not shrink.
#
# ### A tiny GPT that adds, with and without a scratchpad
#
# The task is $n$-digit addition, $n = 1, 2, 3$. The prompt `47+85=` asks for the sum directly, most significant
# digit first, zero-padded to $n+1$ digits: `132.` ($L = n + 2$ tokens with the end mark). The prompt `47+85:` asks
# for a scratchpad: for each digit, least significant first, the sum digit and the carry out, `2131.` (7+5 = 12:
# write 2, carry 1; 4+8+1 = 13: write 3, carry 1; $L = 2n + 1$). The sum is read off the scratchpad (the last carry,
# then the sum digits backwards: `sp.read_scratchpad`). Without the scratchpad, the first digit the model writes
# depends on the carry chain through every lower digit, all inside one token's computation; with it, each step
# needs only one digit pair and the carry it has just written.
#
# One GPT (`manifold_course.nn.gpt`, 2 layers, $D = 32$, 4 heads, RoPE) learns both formats from the same steps:
# every batch holds 16 problems of each length in each format, the loss is the cross-entropy of the completion
# tokens, and it trains for 200 steps per `SCALE`. That is tiny: the models below are far from having learned
# addition, and the point is to measure *how* they fail.
#
# We grade with teacher forcing: at each completion position, is the model's most likely token the right one,
# given the right prefix? A problem is answered exactly right by greedy decoding if and only if every position is
# right, so one forward pass gives both the per-position errors $e_\ell$ and the exact-match accuracy $a(n)$
# (the first cell below checks that equivalence against real greedy decoding).

# %%
LENGTHS = (1, 2, 3)
STEPS = 200 * SCALE
N_TEST = 400
res = {}
for seed in SEEDS:
    model = sp.train_adder(max(LENGTHS), STEPS, seed)
    test_rng = numpy_rng(1000 + seed)
    for n in LENGTHS:
        a, b = sp.sample_operands(test_rng, n, N_TEST)
        for scratch in (False, True):
            E = sp.token_errors(model, a, b, n, scratch)
            res[seed, n, scratch] = E
        if n == 2 and seed == SEEDS[0]:                    # teacher forcing agrees with greedy decoding
            for scratch in (False, True):
                fmt = sp.addition_scratchpad if scratch else sp.addition_plain
                greedy = sp.greedy_completions(model, a[:100], b[:100], n, scratch)
                exact = np.array([g == fmt(int(x), int(y), n) for g, x, y in zip(greedy, a[:100], b[:100])])
                assert np.array_equal(exact, res[seed, n, scratch][:100].sum(1) == 0)

acc = {k: float((E.sum(1) == 0).mean()) for k, E in res.items()}
tok = {k: float(E.mean()) for k, E in res.items()}
for seed in SEEDS:
    for scratch in (False, True):
        name = "scratchpad" if scratch else "direct    "
        print(f"seed {seed} {name}: exact-match a(n) = {[round(acc[seed, n, scratch], 3) for n in LENGTHS]}, "
              f"per-token error = {[round(tok[seed, n, scratch], 3) for n in LENGTHS]}")

# %% [markdown]
# What holds in every seed (we assert it): accuracy falls with length in both formats, and the per-token error of
# the longest problems is lower with the scratchpad than without. Each scratchpad token is an easier prediction: over
# 120 seeds (offsets 4100-4139) lower by 0.10 to 0.19, except one seed at offset 4111 (0.047), so the cell asserts
# "lower" per seed and "lower by more than 0.05" on the mean over the three seeds (0.12 to 0.18 in those 40 draws).
# But at this budget the scratchpad does **not** raise exact-match accuracy: it has $2n+1$ tokens to get right
# instead of $n+2$, and the easier tokens do not yet make up for the extra ones (we assert that both formats stay
# below 5 % exact on 3-digit problems in every seed; the printed accuracies above are this run's). With much longer
# training the scratchpad format is known to be learned faster and more reliably (Lee et al., "Teaching Arithmetic to
# Small Transformers", 2023, arXiv:2307.03381); on a laptop CPU within a few seconds we can show the per-token effect,
# not the end result. Note also that our scratchpad changes two things at once, the order of the digits and the
# carries written out; separating them would need a third format (reversed digits without carries).

# %%
for seed in SEEDS:
    for scratch in (False, True):
        a_n = [acc[seed, n, scratch] for n in LENGTHS]
        assert a_n[0] > a_n[-1], (seed, scratch, a_n)
    assert tok[seed, 3, True] < tok[seed, 3, False], seed                # easier tokens with the scratchpad
    assert max(acc[seed, 3, True], acc[seed, 3, False]) < 0.05, seed     # ... but no exact-match gain yet
assert np.mean([tok[seed, 3, False] - tok[seed, 3, True] for seed in SEEDS]) > 0.05     # 0.12 or more in 40 draws

fig, axes = plotting.figure(2, 1, width=4.0)
for scratch, ls in ((False, "-"), (True, "--")):
    name = "scratchpad" if scratch else "direct"
    axes[0].plot(LENGTHS, np.median([[tok[s, n, scratch] for n in LENGTHS] for s in SEEDS], 0), "o" + ls, label=name)
    axes[1].plot(LENGTHS, np.median([[acc[s, n, scratch] for n in LENGTHS] for s in SEEDS], 0), "o" + ls, label=name)
plotting.label(axes[0], "Per-token error (median of 3 seeds)", "digits per operand n", "error rate")
plotting.label(axes[1], "Exact-match accuracy (median of 3 seeds)", "digits per operand n", "accuracy")
axes[0].legend(fontsize=8)
plt.tight_layout()
plt.show()

# %% [markdown]
# ## Manifold lens (F2): do errors compound as $(1-e)^n$?
#
# Y. LeCun's slide "Auto-Regressive Generative Models Suck!" argues: if each token is wrong with probability $e$,
# independently, an answer of $n$ tokens is right with probability $(1-e)^n$, which decays exponentially. The
# manifold seeds answer that errors on stacked manifolds overlap rather than compound; Dziri et al. ("Faith and
# Fate: Limits of Transformers on Compositionality", NeurIPS 2023, arXiv:2305.18654) find that transformers fail on
# compositional tasks in structured ways, not by independent coin flips. Both are claims about the *joint*
# distribution of errors, and our models let us measure it.
#
# Two measurements, per seed and length. First, independence across positions: the mean pairwise correlation
# $\bar\rho$ of the 0/1 error indicators of the completion positions (exercise 4), and the exact-match accuracy
# against the product $\prod_\ell (1 - e_\ell)$ that independent errors would give. Second, the $(1-e)^n$ model
# itself: fit one $e$ on the 1-digit problems (exercise 3) and predict the 3-digit accuracy $(1-e)^{L}$.

# %%
shuffle_rng = numpy_rng(7)


def independent_gap_sd(E, draws=200):
    """The spread of a(n) - prod(1 - e_l) on N_TEST problems when the errors ARE independent: each position's column
    of E shuffled across problems on its own (same per-position rates, any dependence destroyed)."""
    gaps = []
    for _ in range(draws):
        shuffled = np.stack([shuffle_rng.permutation(col) for col in E.T], 1)
        gaps.append((shuffled.sum(1) == 0).mean() - np.prod(1 - shuffled.mean(0)))
    return float(np.std(gaps))


rho, prod_gap, gap_sd, fit = {}, {}, {}, {}
for seed in SEEDS:
    for scratch in (False, True):
        for n in LENGTHS:
            E = res[seed, n, scratch]
            rho[seed, n, scratch] = sp.error_correlation(E)
            prod_gap[seed, n, scratch] = acc[seed, n, scratch] - float(np.prod(1 - E.mean(0)))
            gap_sd[seed, n, scratch] = independent_gap_sd(E)
        L = {n: res[seed, n, scratch].shape[1] for n in LENGTHS}
        e_hat = sp.fit_per_token_error([L[1]], [acc[seed, 1, scratch]])
        fit[seed, scratch] = (e_hat, float(sp.independent_error_accuracy(e_hat, L[3])), acc[seed, 3, scratch])
        print(f"seed {seed} {'scratchpad' if scratch else 'direct    '}: mean rho by n "
              f"{[round(rho[seed, n, scratch], 3) for n in LENGTHS]}; a(n) - prod(1 - e_l) "
              f"{[round(prod_gap[seed, n, scratch], 3) for n in LENGTHS]}; e fitted on n = 1: {e_hat:.3f}, "
              f"predicted a(3) = {fit[seed, scratch][1]:.3f}, observed {fit[seed, scratch][2]:.3f}")

# %% [markdown]
# The outcome at this scale, asserted over all seeds, formats and lengths:
#
# - **Errors do not come together, on average.** Averaged over the 18 cases (3 seeds, 3 lengths, 2 formats), the mean
#   pairwise correlation $\bar\rho$ stayed between -0.10 and +0.03 over 41 seed offsets (4002, 4100-4139; we assert
#   below 0.1). A single model can come out positive (above 0.15 in one case at 4 of those 41 offsets, up to 0.31),
#   so no single case is asserted; the large departures from 0 are more often *negative*, on 1-digit problems (down
#   to -0.39): the model errs at one position or at the other, rarely at both. Accordingly the
#   exact-match accuracy is at most a few points below the product of the per-position accuracies (we assert less
#   than 0.08 below; the largest gap measured was 0.063), and on average on it: averaged over the 18 cases the gap
#   stayed between -0.004 and +0.003 over 28 draws (seed offsets 9203 and 9300-9325; we assert within 0.01). Single
#   cases depart in both directions by more than sampling noise. "Noise" is computed: shuffling each position's errors
#   across the 400 problems on its own keeps the per-position rates and destroys any dependence, and the spread of the
#   gap over 200 shuffles is its standard deviation under independence (about 0.005). Summed over the three seeds,
#   the gap for one length and format ranged from 8.4 of those standard deviations below to 5.2 above (22 of those
#   draws; printed for this run): how the positions' errors depend on each other varies from model to model, and a
#   claim for every case, "no more than chance above the product", failed at offset 9203. There is no sign of a
#   systematic "overlap" that would make long answers safer than $(1-e)^n$.
# - **But $(1-e)^n$ with one $e$ still fails**, for another reason: the errors are not *identically* distributed. The
#   per-token error grows with the problem's length (longer carry chains, more positions to align), so an $e$ fitted on
#   short problems over-predicts the accuracy on long ones, in every seed, wherever 400 test problems can tell: in the
#   direct format the fit predicts 5 or more exact answers out of 400 (3 % to 22 % measured) and far fewer come out.
#   (For at least two of the three seeds: in 3 of the 20 draws we swept, one seed's direct-format prediction was itself
#   below 5 of 400, the floor case below.) With the scratchpad's longer answers the prediction itself is below 5 of 400
#   and the observation 0 or 1 of 400; one exact answer more or less decides the order there (at one seed offset 1 of
#   400 came out against 0.7 predicted), so the cell asserts only that both are at that floor.
#
# So neither slogan holds as stated. For this under-trained model the errors are, on average, independent or slightly
# exclusive, not overlapping (single models lean either way); and a constant per-token error is wrong. Dziri et al.
# report that *trained* models fail more structurally, with errors concentrated in the hard sub-steps; at a few
# seconds of CPU we see the early, noise-like regime. The number to carry forward is the measurement, not the slogan.

# %%
mean_rho = float(np.nanmean(list(rho.values())))         # nan: a case with an error-free or all-wrong position
print(f"mean rho over the {len(rho)} (seed, length, format) cases {mean_rho:+.3f}; single cases from "
      f"{np.nanmin(list(rho.values())):+.2f} to {np.nanmax(list(rho.values())):+.2f}")
assert mean_rho < 0.1                                     # not positive on average: errors do not come together
for k, g in prod_gap.items():
    assert -0.08 < g, (k, g)                                   # below the product: errors exclude each other a little
z_pooled = {(n, scratch): sum(prod_gap[seed, n, scratch] for seed in SEEDS)
            / max(math.sqrt(sum(gap_sd[seed, n, scratch] ** 2 for seed in SEEDS)), 1e-12)
            for n in LENGTHS for scratch in (False, True)}
print("a(n) - prod(1 - e_l) summed over the seeds, in shuffle standard deviations, by (n, scratchpad):",
      {k: round(v, 1) for k, v in z_pooled.items()})
mean_gap = float(np.mean(list(prod_gap.values())))
print(f"a(n) - prod(1 - e_l) averaged over the {len(prod_gap)} cases: {mean_gap:+.4f}")
assert abs(mean_gap) < 0.01                                    # on average on the product: no overlap bonus
for seed in SEEDS:
    for scratch in (False, True):
        e_hat, predicted, observed = fit[seed, scratch]
        if predicted * N_TEST >= 5:                          # resolvable by N_TEST problems: the fit over-predicts
            assert predicted > observed, (seed, scratch, predicted, observed)
        else:                                                # both at the floor: a few exact answers at most
            assert observed * N_TEST <= 3, (seed, scratch, predicted, observed)
        assert tok[seed, 3, scratch] > tok[seed, 1, scratch] + 0.05      # not identically distributed
assert sum(fit[seed, False][1] * N_TEST >= 5 for seed in SEEDS) >= 2   # direct format: resolvable in most seeds

fig, ax = plotting.figure()
for scratch, c in ((False, "C0"), (True, "C1")):
    L = [res[SEEDS[0], n, scratch].shape[1] for n in LENGTHS]
    ax.semilogy(L, [max(acc[SEEDS[0], n, scratch], 1e-3) for n in LENGTHS], "o", color=c,
                label=f"{'scratchpad' if scratch else 'direct'}: observed")
    e_hat = fit[SEEDS[0], scratch][0]
    ax.semilogy(L, sp.independent_error_accuracy(e_hat, np.array(L)), "--", color=c, label="(1 - e)^L fitted on n = 1")
plotting.label(ax, "Exact-match accuracy against answer length (seed 0)", "completion tokens L",
               "accuracy (log; 0 shown at 1e-3)")
ax.legend(fontsize=7)
plt.show()

# %% [markdown]
# ## 4.4 The ReAct paradigm: the think-act loop
#
# ReAct (Yao et al., "ReAct: Synergizing Reasoning and Acting in Language Models", ICLR 2023, arXiv:2210.03629)
# interleaves three kinds of text: **Thought** (the model reasons), **Action** (`tool[argument]`, a call the
# program runs) and **Observation** (the tool's result, written back into the context). The loop ends when the
# model writes **Answer**. The seed's pseudo-code appends only the observations to the history and has no step
# limit. Both are bugs: a model that cannot see its own earlier thoughts and actions plans from scratch at every
# step (and repeats itself), and a model that never answers would loop forever.
#
# `manifold_course.agents.react` has three tools: a calculator (`safe_calc`, below), a lookup in a small JSON fact
# table and a fake ticket-price API. The "model" is scripted: a function that writes fixed steps, a stand-in
# stated as such, since the point here is the protocol around it.

# %%
llm = ra.scripted_model([
    "Thought: I need the price of one ticket from Paris to Berlin.\nAction: price[Paris->Berlin]",
    "Thought: One ticket costs 120 euros; three with 10% off.\nAction: calculator[3 * 120 * 0.9]",
    "Thought: That is the total.\nAnswer: 324.0",
])
answer, trace = ra.react_loop(llm, ra.TOOLS, "What do 3 tickets Paris->Berlin cost with 10% off?", max_steps=5)
print("\n".join(trace))
assert answer == "324.0" and len(trace) == 5 and trace[1] == "Observation: 120"
assert all(trace[0] in h and trace[1] in h for h in llm.histories[1:])      # its own thought stayed in context

# %% [markdown]
# The failure modes, each turned into an observation the model can read, never into a crash: an unknown tool, a
# malformed action, a tool that fails (a missing key, a division by zero), and a model stuck in a loop, which the
# step limit stops.

# %%
failures = {
    "unknown tool": ["Thought: search the web.\nAction: search[capital of Italy]",
                     "Thought: no search tool; use lookup.\nAction: lookup[capital of Italy]", "Answer: Rome"],
    "malformed action": ["Action: calculator 2 + 2", "Action: calculator[2 + 2]", "Answer: 4"],
    "tool error": ["Action: lookup[capital of Spain]", "Action: calculator[1 / 0]", "Answer: I do not know"],
    "loop": ["Thought: let me check again.\nAction: lookup[capital of France]"],
}
outcomes = {}
for name, steps in failures.items():
    ans, tr = ra.react_loop(ra.scripted_model(steps), ra.TOOLS, name, max_steps=4)
    outcomes[name] = (ans, tr)
    print(f"--- {name}: answer {ans!r} after {sum(1 for t in tr if not t.startswith('Observation'))} model calls")
    print("\n".join(t for t in tr if t.startswith("Observation")))
assert outcomes["unknown tool"][0] == "Rome" and "unknown tool 'search'" in outcomes["unknown tool"][1][1]
assert outcomes["malformed action"][1][1].startswith("Observation: error: malformed")
assert all(t.startswith("Observation: error") for t in outcomes["tool error"][1][1:4:2])
assert outcomes["loop"][0] is None and len(outcomes["loop"][1]) == 8      # 4 calls, 4 observations, then stop

# %% [markdown]
# ### A calculator that is not `eval`
#
# The model's text is untrusted input. `eval("__import__('os').system('rm -rf ~')")` runs it. `safe_calc` parses
# the text into a syntax tree and evaluates only numbers, `+ - * / // % **` and unary signs; names, calls,
# attributes and everything else are refused, and so are power towers (an exponent above 100), which would
# otherwise keep the CPU busy for minutes (`9 ** 9 ** 9` has 370 million digits).

# %%
attacks = ["__import__('os').getcwd()", "open('/etc/passwd').read()", "(1).__class__", "9 ** 9 ** 9",
           "[x for x in range(10**9)]", "1 / 0"]
for a in attacks:
    try:
        ra.safe_calc(a)
        raise AssertionError(f"{a} was evaluated")
    except ValueError as exc:
        print(f"{a!r:32} -> refused: {exc}")
assert ra.safe_calc("3 * 120 * 0.9") == 324.0 and ra.safe_calc("2 ** 100") == 2**100
assert ra.safe_calc("8 / (3 - 8 / 3)", exact=True) == 24                    # exact fractions for the next section

# %% [markdown]
# ## 4.9 From chains to trees: Tree of Thoughts on the Game of 24
#
# Tree of Thoughts (Yao et al., "Tree of Thoughts: Deliberate Problem Solving with Large Language Models", NeurIPS
# 2023, arXiv:2305.10601) treats reasoning as search. A node is a partial solution; the model *proposes* several
# next thoughts, an *evaluator* scores them, and breadth-first search keeps the best $b$:
#
# $$S_{t+1} = \mathrm{top}_b\{s \oplus z:\ s\in S_t,\ z\in\mathrm{propose}(s)\}\ \text{by}\ V(s\oplus z).$$
#
# The Game of 24: combine four numbers with $+ - \times /$, each used once, to make exactly 24. A thought takes two
# numbers and puts back their result, so three thoughts finish a puzzle. Our proposer is exhaustive (every pair,
# every operation: $6\binom{4}{2} = 36$ first thoughts) and the evaluator a hand-written heuristic: exact when two
# numbers are left (can one operation make 24?), otherwise how close the largest sum or product of a pair comes to
# 24. Both are rule-based stand-ins for the language model of the paper. Arithmetic is exact with
# `fractions.Fraction`: 3, 3, 8, 8 needs $8/(3 - 8/3) = 24$, which floats get wrong.

# %%
assert len(tot.propose_24((4, 9, 10, 13))) == 36 and len(tot.propose_24((0, 5))) == 5
print("floats:", 8 / (3 - 8 / 3), "  fractions:", Fraction(8) / (3 - Fraction(8, 3)))
assert 8 / (3 - 8 / 3) != 24 and tot.evaluate_expression(tot.solve_24((3, 3, 8, 8))) == 24

N_PUZZLES = 40 * SCALE
search = {}
for seed in SEEDS:
    puzzles = tot.random_puzzles(numpy_rng(seed), N_PUZZLES)
    ok = np.array([tot.solvable(p) for p in puzzles])
    found = {}
    for name, beam, value in (("greedy chain (b = 1)", 1, tot.heuristic_value), ("beam b = 5", 5, tot.heuristic_value),
                              ("beam b = 5, no evaluator", 5, tot.zero_value), ("exhaustive", None, tot.zero_value)):
        exprs = [tot.tot_bfs(p, beam, value) for p in puzzles]
        assert all(e is None or tot.evaluate_expression(e) == 24 for e in exprs)
        found[name] = np.array([e is not None for e in exprs])
    search[seed] = (puzzles, ok, found)
    print(f"seed {seed}: {ok.sum()} of {N_PUZZLES} puzzles solvable; solved: "
          + ", ".join(f"{k} {v.sum()}" for k, v in found.items()))

# %% [markdown]
# In every seed the exhaustive search solves exactly the solvable puzzles (a fact of the search, asserted exactly),
# and the beam of 5 solves more than the greedy chain, which commits to the first thought the heuristic likes. The
# same beam without an evaluator (it keeps the first 5 children generated) solves far fewer than either, so the gain
# comes from the evaluator and the search together. Over 2000 draws (seed offsets 0-1999, 6000 seeds of 40 puzzles)
# the chain solved 3 to 65 % of one seed's solvable puzzles (median 33 %), the beam 36 to 97 % (median 69 %) and the
# beam without an evaluator 0 to 28 % (median 6 %). The beam beat the chain in every one of the 6000 seeds, but the
# chain's share is so spread that in 8 of them (offsets 157, 472, 895, 1070, 1553, 1596, 1665 and 1938) it solved no
# more than the beam without an evaluator; over the three seeds' puzzles together the chain was ahead by 10 puzzles or
# more in all 2000 draws (26 in the median), so that comparison is asserted pooled.

# %%
for seed in SEEDS:
    _, ok, found = search[seed]
    assert np.array_equal(found["exhaustive"], ok)
    assert found["greedy chain (b = 1)"].sum() < found["beam b = 5"].sum() <= ok.sum()   # 6000 seeds: always
solved = {k: sum(int(search[seed][2][k].sum()) for seed in SEEDS) for k in search[SEEDS[0]][2]}
print("solved over the three seeds:", solved)
assert solved["beam b = 5, no evaluator"] < solved["greedy chain (b = 1)"]    # 2000 draws: by 10 or more

fig, ax = plotting.figure()
names = list(search[SEEDS[0]][2])
rates = np.array([[search[s][2][k].sum() / search[s][1].sum() for k in names] for s in SEEDS])
ax.bar(range(len(names)), rates.mean(0), yerr=rates.std(0), capsize=3)
ax.set_xticks(range(len(names)), [k.replace(" (", "\n(").replace(", ", ",\n") for k in names], fontsize=7)
plotting.label(ax, "Game of 24: share of solvable puzzles solved", "search", "success rate (mean, sd of 3 seeds)")
plt.show()

# %% [markdown]
# ### Manifold lens (F20b): search traces as trees with jumps
#
# ReJump ("ReJump: A Tree-Jump Representation for Analyzing and Improving LLM Reasoning", 2025, arXiv:2512.00831)
# writes a reasoning trace as a walk over a tree of intermediate steps: most moves go one step deeper, and a
# **jump** moves anywhere else (to a sibling, or back up several levels). Different reasoning behaviours
# (exploring, backtracking, verifying) show up as different jump statistics. A depth-first search gives such a
# trace directly: `tot.dfs_24` records each node with its parent in visiting order, `count_backtracks` counts the
# jumps (exercise 11) and `jump_lengths` how many levels each jump climbs.
#
# One relation is exact: a DFS that tries children in the evaluator's order first walks the greedy chain, so the
# greedy chain succeeds **if and only if** that DFS solves the puzzle with zero jumps. A chain is a tree search
# that is not allowed to jump. Beyond that, we measure on the solvable puzzles how many jumps the search needs
# before its first solution with the evaluator's order and without it (generation order), and how far the jumps go.

# %%
jumps = {}
for seed in SEEDS:
    puzzles, ok, found = search[seed]
    rows = []
    for p, solvable_p, greedy_ok in zip(puzzles, ok, found["greedy chain (b = 1)"]):
        if not solvable_p:
            continue
        solved_h, tr_h = tot.dfs_24(p, tot.heuristic_value)
        solved_u, tr_u = tot.dfs_24(p, None)
        assert solved_h and solved_u                                             # DFS is complete
        assert bool(greedy_ok) == (tot.count_backtracks(tr_h) == 0)              # the chain = DFS without jumps
        rows.append((tot.count_backtracks(tr_h), tot.count_backtracks(tr_u), tot.jump_lengths(tr_h)))
    jumps[seed] = rows
    h = np.array([r[0] for r in rows])
    u = np.array([r[1] for r in rows])
    lens = np.concatenate([r[2] for r in rows if r[2]])
    print(f"seed {seed}: jumps before the first solution, median (geometric mean): evaluator order {np.median(h):.0f} "
          f"({np.expm1(np.log1p(h).mean()):.0f}), generation order {np.median(u):.0f} ({np.expm1(np.log1p(u).mean()):.0f}); "
          f"solved without a jump: {np.mean(h == 0):.2f} vs {np.mean(u == 0):.2f}; "
          f"share of jumps that climb 1 level {np.mean(lens == 1):.2f}")

# %% [markdown]
# The evaluator's order reaches a solution without any jump far more often than the generation order (over the 108
# seeds of offsets 140-175: 11 to 53 % of the solvable puzzles, median 34 %, against 0 to 17 %, median 6 %), exactly
# as often as the greedy chain succeeds, and it needs fewer jumps on (geometric) average (by 0.63 to 2.5 in
# $\log(1 + \text{jumps})$ over 31 draws, seed offsets 140-159, 161 and 166-175). Both are asserted over the solvable
# puzzles of the three seeds together, because one seed's 24 to 38 puzzles are not always enough to show them. Over 36
# draws (offsets 140-175, 108 seeds) the jump-free share was higher by 0.14 to 0.42 pooled (we assert more than 0.1),
# but a single seed's difference fell to 0.10 and 0.00 (offsets 173 and 157), and in 3 of the 93 seeds of the 31 draws
# the evaluator's order needed slightly more jumps on average. Per puzzle the picture is noisier: the median can go
# either way on 40 puzzles, and the evaluator's order needed fewer jumps on only 51-81% of the puzzles, so we assert
# neither. Most jumps are short: the search tries a sibling at the deepest level, where the evaluator is exact, and
# rarely climbs back to the first thought (we assert that more than half the jumps climb one level; about 83% did). A
# good evaluator makes the tree look more like a chain; jump statistics measure how far a search, or a model's written
# reasoning, is from one.

# %%
for seed in SEEDS:
    lens = np.concatenate([r[2] for r in jumps[seed] if r[2]])
    assert np.mean(lens == 1) > 0.5                          # 108 seeds: 0.83 or more
h_all, u_all = (np.array([r[k] for seed in SEEDS for r in jumps[seed]]) for k in (0, 1))
print(f"all {len(h_all)} solvable puzzles of the three seeds: solved without a jump {np.mean(h_all == 0):.2f} "
      f"(evaluator order) against {np.mean(u_all == 0):.2f} (generation order); mean log(1 + jumps) "
      f"{np.log1p(h_all).mean():.2f} against {np.log1p(u_all).mean():.2f}")
assert np.mean(h_all == 0) > np.mean(u_all == 0) + 0.1     # 36 draws: 0.14 to 0.42 (mean 0.29, sd 0.05)
assert np.log1p(h_all).mean() < np.log1p(u_all).mean()       # 31 draws: by 0.63 or more; one seed alone: 3 of 93 not

# %%
print(f"chapter CPU time: {time.process_time() - T0:.1f} s")

# %% [markdown]
# ## Summary
#
# - **Chain-of-thought** buys serial computation: each written token can read the ones before. A tiny GPT trained
#   for a few seconds on addition made fewer per-token errors with a scratchpad on 3-digit problems, in every
#   seed, but at this budget that did not turn into more exactly-right answers (the scratchpad has more tokens).
# - **F2**: per-position errors of these models did not come together on average (mean correlation over 18 cases
#   between -0.10 and +0.03; single models from -0.39 to +0.31; accuracy on average within 0.01 of the product of
#   per-position accuracies), yet $(1-e)^n$ with one $e$ fitted on short problems over-predicted long ones,
#   because the per-token error grows with length. Measure the joint error distribution; do not assume it.
# - **ReAct**: a loop that keeps the model's own thoughts and actions in its context, turns malformed actions,
#   unknown tools and tool failures into observations, and stops after a step limit; tools never `eval` model text.
# - **Tree of Thoughts**: on the Game of 24 with exact fractions, a beam of 5 with a heuristic evaluator solved more
#   puzzles than the greedy chain, and the exhaustive search solved exactly the solvable ones.
# - **F20b**: DFS traces as trees with jumps; the greedy chain succeeds exactly when the ordered DFS needs no jump,
#   and the evaluator's ordering means more jump-free solutions and fewer jumps on average.
#
# **Exercises.** Open `exercises/v4_agents/02_reasoning_and_acting.ipynb` (the command `manifold-course lab` copies
# it to your `my_work/` folder). Eleven pieces: `scratchpad_multiplication`, `independent_error_accuracy`,
# `fit_per_token_error`, `error_correlation`, `extract_final_answer`, `parse_action`, `react_loop`, `safe_calc`,
# `propose_24`, `tot_bfs` and `count_backtracks`.
#
# **Further reading.**
# - M. Nye et al., "Show Your Work: Scratchpads for Intermediate Computation with Language Models", 2021,
#   arXiv:2112.00114; J. Wei et al., "Chain-of-Thought Prompting Elicits Reasoning in Large Language Models", 2022,
#   arXiv:2201.11903; T. Kojima et al., "Large Language Models are Zero-Shot Reasoners", 2022, arXiv:2205.11916.
# - W. Merrill, A. Sabharwal, "The Expressive Power of Transformers with Chain of Thought", 2023,
#   arXiv:2310.07923; G. Feng et al., "Towards Revealing the Mystery behind Chain of Thought", 2023,
#   arXiv:2305.15408; N. Lee et al., "Teaching Arithmetic to Small Transformers", 2023, arXiv:2307.03381.
# - N. Dziri et al., "Faith and Fate: Limits of Transformers on Compositionality", 2023, arXiv:2305.18654.
# - S. Yao et al., "ReAct: Synergizing Reasoning and Acting in Language Models", 2022, arXiv:2210.03629.
# - S. Yao et al., "Tree of Thoughts: Deliberate Problem Solving with Large Language Models", 2023,
#   arXiv:2305.10601; "ReJump: A Tree-Jump Representation for Analyzing and Improving LLM Reasoning", 2025,
#   arXiv:2512.00831.
