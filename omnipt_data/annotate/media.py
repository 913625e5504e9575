"""Videos for the video review kinds: Label Studio tracks boxes only over a ``<Video>``, so a sequence's
frames are encoded once into a WebM (VP8, which browsers play) beside the other media of the review.

OpenCV (``opencv-python-headless``, which label-studio-sdk brings) does the encoding.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from omnipt_data.annotate.tasks import VideoJob
from omnipt_data.errors import OmniptError


@contextmanager
def _quiet_stderr() -> Iterator[None]:
    """OpenCV's ffmpeg wrapper prints a warning about the WebM fourcc before it picks the right codec tag;
    it goes straight to file descriptor 2, so silence that descriptor while the writer opens."""
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def encode_video(job: VideoJob) -> Path:
    """Write ``job.path`` (atomically) unless it exists; returns the path."""
    if job.path.is_file():
        return job.path
    try:
        import cv2
    except ImportError:
        raise OmniptError(
            "encoding review videos needs OpenCV (opencv-python-headless, part of the annotate extra)"
        ) from None
    job.path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(prefix=f".{job.path.stem}.", suffix=".webm", dir=job.path.parent)
    os.close(handle)
    tmp = Path(tmp_name)
    try:
        with _quiet_stderr():
            writer = cv2.VideoWriter(
                str(tmp), cv2.VideoWriter_fourcc(*"VP80"), job.fps, (job.width, job.height)
            )
        if not writer.isOpened():
            raise OmniptError(f"OpenCV cannot write VP8/WebM video here ({job.path})")
        try:
            for image in job.images:
                frame = cv2.imread(str(image), cv2.IMREAD_COLOR)
                if frame is None:
                    raise OmniptError(f"{image}: missing or unreadable image (needed for the review video)")
                if frame.shape[1] != job.width or frame.shape[0] != job.height:
                    frame = cv2.resize(frame, (job.width, job.height), interpolation=cv2.INTER_AREA)
                writer.write(frame)
        finally:
            writer.release()
        tmp.chmod(0o644)  # mkstemp makes it private; the server may run as another user
        os.replace(tmp, job.path)
    finally:
        tmp.unlink(missing_ok=True)
    return job.path
