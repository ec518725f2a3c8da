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
# # Volume 5, Chapter 3: Search and self-play, from minimax to AlphaZero (sections 5.8-5.9)
#
# A board game is a decision problem with a perfect model: the rules say exactly what every move does. The question
# is not "what happens if I move here?" but "there are too many futures to look at them all: which ones deserve my
# time?". This chapter answers it three times on tic-tac-toe, small enough to solve exactly, so that every player we
# build can be scored against perfect play:
#
# | section | method | what you will measure |
# |---|---|---|
# | 5.8 | minimax (negamax), alpha-beta | the exact value of every position; the size of the game tree, and what pruning saves |
# | 5.8 | Monte Carlo tree search (UCT, random rollouts) | strength against a random and a perfect player as the number of simulations grows |
# | 5.9 | AlphaZero-lite: a policy-value network, PUCT, self-play | trained in this notebook until it never loses to a perfect player; the network alone and the search alone, against the same opponent |
#
# **Goals.** After this chapter you can
# - write minimax in its negamax form, memoise it, and say why it is hopeless for Go and how chess engines got by;
# - write UCT: selection by UCB1, expansion, random rollout, backup with the negamax sign flip;
# - explain AlphaZero's loop: PUCT guided by a network's prior, leaves evaluated by its value head, visit counts
#   as policy targets, the loss $(z-v)^2 - \pi^\top\log p + c\lVert\theta\rVert^2$, self-play;
# - measure what the learned evaluator and the search each contribute.
#
# **Prerequisites.** Volume 5, chapter 1 (MDPs, Bellman's equation, value iteration); multi-armed bandits and
# UCB are introduced here from scratch. A little PyTorch (Volume 0).
#
# **Time.** About 1.5 hours of reading and running, plus 1.5 hours for the exercises. The notebook runs in about
# 35 s on a 2-core CPU (most of it the three self-play trainings).
#
# **Symbols.** $s$ a position, $a$ a move (a cell 0..8, row by row), $s\cdot a$ the position after it; $V(s)$ the
# game value for the *player to move* (+1 win, 0 draw, -1 loss); $N(s,a)$ the visit count of an edge of the
# search tree, $W(s,a)$ its summed results and $Q(s,a) = W/N$ its mean, all from the point of view of the player
# who chooses $a$ at $s$; $N(s)=\sum_b N(s,b)$; $c$, $c_{puct}$ exploration constants; $f_\theta(s) = (p, v)$ the
# network's move prior and value; $\pi$ the search's visit distribution, $\tau$ its temperature; $z$ a game's final
# result for the player to move.

# %%
from manifold_course import seed_everything

rng = seed_everything(0)

import math

import matplotlib.pyplot as plt
import numpy as np
from gymnasium.utils.env_checker import check_env

from manifold_course import plotting
from manifold_course.rl import alphazero as az
from manifold_course.rl import mcts
from manifold_course.rl import tictactoe as ttt
from manifold_course.seeding import course_seed

# %% [markdown]
# ## 5.8 Minimax: solving a game exactly
#
# Two players alternate; one's gain is the other's loss. The value of a position for the player to move is the
# best, over their moves, of what the opponent's reply position is worth *to them*, negated:
#
# $$V(s) = \max_{a} \big(-V(s\cdot a)\big), \qquad V(s) = -1 \text{ if the opponent has just completed a line},\; 0
# \text{ for a full board}.$$
#
# This is minimax (von Neumann 1928; Shannon, "Programming a Computer for Playing Chess", 1950) written once for
# both players, "negamax". It is the Bellman optimality equation of chapter 1 with the max of the second player
# turned into a min by the sign flip, and no discount. Memoised on the position
# (`manifold_course/rl/tictactoe.py`), the whole game is solved in a blink.

# %%
positions = ttt.all_positions()
n_terminal = sum(ttt.is_terminal(b) for b in positions)
tree_nodes, games = ttt.game_tree_size()
print(f"value of the empty board for X: {ttt.negamax(ttt.EMPTY)}")
print(f"{len(positions)} legal positions ({n_terminal} finished); the game tree has {tree_nodes:,} nodes and "
      f"{games:,} complete games")
