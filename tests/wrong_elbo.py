# Plausible wrong answers to the exercises of chapter 0.2 (variational inference and the ELBO).
# tests/test_exercises_can_fail.py asserts that every check rejects each of them.
import numpy as np
import torch
import torch.nn.functional as F


# ---- kl_categorical
def kl_categorical_swapped(p, q):
    p, q = np.asarray(p, float), np.asarray(q, float)
    s = q > 0
    return float(np.inf) if np.any(p[s] == 0) else float(np.sum(q[s] * np.log(q[s] / p[s])))


def kl_categorical_bits(p, q):
    p, q = np.asarray(p, float), np.asarray(q, float)
    s = p > 0
    return float(np.inf) if np.any(q[s] == 0) else float(np.sum(p[s] * np.log2(p[s] / q[s])))


@np.errstate(divide="ignore", invalid="ignore")  # the warnings a learner would see
def kl_categorical_no_zero_handling(p, q):
    p, q = np.asarray(p, float), np.asarray(q, float)
    return float(np.sum(p * np.log(p / q)))  # 0 * log 0 = nan


# ---- kl_std_normal
def kl_std_normal_mean_over_dims(mu, logvar):
    return 0.5 * (mu**2 + logvar.exp() - 1 - logvar).mean(-1)


def kl_std_normal_var_squared(mu, logvar):
    return 0.5 * (mu**2 + logvar.exp() ** 2 - 1 - logvar).sum(-1)  # sigma^4 instead of sigma^2


def kl_std_normal_no_half(mu, logvar):
    return (mu**2 + logvar.exp() - 1 - logvar).sum(-1)


def kl_std_normal_summed_over_batch(mu, logvar):
    return 0.5 * (mu**2 + logvar.exp() - 1 - logvar).sum()


def kl_std_normal_detached(mu, logvar):
    return (0.5 * (mu**2 + logvar.exp() - 1 - logvar).sum(-1)).detach()


# ---- kl_full_gaussians
def kl_full_trace_swapped(mu0, S0, mu1, S1):
    k = len(mu0)
    d = mu1 - mu0
    return float(0.5 * (np.trace(np.linalg.inv(S0) @ S1) + d @ np.linalg.solve(S1, d) - k
                        + np.linalg.slogdet(S1)[1] - np.linalg.slogdet(S0)[1]))


def kl_full_no_minus_k(mu0, S0, mu1, S1):
    d = mu1 - mu0
    return float(0.5 * (np.trace(np.linalg.solve(S1, S0)) + d @ np.linalg.solve(S1, d)
                        + np.linalg.slogdet(S1)[1] - np.linalg.slogdet(S0)[1]))


def kl_full_logdet_inverted(mu0, S0, mu1, S1):
    k = len(mu0)
    d = mu1 - mu0
    return float(0.5 * (np.trace(np.linalg.solve(S1, S0)) + d @ np.linalg.solve(S1, d) - k
                        + np.linalg.slogdet(S0)[1] - np.linalg.slogdet(S1)[1]))


def kl_full_mahalanobis_with_S0(mu0, S0, mu1, S1):
    k = len(mu0)
    d = mu1 - mu0
    return float(0.5 * (np.trace(np.linalg.solve(S1, S0)) + d @ np.linalg.solve(S0, d) - k
                        + np.linalg.slogdet(S1)[1] - np.linalg.slogdet(S0)[1]))


# ---- log_evidence_linear_gaussian
def _log_normal(x, mean, C):
    D = len(x)
    r = x - mean
    return float(-0.5 * (D * np.log(2 * np.pi) + np.linalg.slogdet(C)[1] + r @ np.linalg.solve(C, r)))


def log_evidence_sigma_not_squared(x, W, b, sigma):
    return _log_normal(x, b, W @ W.T + sigma * np.eye(len(x)))


def log_evidence_forgot_noise(x, W, b, sigma):
    return _log_normal(x, b, W @ W.T + 1e-12 * np.eye(len(x)))


def log_evidence_no_2pi(x, W, b, sigma):
    C = W @ W.T + sigma**2 * np.eye(len(x))
    r = x - b
    return float(-0.5 * (np.linalg.slogdet(C)[1] + r @ np.linalg.solve(C, r)))


def log_evidence_ignores_bias(x, W, b, sigma):
    return _log_normal(x, np.zeros_like(b), W @ W.T + sigma**2 * np.eye(len(x)))


# ---- reparameterize
def reparameterize_std_is_var(mu, logvar, eps):
    return mu + torch.exp(logvar) * eps


def reparameterize_logvar_times_eps(mu, logvar, eps):
    return mu + logvar * eps


def reparameterize_fresh_noise(mu, logvar, eps):
    return mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)


def reparameterize_detached(mu, logvar, eps):
    return (mu + torch.exp(0.5 * logvar) * eps).detach()


def reparameterize_numpy(mu, logvar, eps):
    return mu.detach().numpy() + np.exp(0.5 * logvar.detach().numpy()) * eps.numpy()


