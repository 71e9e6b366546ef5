"""Video in and out through PyAV (the optional `video` extra), one batch of frames at a time.

`transcode` decodes the first video stream, hands batches of RGB frames to a function (the
upscaler) and encodes what it returns, keeping every frame's timestamp, the time base and the
frame rate; audio packets are copied unchanged (no re-encoding).  Only a batch of frames and the
encoder's own look-ahead are in memory, whatever the length.  The output is written to a
temporary file next to the destination and renamed at the end: an error or Ctrl-C leaves nothing.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from .image_files import atomic_write

INSTALL_HINT = "pip install swin2sr-upscaler[video]"
DEFAULT_CRF = 18  # x264/x265/VP9: visually near-lossless, the files stay a sensible size
_WEBM_CODEC = "libvpx-vp9"
COLOUR_TAGS = ("colorspace", "color_range", "color_primaries", "color_trc")
CONTAINERS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "webm", ".avi": "avi"}
_DEFAULT_CODEC = "libx264"


def import_av():
    """PyAV, or a one-line ValueError naming the extra to install."""
    try:
        import av
    except ImportError:
        raise ValueError(f"video needs PyAV, which is not installed: {INSTALL_HINT}") from None
    return av


@dataclass(frozen=True)
class VideoInfo:
    width: int
    height: int
    frames: int  # from the container; an estimate from duration x rate when it does not say
    rate: Fraction | None
    time_base: Fraction


def probe(path: Path) -> VideoInfo:
    """Size, frame count, rate and time base of the first video stream, without decoding it."""
    av = import_av()
    with _open_input(av, path) as container:
        stream = _video_stream(container, path)
        return VideoInfo(stream.width, stream.height, _frame_count(container, stream), stream.average_rate,
                         stream.time_base)


def _frame_count(container, stream) -> int:
    """The container's count (MP4 has one), else duration x rate (Matroska: the longest stream's duration)."""
    if stream.frames or not stream.average_rate:
        return int(stream.frames)
    if stream.duration:
        seconds = stream.duration * stream.time_base
    else:
        seconds = Fraction(container.duration or 0, 1_000_000)  # FFmpeg's AV_TIME_BASE
    return round(seconds * stream.average_rate)


def container_format(path: Path) -> str:
    """FFmpeg's muxer for the file name's suffix; a one-line ValueError for a suffix that is not a video."""
    try:
        return CONTAINERS[Path(path).suffix.lower()]
    except KeyError:
        raise ValueError(f"{Path(path).name}: a video is written as one of {', '.join(CONTAINERS)}") from None


def transcode(
    source: Path,
    destination: Path,
    upscale_frames: Callable[[np.ndarray], np.ndarray],
    output_size: tuple[int, int],
    *,
    frames_per_batch: int = 4,
    codec: str | None = None,
    crf: int | None = None,
    in_flight: int = 1,
) -> int:
    """Write `destination` with every video frame of `source` passed through `upscale_frames`; returns the frame count.

    upscale_frames: uint8 [N, H, W, 3] RGB -> uint8 [N, H', W', 3] with (H', W') == output_size, or a
      pending result (anything with `.result()` returning that array): up to `in_flight` batches are then
      handed out before the oldest is encoded, so several workers upscale them at once (swin2sr.cluster);
      frames are still encoded in their order.
    codec: an FFmpeg encoder name (default libx264, libvpx-vp9 for .webm); crf: its quality (lower is better).
    """
    av = import_av()
    codec = codec or (_WEBM_CODEC if destination.suffix.lower() == ".webm" else _DEFAULT_CODEC)
    _check_encoder(av, codec)
    container = container_format(destination)
    rotation = _display_rotation(av, source)
    frames = 0

    def write(file) -> None:
        nonlocal frames
        with _open_input(av, source) as inp, av.open(file, "w", format=container) as out:
            video_out = _add_video_stream(out, _video_stream(inp, source), codec, crf, output_size)
            if rotation:  # phone videos: stored sideways, shown upright by the display matrix
                video_out.set_display_rotation(rotation)
            frames = _transcode_streams(inp, out, video_out, _Encoder(upscale_frames, in_flight), frames_per_batch)

    atomic_write(destination, write)
    return frames


def _transcode_streams(inp, out, video_out, encoder: _Encoder, frames_per_batch: int) -> int:
    """Demux once: audio packets are copied as they come, video frames decoded, batched, upscaled, encoded."""
    video_in = inp.streams.video[0]
    video_in.thread_type = "AUTO"
    audio = {s.index: out.add_stream_from_template(s) for s in inp.streams.audio}
    encoder.open(out, video_out, video_in.time_base)
    batch: list = []
    for packet in inp.demux(video_in, *inp.streams.audio):
        if packet.stream.index in audio:
            if packet.dts is not None:  # demux ends each stream with an empty flush packet
                packet.stream = audio[packet.stream.index]
                out.mux(packet)
            continue
        for frame in packet.decode():
            batch.append(frame)
            if len(batch) == frames_per_batch:
                encoder.encode(batch)
                batch = []
    encoder.encode(batch)
    encoder.flush()
    return encoder.frames


class _Encoder:
    """Upscales batches of decoded frames and encodes them in order, with their own timestamps.

    Up to `in_flight` batches may be pending (upscaled elsewhere) before the oldest is encoded.
    """

    def __init__(self, upscale_frames: Callable, in_flight: int = 1) -> None:
        self.upscale_frames, self.in_flight, self.pending, self.frames = upscale_frames, in_flight, deque(), 0

    def open(self, out, stream, time_base: Fraction) -> None:
        self.out, self.stream, self.time_base = out, stream, time_base

    def encode(self, decoded: list) -> None:
        if decoded:
            rgb = np.stack([frame.to_ndarray(format="rgb24") for frame in decoded])
            self.pending.append((decoded, self.upscale_frames(rgb)))
        while len(self.pending) >= self.in_flight:
            self._write(*self.pending.popleft())

    def _write(self, decoded: list, upscaled) -> None:
        if hasattr(upscaled, "result"):
            upscaled = upscaled.result()
        expected = (len(decoded), self.stream.height, self.stream.width, 3)
        if upscaled.shape != expected:
            raise RuntimeError(f"upscaled frames have shape {upscaled.shape}, expected {expected}")
        for source_frame, pixels in zip(decoded, upscaled):
            frame = self._frame(source_frame, pixels)
            for packet in self.stream.encode(frame):
                self.out.mux(packet)
        self.frames += len(decoded)

    def _frame(self, source_frame, pixels: np.ndarray):
        import av

        if source_frame.pts is None:
            raise ValueError("the video has frames without timestamps; remux it first (ffmpeg -i IN -c copy OUT.mkv)")
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(pixels), format="rgb24").reformat(
            format=self.stream.pix_fmt,
            dst_colorspace=source_frame.colorspace,
            dst_color_range=source_frame.color_range,
        )  # back with the source's matrix and range (decoding to RGB used them), so colours stay as they were
        frame.pts, frame.time_base = source_frame.pts, self.time_base
        return frame

    def flush(self) -> None:
        while self.pending:
            self._write(*self.pending.popleft())
        for packet in self.stream.encode(None):
            self.out.mux(packet)


def _add_video_stream(out, video_in, codec: str, crf: int | None, output_size: tuple[int, int]):
    """The encoder in the source's time base and rate, so every timestamp is kept as it is."""
    height, width = output_size
    options = {"crf": str(DEFAULT_CRF if crf is None else crf)} if _takes_crf(codec) else {}
    if crf is not None and not options:
        raise ValueError(
            f"codec {codec} has no --crf quality setting; leave --crf out or pick libx264/libx265/libvpx-vp9"
        )
    if codec == _WEBM_CODEC:
        options["b"] = "0"  # constant quality: VP9 reads crf only with no target bitrate
    stream = out.add_stream(codec, rate=video_in.average_rate or video_in.guessed_rate, options=options)
    stream.width, stream.height = width, height
    stream.pix_fmt = _pixel_format(stream.codec_context.codec)
    stream.time_base = video_in.time_base
    stream.codec_context.time_base = video_in.time_base
    for tag in COLOUR_TAGS:  # players pick the matrix from these: an untagged HD video would show shifted colours
        setattr(stream.codec_context, tag, getattr(video_in.codec_context, tag))
    return stream