assert ttt.negamax(ttt.EMPTY) == 0                              # perfect play draws
assert all(ttt.negamax(ttt.play(ttt.EMPTY, m)) == 0 for m in range(9))   # and every opening move keeps the draw
assert (len(positions), n_terminal, tree_nodes, games) == (5478, 958, 549_946, 255_168)


# %% [markdown]
# The game *tree* (every sequence of moves) is 100 times bigger than the set of *positions*, because many move
# orders reach the same position: memoising on the position turns the tree into a graph of 5478 nodes. Even the
# tree can be pruned without losing exactness: **alpha-beta** (Knuth & Moore, "An analysis of alpha-beta pruning",
# Artificial Intelligence 1975) stops exploring a move as soon as it is proved worse than one already found. Here
# is its node count, moves in index order:

# %%
def alphabeta(board, alpha, beta, counter):
    counter[0] += 1
    moves = ttt.legal_moves(board)
    if not moves:
        return ttt.terminal_value(board)
    best = -2
    for m in moves:
        best = max(best, -alphabeta(ttt.play(board, m), -beta, -alpha, counter))
        alpha = max(alpha, best)
        if alpha >= beta:                      # the opponent will never allow this line: prune the rest
            break
    return best


counter = [0]
assert alphabeta(ttt.EMPTY, -2, 2, counter) == 0
print(f"alpha-beta visits {counter[0]:,} nodes instead of {tree_nodes:,} ({tree_nodes / counter[0]:.0f}x fewer)")
assert counter[0] == 18_297

# %% [markdown]
# What perfect play looks like: after X opens on an edge (cell 1), four replies hold the draw for O and four lose,
# among them the far corners (6, 8), which look harmless and lose only to precise play several moves later.
# Positions like this are what random rollouts misjudge and what a learned evaluator has to discover.

# %%
opening = ttt.play(ttt.EMPTY, 1)
reply_value = np.full(9, np.nan)
for m in ttt.legal_moves(opening):
    reply_value[m] = -ttt.negamax(ttt.play(opening, m))         # value for O after O plays m
fig, ax = plotting.figure(width=3.4, height=3.2)
im = ax.imshow(reply_value.reshape(3, 3), cmap="RdYlGn", vmin=-1, vmax=1)
ax.text(1, 0, "X", ha="center", va="center", fontsize=20)
plt.colorbar(im, ax=ax, label="exact value for O (+1 win, 0 draw, -1 loss)")
plotting.label(ax, "O's replies after X opens on an edge", "column", "row")
plt.show()
assert ttt.optimal_moves(opening) == (0, 2, 4, 7)

# %% [markdown]
# > **Careful.** It is tempting to say minimax "must enumerate all possibilities" and is therefore useless beyond toy
# > games. Not quite: chess engines from Deep Blue to Stockfish are minimax searches, made practical by alpha-beta
# > pruning (above: 30x fewer nodes, and much more with good move ordering), a depth limit and a heuristic
# > evaluation at the leaves. What defeats them in Go is the size *and* the lack of a good hand-written evaluation.
# > And keep the two Go numbers apart: about $10^{170}$ is the number of *legal positions* (Tromp & Farnebäck,
# > "Combinatorics of Go", 2006), while the *game-tree complexity*, the analogue of our 549,946, is about $10^{360}$
# > (branching factor ~250, games ~150 moves; Allis 1994). Tic-tac-toe's two numbers are 5478 and 549,946.

# %% [markdown]
# ## A Gymnasium environment for tic-tac-toe
#
# Gymnasium has no tic-tac-toe, so the course has one, written to Gymnasium's API: the agent plays one side against
# a fixed opponent, `"random"` or `"perfect"` (a uniformly random one of its optimal moves, drawn from the
# environment's own seeded generator). Observations are the 9 cells (0 empty, 1 the agent's, 2 the opponent's);
# `info["action_mask"]` marks the legal moves; the reward is +1, 0 or -1 at the end; an illegal move ends the
# episode with -1. Gymnasium's own checker passes:

# %%
for opponent in ("random", "perfect"):
    for first in (True, False):
        check_env(ttt.TicTacToeEnv(opponent, agent_first=first), skip_render_check=True)

env = ttt.TicTacToeEnv("perfect", agent_first=True)
obs, info = env.reset(seed=course_seed(0))
obs, reward, done, _, info = env.step(4)
print(env.render(), "\nobservation:", obs, "mask:", info["action_mask"])

