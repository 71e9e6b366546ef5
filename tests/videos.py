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
) -> Path:
    """Write `frames` frames of `size` (w, h) with libx264; audio: None, "aac" or "libopus" (one second of tone).

    pts: explicit frame timestamps (in 1/rate units scaled by the stream's time base), for a variable frame rate.
    """
    rng = np.random.default_rng(0)
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=rate)
        video.width, video.height, video.pix_fmt = size[0], size[1], "yuv420p"
        sound = container.add_stream(audio, rate=48000) if audio else None
        for i in range(frames):
            pixels = rng.integers(0, 40, (size[1], size[0], 3), dtype=np.uint8)
            pixels[:, (3 * i) % size[0] :] += 150
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
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
        frames = list(container.decode(video))
        facts.update(count=len(frames), pts=[f.pts for f in frames], size=(frames[0].width, frames[0].height))
    with av.open(str(path)) as container:
        facts["audio"] = [bytes(p) for s in container.streams.audio for p in container.demux(s) if p.size]
    return facts
