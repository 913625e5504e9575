"""Lets PyPI's torchvision import on a CPU build of torch (installed by scripts/trainer-env).

PyPI's torchvision wheels are CUDA builds: on the CPU torch their native operators cannot load, and
torchvision then stops at import while registering fake kernels for those operators. The trainers need
only its Python image and video transforms (transformers' Qwen-VL processors), so the fake registrations
of operators that do not exist are skipped; everything else is untouched. A ``.pth`` file imports this
module at start-up; it does nothing until torchvision is imported.
"""

import importlib.abc
import sys


class _SkipMissingTorchvisionFakes(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "torchvision._meta_registrations":
            sys.meta_path.remove(self)
            _patch_register_fake()
        return None


def _patch_register_fake():
    import torch
    import torch.library

    original = torch.library.register_fake

    def register_fake(op, *args, **kwargs):
        if isinstance(op, str) and op.startswith("torchvision::"):
            namespace, _, name = op.partition("::")
            if not hasattr(getattr(torch.ops, namespace), name.split(".")[0]):
                func = args[0] if args and callable(args[0]) else kwargs.get("func")
                return func if func is not None else (lambda fn: fn)
        return original(op, *args, **kwargs)

    torch.library.register_fake = register_fake


sys.meta_path.insert(0, _SkipMissingTorchvisionFakes())