# %% [markdown]
# ## 5.8 Monte Carlo tree search
#
# Instead of looking at every future, **Monte Carlo tree search** grows a tree one node per *simulation* and spends
# its simulations where they matter (Coulom, "Efficient Selectivity and Backup Operators in Monte-Carlo Tree Search",
# Computers and Games 2006; survey: Browne et al., "A Survey of Monte Carlo Tree Search Methods", IEEE TCIAIG 2012).
# One simulation:
#
# 1. **Selection.** From the root, while every move of the node has been tried, follow **UCT** (Kocsis &
#    Szepesvari, "Bandit based Monte-Carlo Planning", ECML 2006), the UCB1 bandit rule at every node:
#    $$a^* = \arg\max_a\Big[Q(s,a) + c\sqrt{\frac{\ln N(s)}{N(s,a)}}\Big],\qquad \text{an untried move scores } +\infty.$$
#    The first term exploits what looked good, the second explores what was tried little; $c$ trades them
#    ($c = 1.4 \approx \sqrt2$ here).
# 2. **Expansion.** Add the child reached by the first untried move.
# 3. **Rollout.** Play uniformly random moves to the end: a noisy but unbiased-for-random-play estimate of the
#    new node, with no knowledge of the game beyond its rules.
# 4. **Backup.** Add the result to $N$ and $W$ of every edge on the path. The edges alternate between the two
#    players, so the sign alternates: with $v$ the result for the player to move at the leaf and $L$ edges on the
#    path, edge $k$ gets $(-1)^{L-k}v$; the last edge, chosen by the leaf player's opponent, gets $-v$.
#
# The move played is the most visited at the root. UCT ranks moves by visits, and visits need not put an immediate
# win ahead of a slower one, nor a block ahead of a move that loses a few moves later; `mcts.mcts_move` therefore
# first plays a winning move if there is one and, facing a threat, searches only the blocking cells: the
# "decisive" and "anti-decisive" moves of Teytaud & Teytaud (IEEE CIG 2010). Here is where 2000 simulations go from
# the empty board:

# %%
visits = mcts.uct_search(ttt.EMPTY, 2000, seed=0)
assert visits.sum() == 2000
fig, ax = plotting.figure(width=3.4, height=3.2)
im = ax.imshow(visits.reshape(3, 3), cmap="viridis")
plt.colorbar(im, ax=ax, label="visits N(root, a)")
plotting.label(ax, "UCT, 2000 simulations from the empty board", "column", "row")
plt.show()
print("share of the visits: centre", round(visits[4] / 2000, 2), "| corners", round(visits[[0, 2, 6, 8]].sum() / 2000, 2),
      "| edges", round(visits[[1, 3, 5, 7]].sum() / 2000, 2))

# %% [markdown]
# ### Strength against the number of simulations
#
# Each simulation budget plays games through the Gymnasium environment, half as X and half as O: 48 against the
# random player, 96 against the perfect player. Against the perfect player a win is impossible, and the question is
# how often the search *loses*.

# %%
SIMS = (2, 8, 32, 128)
GAMES = {"random": 48, "perfect": 96}


def play_episode(env, seed, n_sims):
    obs, info = env.reset(seed=course_seed(seed))
    done, reward, turn = False, 0.0, 0
    while not done:
        a = mcts.mcts_move(info["board"], n_sims, seed=1000 * seed + turn)
        obs, reward, done, _, info = env.step(a)
        turn += 1
    return reward


rates = {}                                   # (opponent, sims) -> (win, draw, loss) rates
for opponent in ("random", "perfect"):
    envs = {first: ttt.TicTacToeEnv(opponent, agent_first=first) for first in (True, False)}
    for n in SIMS:
        r = np.array([play_episode(envs[g % 2 == 0], g, n) for g in range(GAMES[opponent])])
        rates[opponent, n] = ((r > 0).mean(), (r == 0).mean(), (r < 0).mean())
        print(f"{opponent:>7} opponent, {n:>3} simulations: win {rates[opponent, n][0]:.2f}  "
              f"draw {rates[opponent, n][1]:.2f}  loss {rates[opponent, n][2]:.2f}")

