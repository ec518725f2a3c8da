r"""One small model from each volume, retrained in seconds with the course's own trainers, ready for the lens.

Each builder returns a :class:`Specimen`: the trained model, probe inputs it has not been trained on, the names of
the layers to look at (from ``model.named_modules()``, ``"input"`` for the inputs), and the keyword options
:func:`manifold_course.lens.look` needs for it (a ``forward`` for a model that takes more than its inputs, the module
whose output the Lipschitz probe perturbs). ``scale`` multiplies the training steps (1 = seconds on a laptop CPU).

| builder | volume | model, trainer | data |
|---|---|---|---|
| :func:`digits_mlp` | 1 | residual ``DeepMLP``, ``nn.mlp.train_classifier`` | scikit-learn's digits |
| :func:`digits_cnn` | 1 | a two-convolution CNN, ``nn.mlp.train_classifier`` | digits as 8 x 8 images |
| :func:`char_gpt` | 2 | ``nn.gpt.GPT`` (RMSNorm, RoPE, SwiGLU), ``nn.gpt.train_gpt`` | the standard library's source |
| :func:`circle_denoiser` | 3 | ``generative.denoiser.TimeMLP``, ``train_eps`` (DDPM) | a noisy circle in 2-D |
| :func:`cartpole_policy` | 5 | PPO's actor, ``rl.ppo.train_ppo`` | CartPole-v1 states the policy visits |

For the prediction-space trajectories (Part 2 T1) :func:`digits_checkpoints` trains a digits MLP with a
``torch.optim`` optimiser and returns its softmax outputs on a fixed probe set at evenly spaced steps.

Two small references the capstone's exercises are checked against live here, because the lens does not define them:
:func:`hunchback` (is an intrinsic-dimension profile first rising, then falling?) and :func:`top_explained`.

Papers: A. Ansuini, A. Laio, J. H. Macke, D. Zoccolan, "Intrinsic dimension of data representations in deep neural
networks", NeurIPS 2019 (arXiv:1905.12784), the "hunchback" profile; J. Mao et al., "The training process of many
deep networks explores the same low-dimensional manifold", PNAS 2024 (arXiv:2305.01604), prediction-space
trajectories; J. Ho, A. Jain, P. Abbeel, "Denoising Diffusion Probabilistic Models", 2020 (arXiv:2006.11239);
J. Schulman et al., "Proximal Policy Optimization Algorithms", 2017 (arXiv:1707.06347).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from manifold_course import data
from manifold_course.seeding import course_seed, manual_seed, numpy_rng, torch_generator


@dataclass
class Specimen:
    """A trained model and how to look at it: ``lens.look(model, inputs, layers, **look_kwargs)``.

    ``score`` holds what the model achieved (test accuracy, loss, return), ``seconds`` the CPU seconds its training
    took (``time.process_time``), ``extra`` what else its use needs (the denoiser's ``betas``, the GPT's tokenizer).
    """

    name: str
    volume: str
    model: nn.Module
    inputs: Any
    layers: tuple[str, ...]
    look_kwargs: dict = field(default_factory=dict)
    score: dict = field(default_factory=dict)
    seconds: float = 0.0
    extra: dict = field(default_factory=dict)      # what else a chapter needs: a noise schedule, a tokenizer

    def look(self, **overrides):
        """The lens report of this model (keyword arguments override ``look_kwargs``)."""
        from manifold_course import lens

        kw = {**self.look_kwargs, **overrides}
        kw.setdefault("title", self.name)
        return lens.look(self.model, self.inputs, list(self.layers), **kw)

    def __iter__(self):   # model, inputs, layers, options = specimen
        return iter((self.model, self.inputs, self.layers, self.look_kwargs))


def _seeded(build: Callable[[], nn.Module], seed: int) -> nn.Module:
    """Build a module with initial weights fixed by ``seed``, leaving the caller's random stream alone."""
    state = torch.random.get_rng_state()
    manual_seed(seed)
    try:
        return build()
    finally:
        torch.random.set_rng_state(state)


def digits_split(seed: int = 0, test_fraction: float = 0.25):
    """The digits (X (1797, 64) in [0, 1], y) split into train and test tensors with a seeded permutation."""
    X, y = data.digits()
    tr, te = data.train_test_split_indices(len(X), test_fraction, seed=seed)
    return X[tr], y[tr], X[te], y[te]


def _shuffled(y: torch.Tensor, seed: int) -> torch.Tensor:
    return y[torch.as_tensor(numpy_rng(seed + 7919).permutation(len(y)))]


# ---------------------------------------------------------------------------------------------- Volume 1


