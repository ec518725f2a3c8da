# Plausible wrong answers to the exercises of chapter 3.1 (diffusion, flows and guidance).
# tests/test_exercises_can_fail.py asserts that every check rejects each of them.
import math

import torch

from manifold_course.generative import diffusion, flow_matching


# ---- beta_schedule
def beta_schedule_unscaled(T, kind="linear"):
    if kind == "linear":
        return torch.linspace(1e-4, 0.02, T, dtype=torch.float64)          # forgets the 1000/T scaling
    return diffusion.beta_schedule(T, kind)


def beta_schedule_cosine_unclipped(T, kind="linear"):
    if kind == "cosine":
        s = 0.008
        steps = torch.arange(T + 1, dtype=torch.float64) / T
        f = torch.cos((steps + s) / (1 + s) * math.pi / 2) ** 2
        ab = f / f[0]
        return 1 - ab[1:] / ab[:-1]                                         # no clip at 0.999: the last beta is 1
    return diffusion.beta_schedule(T, kind)


def beta_schedule_float32(T, kind="linear"):
    return diffusion.beta_schedule(T, kind).float()


# ---- alpha_bar
def alpha_bar_of_betas(betas):
    return torch.cumprod(betas, 0)                                          # product of beta, not of 1 - beta


def alpha_bar_shifted(betas):
    ab = torch.cumprod(1 - betas, 0)
    return torch.cat([torch.ones(1, dtype=betas.dtype), ab[:-1]])           # alpha_bar_{t-1}


# ---- q_sample
def q_sample_no_sqrt(x0, t, eps, alpha_bar):
    ab = alpha_bar[torch.as_tensor(t)].to(x0.dtype)
    ab = ab.reshape(-1, *([1] * (x0.dim() - 1))) if ab.dim() == 1 else ab
    return ab * x0 + (1 - ab) * eps


def q_sample_off_by_one(x0, t, eps, alpha_bar):
    return diffusion.q_sample(x0, (torch.as_tensor(t) - 1).clamp(min=0), eps, alpha_bar)


def q_sample_no_broadcast(x0, t, eps, alpha_bar):
    ab = alpha_bar[torch.as_tensor(t)].to(x0.dtype)                         # (N,) against (N, D): wrong axis
    return (ab.sqrt() * x0.T).T.reshape(x0.shape) * 0 + ab.sqrt().mean() * x0 + (1 - ab).sqrt().mean() * eps


# ---- gaussian_data_score
def gaussian_score_wrong_sign(x, mu, Sigma, ab):
    C = ab * Sigma + (1 - ab) * torch.eye(len(mu), dtype=x.dtype)
    return torch.linalg.solve(C, (x - math.sqrt(ab) * mu).T).T


def gaussian_score_unscaled_mean(x, mu, Sigma, ab):
    C = ab * Sigma + (1 - ab) * torch.eye(len(mu), dtype=x.dtype)
    return -torch.linalg.solve(C, (x - mu).T).T                             # mean not shrunk by sqrt(alpha_bar)


def gaussian_score_data_cov(x, mu, Sigma, ab):
    return -torch.linalg.solve(Sigma, (x - math.sqrt(ab) * mu).T).T         # forgets the added noise


# ---- ddpm_step
def ddpm_step_beta_variance(x_t, t, eps_hat, betas, z):
    ab = diffusion.alpha_bar(betas)
    beta = float(betas[t])
    mean = (x_t - beta / math.sqrt(1 - float(ab[t])) * eps_hat) / math.sqrt(1 - beta)
    return mean + math.sqrt(beta) * z if t > 0 else mean                    # sigma^2 = beta, not the posterior's


def ddpm_step_noise_at_zero(x_t, t, eps_hat, betas, z):
    out = diffusion.ddpm_step(x_t, t, eps_hat, betas, z)
    return out + math.sqrt(float(betas[0])) * z if t == 0 else out


def ddpm_step_alpha_for_alpha_bar(x_t, t, eps_hat, betas, z):
    beta = float(betas[t])
    mean = (x_t - beta / math.sqrt(beta) * eps_hat) / math.sqrt(1 - beta)   # sqrt(1 - alpha_t), not 1 - alpha_bar_t
    return mean + math.sqrt(float(diffusion.posterior_variance(betas)[t])) * z if t > 0 else mean