fig, axes = plotting.figure(ncols=2, width=4.2, height=3.2)
for ax, opponent in zip(axes, ("random", "perfect")):
    for i, (name, color) in enumerate((("win", "C2"), ("draw", "C7"), ("loss", "C3"))):
        ax.plot(SIMS, [rates[opponent, n][i] for n in SIMS], "o-", color=color, label=name)
    ax.set_xscale("log", base=2)
    ax.set_ylim(-0.03, 1.03)
    ax.legend()
    plotting.label(ax, f"UCT against a {opponent} player ({GAMES[opponent]} games each)", "simulations per move (log scale)",
                   "fraction of games")
plt.tight_layout()
plt.show()

assert all(rates["perfect", n][0] == 0 for n in SIMS)                  # nobody beats perfect play
few_sims = np.mean([rates["perfect", n][2] for n in SIMS[:2]])          # 2 and 8 simulations: 192 games
many_sims = np.mean([rates["perfect", n][2] for n in SIMS[2:]])         # 32 and 128 simulations: 192 games
print(f"loss rate against perfect play: {few_sims:.2f} with 2-8 simulations, {many_sims:.2f} with 32-128")
assert many_sims < few_sims                                             # more search, fewer losses to perfect play
assert rates["random", 128][0] >= 0.75

# %% [markdown]
# With a handful of simulations UCT already beats the random player in most games (the decisive-move rule alone
# wins many of them), and with 128 it wins at least three in four. Against perfect play its losses fall as the
# budget grows, but random rollouts are a poor judge of quiet positions (a rollout plays as badly for both sides, so
# a position that loses only to precise play looks fine), and even 128 simulations lose some games. (A rate over 96
# games has a standard error of up to 0.05, which is why the assert compares the two halves of the curve, 192 games
# each, and not neighbouring points.)

# %% [markdown]
# ## 5.9 AlphaZero-lite: a learned evaluator inside the search
#
# AlphaGo (Silver et al., "Mastering the game of Go with deep neural networks and tree search", Nature 2016) joined
# MCTS with networks trained first on human games. AlphaGo Zero (Silver et al., "Mastering the game of Go without
# human knowledge", Nature 2017) and AlphaZero (Silver et al., "A general reinforcement learning algorithm that
# masters chess, shogi, and Go through self-play", Science 2018, arXiv:1712.01815) start from zero, and change MCTS
# in two places:
#
# - **No rollouts.** One network $f_\theta(s) = (p, v)$ has a *policy head* $p$ (a prior over moves) and a
#   *value head* $v \in [-1, 1]$; a new leaf is scored by $v$ instead of a random game.
# - **PUCT selection** (after Rosin, "Multi-armed bandits with episode context", Annals of Mathematics and AI 2011):
#   $$a^* = \arg\max_a\Big[Q(s,a) + c_{puct}\,P(s,a)\,\frac{\sqrt{\sum_b N(s,b)}}{1+N(s,a)}\Big].$$
#   The prior decides where to look first; as an edge's visits grow its bonus shrinks and $Q$ takes over.
#
# Learning is **self-play**: the search plays both sides; at every move it records the visit distribution
# $\pi(a) \propto N(s,a)^{1/\tau}$ ($\tau = 1$ for the training target, and for choosing moves during self-play;
# $\tau \to 0$, the most visited move, when playing for real), and at the end the result $z$ for the player to
# move. The network is trained to predict both:
#
# $$\ell(\theta) = (z - v)^2 - \pi^\top \log p + c\,\lVert\theta\rVert^2 .$$
#
# The visit counts are a *better* policy than $p$ (the search improved on it), and $z$ is what actually happened:
# a better network makes a better search, which makes better data. Our version (`manifold_course/rl/alphazero.py`):
# an MLP on 18 inputs (the mover's stones, the opponent's), two hidden layers of 64; each iteration plays 48
# self-play games with 40 simulations per move and Dirichlet noise at the root, starting from the empty board or one
# of the 9 positions one move in; every position enters training in its 8 rotations and reflections; 150 Adam steps
# on the last 3 iterations' data. Because tic-tac-toe has only 5478 positions, while the network is fixed we
# evaluate all of them in one batch and the search reads a table (on Go one batches the leaves of many parallel
# games instead; that batch is what a GPU scales).
#
# **The criterion.** The deterministic player (the most visited move after 100 PUCT simulations, no noise) must
# never lose to a perfect player, as X and as O, from the empty board and from each of the 9 positions one move in.
# The perfect player breaks ties among its optimal moves **in every way**: `az.outcomes_vs_perfect` branches over
# all of them and counts the game lines, so "never loses" means no line at all ends in a loss. Every second
# iteration the loop evaluates and stops as soon as the criterion holds, with a budget of 30 iterations. (Across
# about 60 seeds we tried, it took between 2 and 14 iterations, most often 2 to 6: a budget of twice the worst
# case we saw.)
#
# First, the two halves *before* any learning: the raw policy head of an untrained network (its most probable legal
# move, no search), and the search alone, with no evaluator (a uniform prior and value 0 at every leaf, 100
# simulations: only finished games tell it anything).

