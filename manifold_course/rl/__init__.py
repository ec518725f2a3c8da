"""Reinforcement learning (Volume 5): finite MDPs and dynamic programming on Gymnasium's toy-text environments
(``mdp``), tabular Q-learning and SARSA (``tabular``), returns and GAE for policy gradients (``advantages``)."""
