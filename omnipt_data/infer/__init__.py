"""The model at work: tracking runner and pre-labeler (clip by clip, batched, prompts from the templates)."""