# %%
untrained = az.PolicyValueNet()
table0 = az.evaluate_all(untrained)
raw_untrained = az.outcomes_vs_perfect(lambda b: az.policy_move(b, table0))
blind = {b: (np.where(np.asarray(b) == 0, 1.0, 0.0) / b.count(0), 0.0) for b in positions if not ttt.is_terminal(b)}
search_alone = az.outcomes_vs_perfect(lambda b: az.search_move(b, blind, 100))
print("untrained policy head, no search:", raw_untrained)
print("search alone (uniform prior, value 0), 100 simulations:", search_alone)
assert raw_untrained["loss"] > 0 and search_alone["loss"] > 0 and search_alone["win"] == raw_untrained["win"] == 0

# %% [markdown]
# Both lose. The search alone is not hopeless (it sees every win and loss within its horizon) but 100 simulations
# spread over moves it cannot tell apart are not enough to see a fork coming. Now the loop. We train three networks
# from three seeds (the notebook's and two more), so that what we claim is what holds across them.

# %%
SEEDS = (0, 1, 2)
runs = {s: az.train(az.AZConfig(seed=s)) for s in SEEDS}
for s, res in runs.items():
    print(f"seed {s}: lost lines at each evaluation {[(it, out['loss']) for it, out in res.evals]}, "
          f"criterion met after {res.solved_at} iterations")
assert all(res.solved_at is not None for res in runs.values())        # never loses, within the budget, every seed

# %%
res = runs[0]
fig, axes = plotting.figure(ncols=2, width=4.2, height=3.2)
it = np.arange(1, len(res.losses) + 1)
axes[0].plot(it, res.losses, "o-", label="total loss")
axes[0].plot(it, res.value_losses, "s--", label="value $(z-v)^2$")
axes[0].plot(it, res.policy_losses, "^--", label=r"policy $-\pi^\top\log p$")
axes[0].legend()
plotting.label(axes[0], "AlphaZero-lite training loss (seed 0)", "iteration", "loss (nats + squared error)")
for s, r in runs.items():
    axes[1].plot([i for i, _ in r.evals], [o["loss"] for _, o in r.evals], "o-", label=f"seed {s}")
axes[1].axhline(0, color="k", lw=0.5)
axes[1].legend()
plotting.label(axes[1], "Lines lost to the perfect player", "iteration", "lost game lines (of all tie-breaks)")
plt.tight_layout()
plt.show()

# %% [markdown]
# The policy loss does not go to zero, and should not: its floor is the entropy of the visit distributions, which
# stay spread over equally good moves (tic-tac-toe has many). Now the question of 5.9: what does each half bring?
# Against the same opponent and the same criterion we play each trained network's **raw policy head** (its most
# probable legal move, no search) and the same network **inside the search**.

# %%
raw_trained, with_search = {}, {}
for s, r in runs.items():
    table = az.evaluate_all(r.net)
    raw_trained[s] = az.outcomes_vs_perfect(lambda b: az.policy_move(b, table))["loss"]
    with_search[s] = r.evals[-1][1]["loss"]          # the loop's last evaluation: the same network, 100 simulations
print("lost lines, raw policy head of the trained network:", raw_trained)
print("lost lines, the same network inside 100-simulation PUCT:", with_search)
print("lost lines, search alone without an evaluator:", search_alone["loss"])
assert all(v == 0 for v in with_search.values())
assert search_alone["loss"] > 0