def _takes_crf(codec: str) -> bool:
    return codec in ("libx264", "libx265", "libvpx-vp9", "libvpx", "libaom-av1", "libsvtav1")


def _pixel_format(codec) -> str:
    """yuv420p (what every player shows) when the encoder takes it, else the encoder's first format."""
    formats = [f.name for f in (codec.video_formats or ())]
    return "yuv420p" if "yuv420p" in formats or not formats else formats[0]


def _check_encoder(av, codec: str) -> None:
    try:
        found = av.codec.Codec(codec, "w")
    except Exception:  # noqa: BLE001 - PyAV raises different errors for unknown and decoder-only names
        found = None
    if found is None or found.type != "video":
        raise ValueError(
            f"{codec!r} is not a video encoder this PyAV build has; try libx264, libx265, libvpx-vp9 or ffv1"
        )


def _display_rotation(av, path: Path) -> int:
    """The first frame's display rotation in degrees (counter-clockwise), 0 when the video has none."""
    with _open_input(av, path) as container:
        frame = next(container.decode(_video_stream(container, path)), None)
        return int(frame.rotation) if frame is not None else 0


def _open_input(av, path: Path):
    try:
        return av.open(str(path))
    except FileNotFoundError:
        raise ValueError(f"{path}: no such file") from None
    except av.FFmpegError as exc:
        raise ValueError(f"{path} is not a readable video ({exc})") from None


def _video_stream(container, path: Path):
    if not container.streams.video:
        raise ValueError(f"{path} has no video stream")
    return container.streams.video[0]
