"""Small test videos made with PyAV itself: a moving bar on noise, optional audio, optional irregular timestamps."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np


def make_video(
    path: Path,
    frames: int = 12,
    size: tuple[int, int] = (32, 24),
    rate: int = 24,
    audio: str | None = None,
    pts: list[int] | None = None,
    bt709: bool = False,
    rotation: int = 0,
) -> Path:
    """Write `frames` frames of `size` (w, h) with libx264; audio: None, "aac" or "libopus" (one second of tone).

    pts: explicit frame timestamps (in 1/rate units scaled by the stream's time base), for a variable frame rate.
    rotation: a display rotation (degrees counter-clockwise), as phones record portrait video.
    bt709: encode with the HD matrix and tag the stream so (colorspace, range, primaries, transfer all BT.709).
    """
    rng = np.random.default_rng(0)
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=rate)
        video.width, video.height, video.pix_fmt = size[0], size[1], "yuv420p"
        if rotation:
            video.set_display_rotation(rotation)
        if bt709:
            for tag in ("colorspace", "color_range", "color_primaries", "color_trc"):
                setattr(video.codec_context, tag, 1)  # BT.709 (and the limited "MPEG" range)
        sound = container.add_stream(audio, rate=48000) if audio else None
        for i in range(frames):
            pixels = rng.integers(0, 40, (size[1], size[0], 3), dtype=np.uint8)
            pixels[:, (3 * i) % size[0] :] += 150
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            if bt709:
                frame = frame.reformat(format="yuv420p", dst_colorspace="ITU709", dst_color_range="MPEG")
            if pts is not None:
                frame.pts = pts[i]
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
        if sound is not None:
            _write_tone(container, sound)
    return path


def _write_tone(container, stream) -> None:
    samples = (0.3 * np.sin(np.arange(48000, dtype=np.float32) / 15)).astype(np.float32)
    chunk = stream.codec_context.frame_size or 1024
    for start in range(0, len(samples) - chunk + 1, chunk):
        frame = av.AudioFrame.from_ndarray(samples[None, start : start + chunk], format="fltp", layout="mono")
        frame.sample_rate, frame.pts = 48000, start
        container.mux(stream.encode(frame))
    container.mux(stream.encode(None))


def stream_facts(path: Path) -> dict:
    """What must survive an upscale: frame count, timestamps, rate, time base; audio packets as bytes."""
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        facts = dict(rate=video.average_rate, time_base=video.time_base, codec=video.codec_context.name)
        context = video.codec_context
        facts["colour"] = (context.colorspace, context.color_range, context.color_primaries, context.color_trc)
        frames = list(container.decode(video))
        facts.update(count=len(frames), pts=[f.pts for f in frames], size=(frames[0].width, frames[0].height))
        facts["rotation"] = frames[0].rotation
        facts["mean_rgb"] = frames[0].to_ndarray(format="rgb24").reshape(-1, 3).mean(0)  # decoded as tagged
    with av.open(str(path)) as container:
        facts["audio"] = [bytes(p) for s in container.streams.audio for p in container.demux(s) if p.size]
    return facts