def digits_mlp(seed: int = 0, scale: float = 1, width: int = 64, depth: int = 3, random_labels: bool = False,
               steps: int = 300) -> Specimen:
    """Volume 1's residual ``DeepMLP`` (stem 64 -> width, ``depth`` residual ReLU blocks, head -> 10) on the digits.

    ``random_labels=True`` trains on a permutation of the training labels (the memorisation control of Part 2 D1);
    the probe set is the held-out test split either way.
    """
    from manifold_course.nn import mlp

    t0 = time.process_time()
    Xtr, ytr, Xte, yte = digits_split(0)
    if random_labels:
        ytr = _shuffled(ytr, seed)
    model = mlp.deep_mlp(mlp.MLPConfig(d_in=64, width=width, depth=depth, residual=True), seed=seed)
    losses = mlp.train_classifier(model, Xtr, ytr, mlp.TrainConfig(steps=int(steps * scale), lr=2e-3, batch=128,
                                                                   seed=seed))
    layers = ("input", "stem", *(f"blocks.{i}" for i in range(depth)), "head")
    score = {"train_accuracy": mlp.accuracy(model, Xtr, ytr), "test_accuracy": mlp.accuracy(model, Xte, yte),
             "final_loss": float(np.mean(losses[-10:]))}
    return Specimen("digits MLP" + (" (random labels)" if random_labels else ""), "1", model, Xte, layers,
                    {"perturb": "input"}, score, time.process_time() - t0)


def small_cnn() -> nn.Sequential:
    """Two 3 x 3 convolutions (1 -> 8 -> 16 channels, ReLU), a 2 x 2 max-pool, and a linear head (256 -> 10)."""
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(),       # (B, 8, 8, 8)
                         nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(),      # (B, 16, 8, 8)
                         nn.MaxPool2d(2), nn.Flatten(),                  # (B, 256)
                         nn.Linear(256, 10))


def digits_cnn(seed: int = 0, scale: float = 1, steps: int = 200) -> Specimen:
    """A small CNN on the digits as 1 x 8 x 8 images, trained with Volume 1's ``train_classifier``."""
    from manifold_course.nn import mlp

    t0 = time.process_time()
    Xtr, ytr, Xte, yte = digits_split(0)
    Xtr, Xte = Xtr.reshape(-1, 1, 8, 8), Xte.reshape(-1, 1, 8, 8)
    model = _seeded(small_cnn, seed)
    losses = mlp.train_classifier(model, Xtr, ytr, mlp.TrainConfig(steps=int(steps * scale), lr=3e-3, batch=128,
                                                                   seed=seed))
    score = {"train_accuracy": mlp.accuracy(model, Xtr, ytr), "test_accuracy": mlp.accuracy(model, Xte, yte),
             "final_loss": float(np.mean(losses[-10:]))}
    return Specimen("digits CNN", "1", model, Xte, ("input", "1", "3", "5", "6"), {"perturb": "input"}, score,
                    time.process_time() - t0)


# ---------------------------------------------------------------------------------------------- Volume 2


def char_gpt(seed: int = 0, scale: float = 1, d_model: int = 64, steps: int = 120, n_probe: int = 16,
             block: int = 32) -> Specimen:
    """Volume 2's GPT (2 layers, RMSNorm, RoPE, SwiGLU) trained on characters of the standard library's source.

    The probe is ``n_probe`` windows of ``block`` characters from the held-out last tenth of the corpus; the lens
    sees the residual stream, one point per (window, position): the embedding, each block's output and the final
    RMSNorm. Token ids are not floats, so the Lipschitz probe perturbs the token embedding (``tok_emb``).
    """
    from manifold_course.nn import gpt

    t0 = time.process_time()
    text = data.stdlib_corpus(200_000)
    tok = data.CharTokenizer.from_text(text)
    ids = tok.encode(text)
    cut = int(0.9 * len(ids))
    train_ids, val_ids = ids[:cut], ids[cut:]
    cfg = gpt.GPTConfig(vocab_size=tok.vocab_size, block_size=block, d_model=d_model, n_layers=2, n_heads=4)
    model = _seeded(lambda: gpt.GPT(cfg), seed)
    losses = gpt.train_gpt(model, train_ids, steps=int(steps * scale), batch_size=16, lr=3e-3, seed=seed)
    probe, _ = data.lm_batch(val_ids, block, n_probe, torch_generator(seed + 1))     # (n_probe, block)
    score = {"val_loss": gpt.evaluate_loss(model, val_ids, n_batches=4, batch_size=16, seed=seed),
             "first_loss": losses[0], "uniform_loss": math.log(tok.vocab_size)}
    layers = ("tok_emb", "blocks.0", "blocks.1", "norm_f")
    return Specimen("char GPT", "2", model, probe, layers, {"perturb": "tok_emb"}, score, time.process_time() - t0,
                    {"tokenizer": tok})


