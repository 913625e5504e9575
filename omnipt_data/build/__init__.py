"""Stage builds: templates + samplers + renderer + exporters (see :mod:`omnipt_data.build.builder`)."""

from omnipt_data.build.builder import BuildOptions, build

__all__ = ["BuildOptions", "build"]
