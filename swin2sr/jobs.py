"""A folder, a glob, a file or a video becomes one job: a list of work units, each with a destination.

Two runners execute the same units: the CLI's local loop (`run_job`) and the Ray runner
(`swin2sr.cluster`).  Both load the model once (`load_job_model`) and call `run_unit` for every
unit; units, options and results are plain picklable data, so they cross process boundaries.

    job = build_job(["photos/", "clip.mp4"], "out/", JobOptions(model="builtin-x4"), skip_existing=True)
    model = load_job_model(job.options)
    summary = run_job(model, job)            # or swin2sr.cluster with the same units
    print(summary.text()); sys.exit(summary.exit_code)

A unit that fails (unreadable file, unknown format, ...) is reported with a one-line reason and the
job goes on; Ctrl-C stops the job, and every finished output is complete (atomic writes), so
`skip_existing=True` resumes where the run stopped.
"""

from __future__ import annotations

import glob
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from . import upscale_files
from .io import OUTPUT_FORMATS, check_output_path, video
from .upscale_files import FrameUpscaler
from .upscale_files import package

log = logging.getLogger("swin2sr")

IMAGE_SUFFIXES = (".png", ".apng", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp", ".gif")
VIDEO_SUFFIXES = tuple(video.CONTAINERS)
_GLOB_MAGIC = ("*", "?", "[")

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class VideoOptions:
    """How videos are encoded: the codec (None: libx264, or libvpx-vp9 for .webm), its CRF, frames per batch."""

    codec: str | None = None
    crf: int | None = None
    frames_per_batch: int = 4


@dataclass(frozen=True)
class JobOptions:
    """Everything a runner needs besides the units: the model to load and how to run it.

    upscale: keyword arguments for `swin2sr.upscale` (tile, overlap, precision, max_input_size, device).
    image_format: output suffix for folder runs (".png" ...); None keeps each input's own format.
    """

    model: str = "builtin-x4"
    upscale: dict = field(default_factory=dict)
    video: VideoOptions = VideoOptions()
    image_format: str | None = None


@dataclass(frozen=True)
class WorkUnit:
    """One file to upscale: where it comes from, where it goes, and the name shown to the user."""

    source: str
    destination: str
    kind: str  # "image" | "video"
    name: str  # the path relative to what the user gave: shown in progress and in the summary


@dataclass
class Job:
    units: list[WorkUnit]
    options: JobOptions
    skipped: list[WorkUnit] = field(default_factory=list)  # destinations that already existed (resume)


@dataclass(frozen=True)
class UnitResult:
    unit: WorkUnit
    ok: bool
    reason: str = ""  # one line, for a failed unit
    seconds: float = 0.0


# --- building a job --------------------------------------------------------------------------------


def build_job(
    inputs: Iterable[str | Path], output: str | Path, options: JobOptions, *, skip_existing: bool = False
) -> Job:
    """Units for every image and video in `inputs` (files, folders searched recursively, globs).

    One file with an output that is not a folder keeps today's meaning: `-o` is the output file.
    Otherwise `output` is a folder and each unit keeps its path relative to the folder (or the
    glob's fixed part) it was found under.  Raises ValueError, before any work, when nothing is
    found, when two inputs would write the same file, or when an output format is unknown.
    """
    inputs, output = [Path(p) for p in inputs], Path(output)
    if len(inputs) == 1 and inputs[0].is_file() and not output.is_dir():
        units = [_unit(inputs[0], output, inputs[0].name)]
        if units[0].kind == "image":  # one file: its problems are the run's, found before the model loads
            upscale_files.check_file_paths(inputs[0], output)
    else:
        found = [(path, rel) for given in inputs for path, rel in _expand(given) if not _inside(path, output)]
        if not output.exists() and _media_kind(output):
            raise ValueError(_file_name_for_a_folder_run(inputs, output))
        if not found:
            raise ValueError(f"no images or videos found in {', '.join(map(str, inputs))}")
        units = [_unit(path, output / _destination_name(rel, options.image_format), str(rel)) for path, rel in found]
    _check_distinct(units)
    job = Job(units, options)
    if skip_existing:
        job.skipped = [u for u in units if Path(u.destination).exists()]
        job.units = [u for u in units if not Path(u.destination).exists()]
    return job


def _file_name_for_a_folder_run(inputs: list[Path], output: Path) -> str:
    """The one line for `-o out.png` after inputs that go to a folder: what the inputs are, and the fix."""
    if len(inputs) == 1:
        given = inputs[0]
        what = f"input {given} is a folder" if given.is_dir() else f"input {given} is a pattern"
    else:
        shown = ", ".join(map(str, inputs[:3])) + (", ..." if len(inputs) > 3 else "")
        what = f"{len(inputs)} inputs ({shown}) are given"
    return (f"{what}, so -o must name an output folder, but -o {output} looks like a file name; "
            f"give a folder such as -o {output.with_suffix('')}")


def _expand(given: Path) -> Iterator[tuple[Path, Path]]:
    """(file, its path relative to what was given) for one command-line input."""
    text = str(given)
    if any(ch in text for ch in _GLOB_MAGIC):
        root = _glob_root(given)
        for match in sorted(glob.glob(text, recursive=True)):
            path = Path(match)
            if path.is_file() and _media_kind(path):
                yield path, path.relative_to(root)
    elif given.is_dir():
        for path in sorted(given.rglob("*")):
            rel = path.relative_to(given)
            if path.is_file() and _media_kind(path) and not any(part.startswith(".") for part in rel.parts):
                yield path, rel
    elif given.is_file():
        yield given, Path(given.name)
    else:
        raise ValueError(f"{given}: no such file or folder")


def _glob_root(pattern: Path) -> Path:
    """The fixed leading folders of a glob pattern (relative paths are kept below it)."""
    fixed = []
    for part in pattern.parts[:-1]:
        if any(ch in part for ch in _GLOB_MAGIC):
            break
        fixed.append(part)
    return Path(*fixed) if fixed else Path(".")


def _inside(path: Path, folder: Path) -> bool:
    """True for files under the output folder, so a rerun does not upscale its own outputs."""
    return path.resolve().is_relative_to(folder.resolve())


def _media_kind(path: Path) -> str | None:
    suffix = path.suffix.lower()
    return "image" if suffix in IMAGE_SUFFIXES else "video" if suffix in VIDEO_SUFFIXES else None


def _destination_name(rel: Path, image_format: str | None) -> Path:
    """Videos keep their container; images take `image_format`, else their own suffix when we can write it."""
    if _media_kind(rel) == "video":
        return rel
    if image_format:
        return rel.with_suffix(image_format)
    return rel if rel.suffix.lower() in OUTPUT_FORMATS else rel.with_suffix(".png")


def _unit(source: Path, destination: Path, name: str) -> WorkUnit:
    kind = _media_kind(source) or "image"  # a single named file is tried as an image whatever its suffix
    if kind == "image":
        check_output_path(destination)  # the one-line error for an unknown suffix or an unwritable place
    else:
        video.container_format(destination)  # the one-line error for a suffix that is not a video container
    return WorkUnit(str(source), str(destination), kind, name)


def _check_distinct(units: list[WorkUnit]) -> None:
    seen: dict[str, WorkUnit] = {}
    for unit in units:
        key = str(Path(unit.destination).resolve())
        if key in seen:
            raise ValueError(
                f"{seen[key].source} and {unit.source} would both be written to {unit.destination}; "
                "upscale them in separate runs or into separate folders"
            )
        seen[key] = unit


# --- running units ---------------------------------------------------------------------------------


def load_job_model(options: JobOptions):
    """The job's model, loaded once per runner (the CLI process, or each Ray actor)."""
    return package().load_any_model(options.model, device=options.upscale.get("device"))


def run_unit(model, unit: WorkUnit, options: JobOptions, progress: Progress | None = None) -> UnitResult:
    """Upscale one unit and write its destination atomically; a failure becomes a result, not an exception."""
    upscale = _upscale_video_unit if unit.kind == "video" else _upscale_image_unit
    return attempt(unit, lambda: upscale(model, unit, options, progress))


def attempt(unit: WorkUnit, work: Callable[[], None]) -> UnitResult:
    """Run `work` (which writes `unit`'s destination) and time it; a failure becomes a result with a one-line reason.

    KeyboardInterrupt (and other BaseExceptions) propagate: the user stopped the whole job.
    """
    started = time.perf_counter()
    try:
        work()
    except Exception as exc:  # noqa: BLE001 - one bad file must not stop the job; the reason is reported
        log.debug("%s failed", unit.source, exc_info=True)
        return UnitResult(unit, False, _one_line(exc), time.perf_counter() - started)
    return UnitResult(unit, True, seconds=time.perf_counter() - started)


def _one_line(exc: Exception) -> str:
    text = " ".join(str(exc).split())
    return text if isinstance(exc, ValueError) and text else f"{type(exc).__name__}: {text}"


def _upscale_image_unit(model, unit: WorkUnit, options: JobOptions, progress: Progress | None) -> None:
    """A still (streamed to PNG/TIFF) or an animation, through `upscale_file`, written atomically."""
    report = upscale_files.upscale_file(  # looked up at call time: tests stand in for it
        model, unit.source, unit.destination, frames_per_batch=options.video.frames_per_batch, progress=progress,
        **options.upscale,
    )  # fmt: skip
    if report.upscale is not None:
        log.debug("%s", report.upscale)
    log.info("%s", report)


def _upscale_video_unit(model, unit: WorkUnit, options: JobOptions, progress: Progress | None) -> None:
    """Decode, upscale in batches of frames with one plan for every frame, encode (swin2sr.io.video)."""
    source, destination = Path(unit.source), Path(unit.destination)
    upscaler = _frame_upscaler(model, video.probe(source), options, progress)
    frames = video.transcode(
        source, destination, upscaler, upscaler.plan.output_size, frames_per_batch=options.video.frames_per_batch,
        codec=options.video.codec, crf=options.video.crf,
    )  # fmt: skip
    height, width = upscaler.plan.output_size
    log.info("wrote %s (%d frames, %dx%d)", destination, frames, width, height)


def video_plan(model, info, options: JobOptions):
    """(the plan, the `upscale` keywords that pin it) for every frame of a video: what a Ray worker is given."""
    upscaler = _frame_upscaler(model, info, options)
    return upscaler.plan, upscaler.fixed


def _frame_upscaler(model, info, options: JobOptions, progress: Progress | None = None) -> FrameUpscaler:
    return FrameUpscaler(
        model, info.height, info.width, info.frames, frames_per_batch=options.video.frames_per_batch,
        progress=progress, **options.upscale,
    )  # fmt: skip


def estimate_tiles(model, unit: WorkUnit, options: JobOptions) -> int:
    """Tiles the unit will take (for one progress bar over the job); 1 when the file cannot be read."""
    try:
        if unit.kind == "video":
            info = video.probe(Path(unit.source))
            return max(info.frames, 1) * video_plan(model, info, options)[0].tiles_per_image
        from PIL import Image

        with Image.open(unit.source) as image:
            width, height = image.size
        return package().plan_upscale(model, height, width, **options.upscale).tiles_per_image
    except Exception:  # noqa: BLE001 - the unit itself will fail with the reason
        return 1


class JobProgress:
    """One progress bar over all units, counting tiles.

    Each unit weighs its estimated tiles until it reports its own total (which replaces the
    estimate, e.g. after an out-of-memory retry with smaller tiles).
    """

    def __init__(self, bar: Progress, estimates: list[int]) -> None:
        self.bar, self.weights, self.done = bar, list(estimates), [0] * len(estimates)

    def for_unit(self, index: int) -> Progress:
        def report(done: int, total: int) -> None:
            self.weights[index], self.done[index] = max(total, 1), min(done, max(total, 1))
            self.bar(sum(self.done), sum(self.weights))

        return report

    def finish_unit(self, index: int) -> None:
        """A unit is over (done, failed or skipped): all its tiles count as done."""
        self.done[index] = self.weights[index]
        self.bar(sum(self.done), sum(self.weights))


@dataclass
class JobSummary:
    results: list[UnitResult]
    skipped: list[WorkUnit]
    interrupted: bool = False

    @property
    def done(self) -> list[UnitResult]:
        return [r for r in self.results if r.ok]

    @property
    def failed(self) -> list[UnitResult]:
        return [r for r in self.results if not r.ok]

    @property
    def exit_code(self) -> int:
        return 130 if self.interrupted else 1 if self.failed else 0

    def text(self) -> str:
        """`done N, skipped N, failed N`, then one line per failure (and a resume hint when interrupted)."""
        lines = [f"done {len(self.done)}, skipped {len(self.skipped)}, failed {len(self.failed)}"]
        lines += [f"  failed: {r.unit.name}: {r.reason}" for r in self.failed]
        if self.interrupted:
            lines.append("interrupted: finished files are complete; rerun with --skip-existing to resume")
        return "\n".join(lines)


def run_job(model, job: Job, bar: Progress | None = None) -> JobSummary:
    """The local runner: every unit in order on this process's model; Ctrl-C ends the job with a summary."""
    for unit in job.skipped:
        log.info("skipped %s (exists)", unit.name)
    estimates = [estimate_tiles(model, unit, job.options) for unit in job.units] if bar else [1] * len(job.units)
    progress = JobProgress(bar or (lambda done, total: None), estimates)
    summary = JobSummary([], job.skipped)
    for index, unit in enumerate(job.units):
        try:
            result = run_unit(model, unit, job.options, progress.for_unit(index))
        except KeyboardInterrupt:
            if len(job.units) == 1:
                raise
            summary.interrupted = True
            break
        progress.finish_unit(index)
        summary.results.append(result)
        if not result.ok and len(job.units) > 1:  # one unit: its failure is the caller's error line
            log.warning("failed: %s: %s", unit.name, result.reason)
    return summary