# ---- ddim_step
def ddim_step_sigma_not_removed(x_t, t, t_prev, eps_hat, alpha_bar, eta, z):
    ab_t = float(alpha_bar[t])
    ab_p = float(alpha_bar[t_prev]) if t_prev >= 0 else 1.0
    sigma = eta * math.sqrt((1 - ab_p) / (1 - ab_t)) * math.sqrt(1 - ab_t / ab_p)
    x0_hat = (x_t - math.sqrt(1 - ab_t) * eps_hat) / math.sqrt(ab_t)
    return math.sqrt(ab_p) * x0_hat + math.sqrt(1 - ab_p) * eps_hat + sigma * z


def ddim_step_prev_index(x_t, t, t_prev, eps_hat, alpha_bar, eta, z):
    return diffusion.ddim_step(x_t, t, t - 1 if t > 0 else -1, eps_hat, alpha_bar, eta, z)   # ignores t_prev


# ---- ddim_sample
def ddim_sample_stops_early(eps_fn, x_T, timesteps, alpha_bar):
    ts = [int(t) for t in timesteps]
    x = x_T
    for t, t_prev in zip(ts[:-1], ts[1:]):                                  # never takes the last step to the data
        x = diffusion.ddim_step(x, t, t_prev, eps_fn(x, t), alpha_bar, 0.0, torch.zeros_like(x))
    return x


def ddim_sample_eps_at_next_step(eps_fn, x_T, timesteps, alpha_bar):
    ts = [int(t) for t in timesteps]
    x = x_T
    for t, t_prev in zip(ts, ts[1:] + [-1]):
        e = eps_fn(x, max(t_prev, 0))                                       # the network asked at the wrong step
        x = diffusion.ddim_step(x, t, t_prev, e, alpha_bar, 0.0, torch.zeros_like(x))
    return x


# ---- heun_step
def heun_is_euler(f, x, t, dt):
    return x + dt * f(x, t)


def heun_slope_at_same_time(f, x, t, dt):
    k1 = f(x, t)
    k2 = f(x + dt * k1, t)                                                  # second slope at t, not t + dt
    return x + 0.5 * dt * (k1 + k2)


def heun_midpoint(f, x, t, dt):
    return x + dt * f(x + 0.5 * dt * f(x, t), t + 0.5 * dt)                 # the midpoint rule: another method


# ---- fm_pair
def fm_pair_reversed_velocity(x0, x1, t):
    xt, u = flow_matching.fm_pair(x0, x1, t)
    return xt, -u


def fm_pair_swapped_ends(x0, x1, t):
    return flow_matching.fm_pair(x1, x0, t)


# ---- fm_loss
def fm_loss_mean_over_coordinates(v_fn, x0, x1, t):
    xt, u = flow_matching.fm_pair(x0, x1, t)
    return ((v_fn(xt, t) - u) ** 2).mean()                                  # divides by D as well


def fm_loss_wrong_target(v_fn, x0, x1, t):
    xt, u = flow_matching.fm_pair(x0, x1, t)
    return ((v_fn(xt, t) - (x0 - x1)) ** 2).flatten(1).sum(1).mean()


def fm_loss_at_x0(v_fn, x0, x1, t):
    _, u = flow_matching.fm_pair(x0, x1, t)
    return ((v_fn(x0, t) - u) ** 2).flatten(1).sum(1).mean()                # evaluates v at the data, not at x_t


# ---- euler_sample
def euler_sample_forward_in_time(v_fn, x1, n_steps):
    x, dt = x1, 1.0 / n_steps
    for i in range(n_steps):
        x = x + dt * v_fn(x, torch.full((len(x),), 1.0 - i * dt, dtype=x.dtype))
    return x


def euler_sample_time_grid_from_zero(v_fn, x1, n_steps):
    x, dt = x1, 1.0 / n_steps
    for i in range(n_steps):
        x = x - dt * v_fn(x, torch.full((len(x),), i * dt, dtype=x.dtype))   # t runs 0 -> 1 while x goes to data
    return x