# ---- elbo_mc
def _kl(mu, logvar):
    return 0.5 * np.sum(mu**2 + np.exp(logvar) - 1 - logvar)


def elbo_mc_plus_kl(x, mu, logvar, log_lik_fn, eps):
    z = mu + np.exp(0.5 * logvar) * eps
    return float(np.mean(log_lik_fn(x, z)) + _kl(mu, logvar))


def elbo_mc_no_kl(x, mu, logvar, log_lik_fn, eps):
    z = mu + np.exp(0.5 * logvar) * eps
    return float(np.mean(log_lik_fn(x, z)))


def elbo_mc_std_is_var(x, mu, logvar, log_lik_fn, eps):
    z = mu + np.exp(logvar) * eps
    return float(np.mean(log_lik_fn(x, z)) - _kl(mu, logvar))


def elbo_mc_sum_not_mean(x, mu, logvar, log_lik_fn, eps):
    z = mu + np.exp(0.5 * logvar) * eps
    return float(np.sum(log_lik_fn(x, z)) - _kl(mu, logvar))


def elbo_mc_log_mean_exp(x, mu, logvar, log_lik_fn, eps):
    z = mu + np.exp(0.5 * logvar) * eps
    a = log_lik_fn(x, z)
    return float(a.max() + np.log(np.mean(np.exp(a - a.max()))) - _kl(mu, logvar))


# ---- elbo_gap
def _posterior(x, W, b, sigma):
    S = np.linalg.inv(np.eye(W.shape[1]) + W.T @ W / sigma**2)
    return S @ W.T @ (x - b) / sigma**2, S


def _log_evidence(x, W, b, sigma):
    return _log_normal(x, b, W @ W.T + sigma**2 * np.eye(len(x)))


def elbo_gap_reverse_kl(x, mu, logvar, W, b, sigma):
    m, S = _posterior(x, W, b, sigma)
    Sq = np.diag(np.exp(logvar))
    k = len(mu)
    d = mu - m
    return float(0.5 * (np.trace(np.linalg.solve(Sq, S)) + d @ np.linalg.solve(Sq, d) - k
                        + np.linalg.slogdet(Sq)[1] - np.linalg.slogdet(S)[1]))  # KL(posterior || q)


def elbo_gap_no_trace_term(x, mu, logvar, W, b, sigma):
    D = len(x)
    r = x - W @ mu - b
    exp_ll = -0.5 * (D * np.log(2 * np.pi * sigma**2) + r @ r / sigma**2)  # forgot tr(W^T W diag(var)) / (2 sigma^2)
    return float(_log_evidence(x, W, b, sigma) - (exp_ll - _kl(mu, logvar)))


def elbo_gap_wrong_sign(x, mu, logvar, W, b, sigma):
    D = len(x)
    r = x - W @ mu - b
    exp_ll = -0.5 * (D * np.log(2 * np.pi * sigma**2) + r @ r / sigma**2) - np.sum((W**2).sum(0) * np.exp(logvar)) / (2 * sigma**2)
    return float((exp_ll - _kl(mu, logvar)) - _log_evidence(x, W, b, sigma))


def elbo_gap_plus_kl(x, mu, logvar, W, b, sigma):
    D = len(x)
    r = x - W @ mu - b
    exp_ll = -0.5 * (D * np.log(2 * np.pi * sigma**2) + r @ r / sigma**2) - np.sum((W**2).sum(0) * np.exp(logvar)) / (2 * sigma**2)
    return float(_log_evidence(x, W, b, sigma) - (exp_ll + _kl(mu, logvar)))


# ---- gmm_e_step
def _log_comp(x, weights, means, variances):
    return np.log(weights) - 0.5 * np.log(2 * np.pi * variances) - 0.5 * (x[:, None] - means) ** 2 / variances


@np.errstate(divide="ignore", invalid="ignore")  # the warnings a learner would see
def gmm_e_step_naive_exp(x, weights, means, variances):
    p = np.exp(_log_comp(x, weights, means, variances))
    return p / p.sum(1, keepdims=True)


def gmm_e_step_normalised_over_points(x, weights, means, variances):
    a = _log_comp(x, weights, means, variances)
    a = a - a.max(0, keepdims=True)
    p = np.exp(a)
    return p / p.sum(0, keepdims=True)


def gmm_e_step_forgot_weights(x, weights, means, variances):
    a = _log_comp(x, np.ones_like(weights), means, variances)
    a = a - a.max(1, keepdims=True)
    p = np.exp(a)
    return p / p.sum(1, keepdims=True)


def gmm_e_step_forgot_normaliser(x, weights, means, variances):
    a = np.log(weights) - 0.5 * (x[:, None] - means) ** 2 / variances  # drops -log(sigma_c): wrong when variances differ
    a = a - a.max(1, keepdims=True)
    p = np.exp(a)
    return p / p.sum(1, keepdims=True)


# ---- vae_loss
def _kl_t(mu, logvar):
    return 0.5 * (mu**2 + logvar.exp() - 1 - logvar).sum(-1)


