r"""Learning from preferences on a discrete response set: Bradley-Terry, the KL-regularised optimum, PPO and DPO.

One prompt $x$, $K$ candidate responses $y \in \{0, \dots, K-1\}$, a reference policy $\pi_{ref}$ (the SFT model) and
a reward $r(y)$. Shapes: ``(..., K)`` over the responses, any leading axes are independent prompts.

- **Bradley-Terry** (1952): $P(y_w \succ y_l) = \sigma(r(y_w) - r(y_l))$; a reward model is fitted by minimising
  $-\log\sigma(r(y_w) - r(y_l))$ over observed pairs. Rewards are identified only up to an additive constant.
- **KL-regularised RL**: $\max_\pi \mathbb E_{y\sim\pi}[r(y)] - \beta\,\mathrm{KL}(\pi\|\pi_{ref})$ has the closed-form
  optimum $\pi^*(y) = \pi_{ref}(y)\,e^{r(y)/\beta} / Z$, $Z = \sum_y \pi_{ref}(y)e^{r(y)/\beta}$.
- **PPO** (Schulman et al., "Proximal Policy Optimization Algorithms", 2017, arXiv:1707.06347) with the RLHF reward
  shaped by a KL penalty, $R = r(y) - \beta\log\frac{\pi_{old}(y)}{\pi_{ref}(y)}$ (Ouyang et al. 2022, arXiv:2203.02155),
  maximises the clipped surrogate $\mathbb E[\min(\rho A, \mathrm{clip}(\rho, 1-\epsilon, 1+\epsilon)A)]$,
  $\rho = \pi_\theta(y)/\pi_{old}(y)$. Its fixed point is $\pi^*$. ``ppo_clip_objective`` is imported from
  :mod:`manifold_course.rl.ppo` (Volume 5, section 5.7): one implementation for both volumes.
- **DPO** (Rafailov et al., "Direct Preference Optimization: Your Language Model is Secretly a Reward Model", 2023,
  arXiv:2305.18290): inverting $\pi^*$ gives $r(y) = \beta\log\frac{\pi^*(y)}{\pi_{ref}(y)} + \beta\log Z$; the
  constant $\beta\log Z$ cancels in $r(y_w) - r(y_l)$, so the Bradley-Terry likelihood becomes a loss on the policy:
  $\mathcal L_{DPO} = -\log\sigma\big(\beta[\log\tfrac{\pi_\theta(y_w)}{\pi_{ref}(y_w)} - \log\tfrac{\pi_\theta(y_l)}{\pi_{ref}(y_l)}]\big)$.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from manifold_course.rl.ppo import ppo_clip_objective  # noqa: F401  (one implementation, Volume 5's; re-exported)
from manifold_course.seeding import torch_generator


def bradley_terry_loss(r_chosen: torch.Tensor, r_rejected: torch.Tensor) -> torch.Tensor:
    r"""Mean of $-\log\sigma(r_w - r_l) = \mathrm{softplus}(r_l - r_w)$ (stable for any difference)."""
    return F.softplus(r_rejected - r_chosen).mean()


def sample_preferences(reward: torch.Tensor, n_pairs: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Synthetic labels from a known reward (K,): pairs of distinct responses, the winner drawn with
    $P(i \succ j) = \sigma(r_i - r_j)$. Returns (chosen, rejected) index tensors of shape (n_pairs,)."""
    K = reward.shape[0]
    i = torch.randint(K, (n_pairs,), generator=generator)
    j = (i + torch.randint(1, K, (n_pairs,), generator=generator)) % K     # j != i, uniform over the others
    i_wins = torch.rand(n_pairs, generator=generator, dtype=reward.dtype) < torch.sigmoid(reward[i] - reward[j])
    return torch.where(i_wins, i, j), torch.where(i_wins, j, i)