# %% [markdown]
# What we find: the trained network inside the search never loses; the search without the network loses
# (`search_alone`, above); and the raw policy head of the same trained network, used alone, usually still loses some
# lines (the counts are printed above; we assert nothing about them, because in a minority of training seeds the raw
# head happens to be perfect too). At the moment the criterion is met the raw head is usually not perfect yet: the
# search is correcting it. (Trained longer, a network this size can learn perfect
# tic-tac-toe outright: the game is tiny. On Go the gap is large and stays: the raw AlphaGo Zero network was rated
# about 3,055 Elo, the network with search 5,185; Silver et al. 2017, Fig. 6.)
#
# > **Careful.** AlphaZero is sometimes summarised as "planning beats intuition". What it shows is that the
# > combination is strong: a learned evaluator (the intuition, here the prior and the value) makes a small search
# > effective, and the search makes the evaluator's mistakes correctable and generates its training targets.
# > Neither alone matches the combination reliably, as measured above on the same opponent; and the learned value is
# > trained by regression on self-play outcomes $z$, not by dynamic programming.

# %% [markdown]
# Finally the trained player (seed 0) against the random opponent of the Gymnasium environment, 24 games as X and 24
# as O: it wins most of them. (A random opponent reaches positions a perfect one never plays, so "never loses to
# perfect play" does not by itself promise anything here; we measure.)

# %%
table = az.evaluate_all(runs[0].net)
outcomes = []
for g in range(48):
    env = ttt.TicTacToeEnv("random", agent_first=g % 2 == 0)
    obs, info = env.reset(seed=course_seed(100 + g))
    done = False
    while not done:
        obs, reward, done, _, info = env.step(az.search_move(info["board"], table, 100))
    outcomes.append(reward)
outcomes = np.array(outcomes)
print(f"against random: win {np.mean(outcomes > 0):.2f}, draw {np.mean(outcomes == 0):.2f}, "
      f"loss {np.mean(outcomes < 0):.2f}")
assert np.mean(outcomes > 0) > 0.5

# %% [markdown]
# ## Summary
#
# - **Minimax** (negamax: $V(s) = \max_a -V(s\cdot a)$) solves tic-tac-toe exactly: 5478 positions, a draw.
#   Alpha-beta visits 18,297 of the 549,946 nodes of the game tree. For Go, neither enumeration nor a hand-written
#   evaluation is available.
# - **UCT** spends simulations by UCB1, evaluates with random rollouts and backs up with alternating signs; it beats
#   a random player with a few simulations, and loses less to perfect play as simulations grow, but random rollouts
#   misjudge positions that need precise play.
# - **AlphaZero** replaces rollouts by a value head, guides the search with a policy prior (PUCT), and learns both
#   from its own search: visit counts as policy targets, game results as value targets. Trained here in seconds, it
#   never loses to a perfect player; the search without the network loses, and so, in at least one of three
#   seeds, does the raw network without the search.
# - **GPU knobs.** A bigger game needs a convolutional or transformer network, thousands of parallel self-play games
#   whose leaves are batched through the network on a GPU, and many more simulations per move; `AZConfig.games`,
#   `sims` and `hidden` are those knobs here.
#
# **Exercises:** `exercises/v5_rl/03_search_and_self_play.ipynb` (winner and legal moves, negamax, UCB1, backup,
# a UCT move that takes wins and blocks, PUCT, visit counts to a policy, the AlphaZero loss, board symmetries).
#
# **Further reading.**
# - L. Kocsis, C. Szepesvari, "Bandit based Monte-Carlo Planning", ECML 2006 (UCT).
# - R. Coulom, "Efficient Selectivity and Backup Operators in Monte-Carlo Tree Search", Computers and Games 2006.
# - C. Browne et al., "A Survey of Monte Carlo Tree Search Methods", IEEE TCIAIG 2012.
# - D. Silver et al., "Mastering the game of Go with deep neural networks and tree search", Nature 2016 (AlphaGo).
# - D. Silver et al., "Mastering the game of Go without human knowledge", Nature 2017 (AlphaGo Zero).
# - D. Silver et al., "A general reinforcement learning algorithm that masters chess, shogi, and Go through
#   self-play", Science 2018, arXiv:1712.01815 (AlphaZero).
# - C. Rosin, "Multi-armed bandits with episode context", Annals of Mathematics and Artificial Intelligence 2011
#   (PUCT).
# - D. Knuth, R. Moore, "An analysis of alpha-beta pruning", Artificial Intelligence 1975.
# - F. Teytaud, O. Teytaud, "On the huge benefit of decisive moves in Monte-Carlo Tree Search algorithms", IEEE CIG
#   2010.