def _recon(x, out, likelihood):
    if likelihood == "bernoulli":
        return F.binary_cross_entropy_with_logits(out, x, reduction="none").sum(-1)
    return 0.5 * (x - out).pow(2).sum(-1)


def vae_loss_mean_over_pixels(x, decoder_out, mu, logvar, likelihood="bernoulli", beta=1.0):
    if likelihood == "bernoulli":
        recon = F.binary_cross_entropy_with_logits(decoder_out, x)   # default reduction: mean over everything
    else:
        recon = F.mse_loss(decoder_out, x)
    kl = _kl_t(mu, logvar).mean()
    return recon + beta * kl, recon, kl


def vae_loss_sigmoid_then_bce(x, decoder_out, mu, logvar, likelihood="bernoulli", beta=1.0):
    if likelihood == "bernoulli":
        recon = F.binary_cross_entropy(torch.sigmoid(decoder_out), x, reduction="none").sum(-1).mean()
    else:
        recon = _recon(x, decoder_out, likelihood).mean()
    kl = _kl_t(mu, logvar).mean()
    return recon + beta * kl, recon, kl


def vae_loss_beta_on_recon(x, decoder_out, mu, logvar, likelihood="bernoulli", beta=1.0):
    recon = _recon(x, decoder_out, likelihood).mean()
    kl = _kl_t(mu, logvar).mean()
    return beta * recon + kl, recon, kl


def vae_loss_kl_summed_over_batch(x, decoder_out, mu, logvar, likelihood="bernoulli", beta=1.0):
    recon = _recon(x, decoder_out, likelihood).mean()
    kl = _kl_t(mu, logvar).sum()
    return recon + beta * kl, recon, kl


def vae_loss_ignores_likelihood(x, decoder_out, mu, logvar, likelihood="bernoulli", beta=1.0):
    recon = _recon(x, decoder_out, "bernoulli").mean()
    kl = _kl_t(mu, logvar).mean()
    return recon + beta * kl, recon, kl


# ---- mutual_information
def mi_bits(pxy):
    px, py = pxy.sum(1, keepdims=True), pxy.sum(0, keepdims=True)
    nz = pxy > 0
    return float(np.sum(pxy[nz] * np.log2(pxy[nz] / (px * py)[nz])))


@np.errstate(divide="ignore", invalid="ignore")  # the warnings a learner would see
def mi_no_zero_handling(pxy):
    px, py = pxy.sum(1, keepdims=True), pxy.sum(0, keepdims=True)
    return float(np.sum(pxy * np.log(pxy / (px * py))))


def mi_wrong_marginal_axis(pxy):
    outer = np.outer(pxy.sum(0), pxy.sum(1))  # should be np.outer(p(x), p(y)) = np.outer(pxy.sum(1), pxy.sum(0))
    nz = pxy > 0
    return float(np.sum(pxy[nz] * np.log(pxy[nz] / outer[nz])))


def mi_entropy_sign(pxy):
    def H(p):
        p = p[p > 0]
        return float(-np.sum(p * np.log(p)))
    return H(pxy.ravel()) - H(pxy.sum(1)) - H(pxy.sum(0))  # = -I(X;Y)


WRONG = {
    "elbo.kl_categorical": [kl_categorical_swapped, kl_categorical_bits, kl_categorical_no_zero_handling],
    "elbo.kl_std_normal": [kl_std_normal_mean_over_dims, kl_std_normal_var_squared, kl_std_normal_no_half,
                           kl_std_normal_summed_over_batch, kl_std_normal_detached],
    "elbo.kl_full_gaussians": [kl_full_trace_swapped, kl_full_no_minus_k, kl_full_logdet_inverted,
                               kl_full_mahalanobis_with_S0],
    "elbo.log_evidence_linear_gaussian": [log_evidence_sigma_not_squared, log_evidence_forgot_noise,
                                          log_evidence_no_2pi, log_evidence_ignores_bias],
    "elbo.reparameterize": [reparameterize_std_is_var, reparameterize_logvar_times_eps, reparameterize_fresh_noise,
                            reparameterize_detached, reparameterize_numpy],
    "elbo.elbo_mc": [elbo_mc_plus_kl, elbo_mc_no_kl, elbo_mc_std_is_var, elbo_mc_sum_not_mean, elbo_mc_log_mean_exp],
    "elbo.elbo_gap": [elbo_gap_reverse_kl, elbo_gap_no_trace_term, elbo_gap_wrong_sign, elbo_gap_plus_kl],
    "elbo.gmm_e_step": [gmm_e_step_naive_exp, gmm_e_step_normalised_over_points, gmm_e_step_forgot_weights,
                        gmm_e_step_forgot_normaliser],
    "elbo.vae_loss": [vae_loss_mean_over_pixels, vae_loss_sigmoid_then_bce, vae_loss_beta_on_recon,
                      vae_loss_kl_summed_over_batch, vae_loss_ignores_likelihood],
    "elbo.mutual_information": [mi_bits, mi_no_zero_handling, mi_wrong_marginal_axis, mi_entropy_sign],
}