def fit_bradley_terry(chosen: torch.Tensor, rejected: torch.Tensor, K: int, steps: int = 200) -> torch.Tensor:
    """Maximum-likelihood rewards (K,) from preference pairs (full-batch L-BFGS), centred to mean 0."""
    r = torch.zeros(K, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([r], lr=1.0, max_iter=steps, line_search_fn="strong_wolfe", tolerance_grad=1e-12,
                            tolerance_change=1e-15)                            # float64: converge to round-off

    def closure():
        opt.zero_grad()
        # A penalty on the mean alone fixes the free constant without pulling the differences towards 0 (a ridge on
        # r would, and so would miss the maximum-likelihood fit that DPO's implicit reward reaches).
        loss = bradley_terry_loss(r[chosen], r[rejected]) + r.sum().pow(2)
        loss.backward()
        return loss

    opt.step(closure)
    r = r.detach()
    return r - r.mean()


def optimal_kl_policy(pi_ref: torch.Tensor, reward: torch.Tensor, beta: float) -> torch.Tensor:
    r"""$\pi^* = \pi_{ref}e^{r/\beta}/Z$ over the last axis, computed as a softmax of $\log\pi_{ref} + r/\beta$."""
    return torch.softmax(torch.log(pi_ref) + reward / beta, dim=-1)


def kl(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    r"""$\mathrm{KL}(p\|q) = \sum p\log(p/q)$ over the last axis, with $0\log0 = 0$."""
    terms = torch.where(p > 0, p * (torch.log(p) - torch.log(q)), torch.zeros_like(p))
    return terms.sum(dim=-1)


def kl_objective(pi: torch.Tensor, pi_ref: torch.Tensor, reward: torch.Tensor, beta: float) -> torch.Tensor:
    r"""$J(\pi) = \mathbb E_\pi[r] - \beta\,\mathrm{KL}(\pi\|\pi_{ref})$; its maximum $\beta\log Z$ is reached at $\pi^*$."""
    return (pi * reward).sum(dim=-1) - beta * kl(pi, pi_ref)


def dpo_loss(policy_chosen_logps: torch.Tensor, policy_rejected_logps: torch.Tensor, ref_chosen_logps: torch.Tensor,
             ref_rejected_logps: torch.Tensor, beta: float) -> torch.Tensor:
    r"""Mean DPO loss $-\log\sigma(\beta[(\log\pi_w - \log\pi^{ref}_w) - (\log\pi_l - \log\pi^{ref}_l)])$ (log-probs of
    whole responses, shape (N,))."""
    margin = (policy_chosen_logps - ref_chosen_logps) - (policy_rejected_logps - ref_rejected_logps)
    return F.softplus(-beta * margin).mean()


def train_dpo(pi_ref: torch.Tensor, chosen: torch.Tensor, rejected: torch.Tensor, beta: float,
              steps: int = 300) -> torch.Tensor:
    """A tabular policy (K logits, started at log pi_ref) trained on the DPO loss by full-batch L-BFGS; returns pi."""
    logits = torch.log(pi_ref.double()).clone().requires_grad_(True)
    log_ref = torch.log(pi_ref.double())
    opt = torch.optim.LBFGS([logits], lr=1.0, max_iter=steps, line_search_fn="strong_wolfe", tolerance_grad=1e-12,
                            tolerance_change=1e-15)

    def closure():
        opt.zero_grad()
        logp = torch.log_softmax(logits, dim=-1)
        loss = dpo_loss(logp[chosen], logp[rejected], log_ref[chosen], log_ref[rejected], beta)
        loss.backward()
        return loss

    opt.step(closure)
    return torch.softmax(logits.detach(), dim=-1)


def ppo_bandit(pi_ref: torch.Tensor, reward: torch.Tensor, beta: float, iterations: int = 150, batch: int = 256,
               epochs: int = 4, lr: float = 0.1, clip_eps: float = 0.2, seed: int = 0) -> tuple[torch.Tensor, list[float]]:
    r"""PPO with a KL-shaped reward on a K-armed "response bandit", tabular softmax policy started at $\pi_{ref}$.

    Each iteration samples ``batch`` responses from $\pi_{old}$, scores them with
    $R = r(y) - \beta(\log\pi_{old}(y) - \log\pi_{ref}(y))$, takes advantages $A = R - \bar R$ (a mean baseline),
    and runs ``epochs`` Adam steps on the clipped surrogate (learning rate annealed linearly to 5 %, so that the
    sampling noise of the last iterations shrinks). Returns the final policy and KL(pi || pi*) per iteration.
    """
    gen = torch_generator(seed)
    log_ref = torch.log(pi_ref.double())
    logits = log_ref.clone().requires_grad_(True)
    opt = torch.optim.Adam([logits], lr=lr)
    sched = torch.optim.lr_scheduler.LinearLR(opt, 1.0, 0.05, total_iters=iterations * epochs)   # anneal the noise
    target = optimal_kl_policy(pi_ref.double(), reward.double(), beta)
    history = []
    for _ in range(iterations):
        with torch.no_grad():
            logp_old_all = torch.log_softmax(logits, dim=-1)
            y = torch.multinomial(logp_old_all.exp(), batch, replacement=True, generator=gen)   # (batch,)
            R = reward.double()[y] - beta * (logp_old_all[y] - log_ref[y])                       # shaped reward
            A = R - R.mean()
            logp_old = logp_old_all[y]
        for _ in range(epochs):
            logp_new = torch.log_softmax(logits, dim=-1)[y]
            loss = -ppo_clip_objective(logp_new, logp_old, A, clip_eps)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        history.append(float(kl(torch.softmax(logits.detach(), -1), target)))
    return torch.softmax(logits.detach(), dim=-1), history
