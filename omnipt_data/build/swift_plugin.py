"""ms-swift reward plugin: the rewards of :mod:`omnipt_data.rewards` as ms-swift ORMs.

An RL build's ms-swift export ships a copy of this file (``swift/omnipt_rewards.py``); ms-swift imports
it with ``--external_plugins`` in an environment where ``omnipt-data`` is installed
(``scripts/trainer-env swift`` makes one). Every reward ``NAME`` of
:data:`omnipt_data.rewards.REWARD_NAMES` is registered as ``omnipt_NAME``; ms-swift's GRPO calls it with
the completions and the dataset's other columns, among them ``solution``. To train as ``omnipt-data
train grpo`` does (the sample's own reward, format and box F1 watched alongside)::

    swift rlhf --rlhf_type grpo ... --external_plugins BUILD/swift/omnipt_rewards.py \\
        --reward_funcs omnipt_combined omnipt_format omnipt_box_f1 --reward_weights 1 0 0

This module imports ms-swift at the top: it is meant for ms-swift's process, never for ours.
"""

from __future__ import annotations

from typing import Any

from swift.rewards import ORM, orms

from omnipt_data.rewards import REWARD_NAMES, REWARDS


def _orm(name: str) -> type[ORM]:
    reward = REWARDS[name]

    class OmniptReward(ORM):
        def __call__(self, completions: list[Any], **kwargs: Any) -> list[float]:
            return reward(completions=completions, **kwargs)

    OmniptReward.__name__ = OmniptReward.__qualname__ = f"omnipt_{name}"
    return OmniptReward


for _name in REWARD_NAMES:
    orms[f"omnipt_{_name}"] = _orm(_name)