# ---------------------------------------------------------------------------------------------- Volume 3


def circle_denoiser(seed: int = 0, scale: float = 1, steps: int = 1000, t_probe: int = 5, T: int = 100) -> Specimen:
    r"""Volume 3's ``TimeMLP`` trained as a DDPM $\varepsilon$-network on a noisy unit circle (2-D), ``T`` steps.

    The probe is fresh circle points noised to step ``t_probe`` ($x_t = \sqrt{\bar\alpha_t}x_0 +
    \sqrt{1-\bar\alpha_t}\varepsilon$); the forward pass is ``model(x, t_probe)``. Layers: the input, the three SiLU
    activations of the trunk, and the predicted noise.
    """
    from manifold_course.generative import denoiser, diffusion

    t0 = time.process_time()
    X0 = torch.as_tensor(data.noisy_circle(2000, 1.0, 0.03, seed=seed), dtype=torch.float32)
    betas = diffusion.beta_schedule(T)
    model = _seeded(lambda: denoiser.TimeMLP(2, hidden=64, depth=3), seed)
    losses = denoiser.train_eps(model, X0, betas, steps=int(steps * scale), batch=256, lr=1e-2, seed=seed)
    gen = torch_generator(seed + 1)
    x0 = torch.as_tensor(data.noisy_circle(400, 1.0, 0.03, seed=seed + 1), dtype=torch.float32)
    ab = float(diffusion.alpha_bar(betas)[t_probe])
    xt = math.sqrt(ab) * x0 + math.sqrt(1 - ab) * torch.randn(x0.shape, generator=gen)

    def forward(m, x, t=float(t_probe)):
        return m(x, t)

    score = {"final_loss": float(np.mean(losses[-20:])), "first_loss": losses[0]}
    return Specimen("circle denoiser", "3", model, xt, ("input", "body.0", "body.2", "body.4", "body"),
                    {"forward": forward, "perturb": "input"}, score, time.process_time() - t0, {"betas": betas})


# ---------------------------------------------------------------------------------------------- Volume 5


@torch.no_grad()
def policy_states(actor: nn.Module, env_id: str = "CartPole-v1", n: int = 400, seed: int = 0,
                  stride: int = 4) -> tuple[torch.Tensor, float]:
    """States (n, obs) visited by the greedy policy (argmax of the actor's logits), one every ``stride`` steps (so
    that consecutive, nearly equal states do not fool nearest-neighbour estimates), and the mean return of the
    episodes that finished (the return of the cut-off last episode when none did)."""
    import gymnasium as gym

    env = gym.make(env_id)
    obs, _ = env.reset(seed=course_seed(seed))
    states, returns, ret, episode, step = [], [], 0.0, 0, 0
    while len(states) < n:
        if step % stride == 0:
            states.append(np.asarray(obs, dtype=np.float32))
        step += 1
        a = int(actor(torch.as_tensor(obs, dtype=torch.float32)[None]).argmax(-1))
        obs, r, term, trunc, _ = env.step(a)
        ret += float(r)
        if term or trunc:
            returns.append(ret)
            ret, episode = 0.0, episode + 1
            obs, _ = env.reset(seed=course_seed(seed) + episode)
    env.close()
    return torch.as_tensor(np.stack(states)), float(np.mean(returns) if returns else ret)


def cartpole_policy(seed: int = 0, scale: float = 1, total_steps: int = 12_288) -> Specimen:
    """Volume 5's PPO actor (two tanh layers of 64) trained on CartPole-v1 by ``rl.ppo.train_ppo``.

    The probe is 400 states the greedy policy visits; layers: the state, both tanh activations, the logits.
    """
    from manifold_course.rl import ppo

    t0 = time.process_time()
    cfg = ppo.PPOConfig(total_steps=int(total_steps * scale), eval_every=0, eval_episodes=3)
    result = ppo.train_ppo(cfg, seed=seed)
    actor = result.actor.eval()
    states, ret = policy_states(actor, cfg.env_id, 400, seed=seed + 100)
    score = {"greedy_return": ret, "train_greedy": result.history[-1].get("greedy", float("nan"))}
    return Specimen("CartPole policy", "5", actor, states, ("input", "1", "3", "4"), {"perturb": "input"}, score,
                    time.process_time() - t0, {"env_id": cfg.env_id})


ZOO: dict[str, Callable[..., Specimen]] = {"digits MLP": digits_mlp, "digits CNN": digits_cnn, "char GPT": char_gpt,
                                           "circle denoiser": circle_denoiser, "CartPole policy": cartpole_policy}


