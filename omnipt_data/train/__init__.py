"""The training runner: SFT and GRPO on a build's TRL export, and the four-stage OmniPT schedule.

- :mod:`omnipt_data.train.data`: a build's ``trl/<task>/*.jsonl`` as the datasets TRL's trainers take
  (images decoded lazily, completions rendered for SFT on RL builds, held-out samples left out);
- :mod:`omnipt_data.train.sft` / :mod:`omnipt_data.train.grpo`: ``SFTTrainer`` and ``GRPOTrainer`` runs
  that resume from their last checkpoint and end in a complete, loadable checkpoint folder;
- :mod:`omnipt_data.train.probe`: format reward and box F1 of greedy generations on held-out samples;
- :mod:`omnipt_data.train.schedule`: format RL -> mid-training -> SFT -> tracking RL from one TOML file;
- :mod:`omnipt_data.train.curve`: tracking HOTA per stage, the learning curve and a held-out frame's picture;
- :mod:`omnipt_data.train.demo`: the small offline model taught to detect and track on the synthetic world.

Importing this package does not import torch, transformers or TRL.
"""