# ---- straightness
def straightness_mean_over_coordinates(v_fn, x1, n_steps):
    vs, x, dt = [], x1, 1.0 / n_steps
    for i in range(n_steps):
        v = v_fn(x, torch.full((len(x),), 1.0 - i * dt, dtype=x.dtype))
        vs.append(v)
        x = x - dt * v
    return float(sum(((v - (x1 - x)) ** 2).mean() for v in vs) * dt)     # averages the coordinates too


def straightness_against_first_velocity(v_fn, x1, n_steps):
    vs, x, dt = [], x1, 1.0 / n_steps
    for i in range(n_steps):
        v = v_fn(x, torch.full((len(x),), 1.0 - i * dt, dtype=x.dtype))
        vs.append(v)
        x = x - dt * v
    return float(sum(((v - vs[0]) ** 2).flatten(1).sum(1).mean() for v in vs) * dt)   # not the chord x1 - x0


# ---- latent_ddim_sample
def latent_pipeline_forgets_scale(eps_fn, decode, z_T, timesteps, alpha_bar, scale):
    return decode(diffusion.ddim_sample(eps_fn, z_T, timesteps, alpha_bar))


def latent_pipeline_multiplies_scale(eps_fn, decode, z_T, timesteps, alpha_bar, scale):
    return decode(diffusion.ddim_sample(eps_fn, z_T, timesteps, alpha_bar) * scale)


# ---- cfg_eps
def cfg_eps_paper_convention(eps_uncond, eps_cond, w):
    return (1 + w) * eps_cond - w * eps_uncond                             # Ho & Salimans' w': not this exercise's w


def cfg_eps_swapped(eps_uncond, eps_cond, w):
    return eps_cond + w * (eps_uncond - eps_cond)


# ---- compression_ratio
def compression_ratio_per_side(H, W, C, f, c_latent):
    return float(f)


def compression_ratio_spatial_only(H, W, C, f, c_latent):
    return float(H * W) / ((H // f) * (W // f))


def compression_ratio_int(H, W, C, f, c_latent):
    return (H * W * C) // (c_latent * (H // f) * (W // f))                  # floor division: 38.4 becomes 38


# ---- latent_scale_factor
def latent_scale_inverse_variance(z):
    return 1.0 / float(z.var())


def latent_scale_per_channel_mean(z):
    return float((1.0 / z.std(0)).mean())


def latent_scale_tensor(z):
    return 1.0 / z.std()                                                    # a tensor, not a float


WRONG = {
    "diffusion.beta_schedule": [beta_schedule_unscaled, beta_schedule_cosine_unclipped, beta_schedule_float32],
    "diffusion.alpha_bar": [alpha_bar_of_betas, alpha_bar_shifted],
    "diffusion.q_sample": [q_sample_no_sqrt, q_sample_off_by_one, q_sample_no_broadcast],
    "diffusion.gaussian_data_score": [gaussian_score_wrong_sign, gaussian_score_unscaled_mean, gaussian_score_data_cov],
    "diffusion.ddpm_step": [ddpm_step_beta_variance, ddpm_step_noise_at_zero, ddpm_step_alpha_for_alpha_bar],
    "diffusion.ddim_step": [ddim_step_sigma_not_removed, ddim_step_prev_index],
    "diffusion.ddim_sample": [ddim_sample_stops_early, ddim_sample_eps_at_next_step],
    "diffusion.heun_step": [heun_is_euler, heun_slope_at_same_time, heun_midpoint],
    "diffusion.fm_pair": [fm_pair_reversed_velocity, fm_pair_swapped_ends],
    "diffusion.fm_loss": [fm_loss_mean_over_coordinates, fm_loss_wrong_target, fm_loss_at_x0],
    "diffusion.euler_sample": [euler_sample_forward_in_time, euler_sample_time_grid_from_zero],
    "diffusion.straightness": [straightness_mean_over_coordinates, straightness_against_first_velocity],
    "diffusion.latent_ddim_sample": [latent_pipeline_forgets_scale, latent_pipeline_multiplies_scale],
    "diffusion.cfg_eps": [cfg_eps_paper_convention, cfg_eps_swapped],
    "diffusion.compression_ratio": [compression_ratio_per_side, compression_ratio_spatial_only, compression_ratio_int],
    "diffusion.latent_scale_factor": [latent_scale_inverse_variance, latent_scale_per_channel_mean, latent_scale_tensor],
}
