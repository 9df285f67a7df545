"""Videos people can play: H.264 MP4 through the ffmpeg binary that the ``imageio-ffmpeg`` wheel ships.

OpenCV's ``VideoWriter`` only offers MPEG-4 Part 2 (``mp4v``) in the pip wheels, which browsers,
VS Code and Jupyter do not play. :class:`VideoWriter` writes ``.mp4`` as H.264 (yuv420p, ``+faststart``)
and ``.avi`` as Motion-JPEG (OpenCV), into an exclusive temporary file renamed over the output on
:meth:`VideoWriter.close` (:func:`shared.guard.atomic_output`: a link at the output's name is replaced,
never written through; an error leaves no half video); odd frame sizes are padded by one black row/column (yuv420p
needs even sizes) instead of being rescaled. Frames are RGB ``uint8`` arrays of one size.

Example::

    with VideoWriter("tracks.mp4", fps=25) as video:
        for frame in frames:
            video.write(frame)
    assert probe_codec("tracks.mp4") == "h264"
"""
from __future__ import annotations

import re
import subprocess
from contextlib import ExitStack
from pathlib import Path
from types import TracebackType

import numpy as np

from ..errors import CvsuiteError

VIDEO_OUT_SUFFIXES = (".mp4", ".avi")


def ffmpeg_exe() -> str:
    """Path of the ffmpeg binary bundled with ``imageio-ffmpeg`` (one clear error when it is missing)."""
    try:
        import imageio_ffmpeg
    except ImportError:
        raise CvsuiteError("writing H.264 video needs the imageio-ffmpeg package (pip install imageio-ffmpeg)") from None
    return imageio_ffmpeg.get_ffmpeg_exe()


def probe_codec(path: str | Path) -> str:
    """Name of the first video stream's codec in ``path`` (e.g. ``h264``), read by ffmpeg itself."""
    proc = subprocess.run([ffmpeg_exe(), "-hide_banner", "-i", str(path)], capture_output=True, text=True,
                          timeout=60)
    match = re.search(r"Stream #\S+.*?Video: (\w+)", proc.stderr)
    if match is None:
        raise CvsuiteError(f"{path}: no video stream found")
    return match.group(1)


class VideoWriter:
    """Writes RGB frames to ``.mp4`` (H.264) or ``.avi`` (MJPG); see the module docstring."""

    def __init__(self, path: str | Path, fps: float, crf: int = 20) -> None:
        self.path, self.fps, self.crf = Path(path), float(fps), int(crf)
        suffix = self.path.suffix.lower()
        if suffix not in VIDEO_OUT_SUFFIXES:
            raise CvsuiteError(f"{self.path}: video output must end in {' or '.join(VIDEO_OUT_SUFFIXES)}")
        self._size: tuple[int, int] | None = None
        self._proc: subprocess.Popen | None = None
        self._cv_writer = None
        self._commit: ExitStack | None = None
        self.frames = 0

    def _open(self, width: int, height: int) -> None:
        from ..guard import atomic_output

        self._size = (width, height)
        self._commit = ExitStack()
        target = self._commit.enter_context(atomic_output(self.path))
        if self.path.suffix.lower() == ".avi":
            import cv2

            self._cv_writer = cv2.VideoWriter(str(target), cv2.VideoWriter_fourcc(*"MJPG"), self.fps,
                                              (width, height))
            if not self._cv_writer.isOpened():
                raise CvsuiteError(f"{self.path}: cannot open an MJPG video writer")
            return
        out_w, out_h = width + width % 2, height + height % 2
        command = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-f", "rawvideo",
                   "-pix_fmt", "rgb24", "-s", f"{width}x{height}", "-r", f"{self.fps:g}", "-i", "-",
                   "-vf", f"pad={out_w}:{out_h}:0:0", "-c:v", "libx264", "-preset", "veryfast",
                   "-crf", str(self.crf), "-pix_fmt", "yuv420p", "-movflags", "+faststart", "-f", "mp4",
                   str(target)]
        self._proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.PIPE)

    def write(self, frame_rgb: np.ndarray) -> None:
        frame = np.ascontiguousarray(frame_rgb, dtype=np.uint8)
        if frame.ndim != 3 or frame.shape[2] != 3:
            raise CvsuiteError(f"{self.path}: frames must be H x W x 3 RGB, got shape {frame.shape}")
        height, width = frame.shape[:2]
        if self._size is None:
            self._open(width, height)
        elif (width, height) != self._size:
            raise CvsuiteError(f"{self.path}: frame {self.frames + 1} is {width}x{height}, the video is "
                               f"{self._size[0]}x{self._size[1]}")
        if self._cv_writer is not None:
            import cv2

            self._cv_writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        else:
            assert self._proc is not None and self._proc.stdin is not None
            try:
                self._proc.stdin.write(frame.tobytes())
            except BrokenPipeError:
                self._fail()
        self.frames += 1

    def _fail(self) -> None:
        message = ""
        if self._proc is not None:
            self._proc.kill()
            message = (self._proc.stderr.read().decode(errors="replace") if self._proc.stderr else "").strip()
        self._abandon()
        raise CvsuiteError(f"{self.path}: ffmpeg could not write the video ({message.splitlines()[-1] if message else 'no message'})")

    def close(self) -> None:
        if self._cv_writer is not None:
            self._cv_writer.release()
            self._cv_writer = None
        if self._proc is not None:
            proc, self._proc = self._proc, None
            assert proc.stdin is not None
            try:
                proc.stdin.close()
            except BrokenPipeError:
                pass
            if proc.wait(timeout=600) != 0:
                self._proc = proc
                self._fail()
            if proc.stderr is not None:
                proc.stderr.close()
        if self._commit is not None:  # rename the finished temp file over the output
            commit, self._commit = self._commit, None
            commit.close()

    def _abandon(self) -> None:
        """Stop writing and remove the temporary file; the output path stays as it was."""
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait()
            self._proc = None
        if self._cv_writer is not None:
            self._cv_writer.release()
            self._cv_writer = None
        if self._commit is not None:
            commit, self._commit = self._commit, None
            commit.__exit__(RuntimeError, RuntimeError("abandoned"), None)

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is None:
            self.close()
        else:  # no half-written video and no ffmpeg process left behind an error
            self._abandon()
