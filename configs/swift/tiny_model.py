"""ms-swift plugin for the tiny Qwen2.5-VL (``omnipt_data.model.build_tiny_qwen_vl``) only.

ms-swift's Qwen2-VL family templates name the image and video pad tokens by the published checkpoints'
ids (151655, 151656); the tiny model's 2048-token vocabulary has them at other ids. This points the
templates at the tiny vocabulary. Real Qwen2.5-VL checkpoints need no plugin.
"""

from swift.template.templates.qwen import Qwen2VLTemplate

from omnipt_data.model.tiny import TOKEN_IDS

Qwen2VLTemplate.image_token_id = TOKEN_IDS["<|image_pad|>"]
Qwen2VLTemplate.video_token_id = TOKEN_IDS["<|video_pad|>"]