def build_zoo(seed: int = 0, scale: float = 1, names=None) -> dict[str, Specimen]:
    """Every specimen of :data:`ZOO` (or those named), trained with ``seed``."""
    return {name: ZOO[name](seed=seed, scale=scale) for name in (names or ZOO)}


# ---------------------------------------------------------------------------------------------- T1


def digits_checkpoints(seed: int = 0, width: int = 32, depth: int = 1, optimizer: str = "adam", lr: float = 2e-3,
                       steps: int = 150, n_checkpoints: int = 6, batch: int = 64, n_probe: int = 200,
                       scale: float = 1) -> tuple[list[np.ndarray], np.ndarray]:
    """Train a residual ``DeepMLP`` on the digits with ``torch.optim`` (Adam, SGD with momentum 0.9, or AdamW with
    weight decay 0.1), and return its softmax outputs (n_probe, 10) on the first ``n_probe`` test digits at
    ``n_checkpoints`` evenly spaced steps (the first at initialisation), and those digits' labels."""
    from manifold_course.nn import mlp

    Xtr, ytr, Xte, yte = digits_split(0)
    probe = Xte[:n_probe]
    model = mlp.deep_mlp(mlp.MLPConfig(d_in=64, width=width, depth=depth, residual=True), seed=seed)
    opts = {"adam": lambda p: torch.optim.Adam(p, lr=lr),
            "sgd": lambda p: torch.optim.SGD(p, lr=lr, momentum=0.9),
            "adamw": lambda p: torch.optim.AdamW(p, lr=lr, weight_decay=0.1)}
    opt = opts[optimizer](model.parameters())
    gen = torch_generator(seed)
    steps = int(steps * scale)
    marks = set(np.linspace(0, steps, n_checkpoints).round().astype(int).tolist())
    out = []
    for step in range(steps + 1):
        if step in marks:
            model.eval()
            with torch.no_grad():
                out.append(torch.softmax(model(probe), dim=1).double().numpy())
            model.train()
        if step == steps:
            break
        idx = torch.randint(len(Xtr), (batch,), generator=gen)
        loss = nn.functional.cross_entropy(model(Xtr[idx]), ytr[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return out, yte[:n_probe].numpy()


# ---------------------------------------------------------------------------------------------- references


def hunchback(ids, rel: float = 0.1) -> bool:
    r"""Is an intrinsic-dimension profile (one value per layer, input first) a "hunchback" (Ansuini et al. 2019)?

    Exactly: at least three values, all finite, and the peak exceeds *both* ends by a factor $1 + \mathrm{rel}$:
    $\max_l d_l \ge (1 + \mathrm{rel}) \max(d_0, d_{L-1})$. (The peak is then at an interior layer: the profile
    first rises, then falls.) Anything else, including a NaN anywhere, is not a hunchback.
    """
    d = np.asarray(ids, dtype=np.float64).ravel()
    if d.size < 3 or not np.isfinite(d).all():
        return False
    return bool(d.max() >= (1.0 + rel) * max(d[0], d[-1]))


def random_policy_return(env_id: str = "CartPole-v1", episodes: int = 20, seed: int = 0) -> float:
    """Mean return of uniformly random actions over ``episodes`` episodes (the baseline a trained policy must beat)."""
    import gymnasium as gym

    env = gym.make(env_id)
    rng = numpy_rng(seed)
    total = 0.0
    for k in range(episodes):
        env.reset(seed=course_seed(seed) + k)
        done = False
        while not done:
            _, r, term, trunc, _ = env.step(int(rng.integers(env.action_space.n)))
            total += float(r)
            done = term or trunc
    env.close()
    return total / episodes


@torch.no_grad()
def ddpm_samples(model: nn.Module, betas: torch.Tensor, n: int = 400, dim: int = 2, seed: int = 0) -> torch.Tensor:
    """Ancestral DDPM sampling (Ho et al. 2020) with an epsilon-network: x_T ~ N(0, I), then ``ddpm_step`` down to 0."""
    from manifold_course.generative import diffusion

    gen = torch_generator(seed)
    x = torch.randn(n, dim, generator=gen)
    for t in reversed(range(len(betas))):
        eps = model(x, torch.full((n,), float(t)))
        x = diffusion.ddpm_step(x, t, eps, betas, torch.randn(n, dim, generator=gen))
    return x


def top_explained(eigenvalues, k: int = 3) -> float:
    """Share of the absolute eigenvalue mass in the ``k`` eigenvalues of largest absolute value (InPCA's "explained")."""
    lam = np.abs(np.asarray(eigenvalues, dtype=np.float64))
    total = lam.sum()
    return float(np.sort(lam)[::-1][:k].sum() / total) if total > 0 else 0.0
