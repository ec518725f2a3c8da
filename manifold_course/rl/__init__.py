"""Reinforcement learning (Volume 5), one concept per module:

- ``mdp``: finite MDPs as arrays from Gymnasium's toy-text tables, dynamic programming on them;
- ``tabular``: Q-learning and SARSA; ``dqn``: replay, targets and target networks, DQN on CartPole;
- ``advantages``: returns and GAE; ``policy_gradient``: REINFORCE, Gaussian policies, actor-critic;
  ``ppo``: PPO's clipped objective (shared with Volume 2's RLHF) and a PPO trainer;
- ``tictactoe``, ``mcts``, ``alphazero``: minimax, UCT and AlphaZero-lite self-play;
- ``offline``, ``decision_transformer``, ``imitation``, ``world_model``, ``curiosity``: learning without reward
  or without interaction (CQL, the Decision Transformer, behaviour cloning and GAIL, learned dynamics and MPC, RND).
"""
