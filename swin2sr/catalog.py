"""The five released Swin2SR checkpoints (mv-lab/swin2sr v0.0.1), each under a short name.

This module is data plus look-ups: where each file comes from, what the loader must recognise in it
(variant and scale, the check that refuses a wrong or broken download), its approximate size, what it is
for and the paper's Set5 PSNR.  Downloading is `fetch`'s job; `loader` resolves a catalogue name into a
verified local file.

Sources, in the order they are tried:

1. the GitHub release asset (`RELEASE_URL/<file>`); `SWIN2SR_MODEL_BASE_URL` replaces the folder
   (a mirror, or the local test server), and is then the only source;
2. the Hugging Face conversion `caidas/<repo>` (`$HF_ENDPOINT/<repo>/resolve/main/pytorch_model.bin`,
   transformers names, which the loader maps back).

No SHA-256 is pinned: none could be verified here, and an invented one would refuse the real file.
`fetch` records the hash of the first verified download and checks it on every later use.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

RELEASE_URL = "https://github.com/mv-lab/swin2sr/releases/download/v0.0.1"
HF_DEFAULT_ENDPOINT = "https://huggingface.co"
HF_FILE = "pytorch_model.bin"

BASE_URL_ENV = "SWIN2SR_MODEL_BASE_URL"
HF_ENDPOINT_ENV = "HF_ENDPOINT"
MODELS_DIR_ENV = "SWIN2SR_MODELS_DIR"


@dataclass(frozen=True)
class ReleaseModel:
    """One released checkpoint: names, sources, what the loader must detect, and what it is for."""

    name: str  # the short name users type: "classical-x4"
    file: str  # the release file name, kept on disk as is
    hf_repo: str  # the Hugging Face conversion (second source)
    variant: str  # what `variants.describe_variant` must say about the downloaded file
    scale: int
    size_mb: float  # approximate download size (MB, 10**6 bytes)
    use: str  # what it is for, in a few words
    set5_psnr: float | None  # the paper's Set5 PSNR (dB, Y channel); None where the paper gives none
    sha256: str | None = None  # pinned only when verified against the real file; see the module docstring

    def urls(self) -> list[str]:
        """Where to fetch the file, in order (see the module docstring)."""
        base = os.environ.get(BASE_URL_ENV, "").strip().rstrip("/")
        if base:
            return [f"{base}/{self.file}"]
        endpoint = os.environ.get(HF_ENDPOINT_ENV, "").strip().rstrip("/") or HF_DEFAULT_ENDPOINT
        return [f"{RELEASE_URL}/{self.file}", f"{endpoint}/{self.hf_repo}/resolve/main/{HF_FILE}"]


CATALOG: tuple[ReleaseModel, ...] = (
    ReleaseModel("classical-x2", "Swin2SR_ClassicalSR_X2_64.pth", "caidas/swin2SR-classical-sr-x2-64",
                 "ClassicalSR x2", 2, 68.7, "clean downsampled images and AI art, x2", 38.43),
    ReleaseModel("classical-x4", "Swin2SR_ClassicalSR_X4_64.pth", "caidas/swin2SR-classical-sr-x4-64",
                 "ClassicalSR x4", 4, 69.3, "clean downsampled images and AI art, x4", 32.92),
    ReleaseModel("compressed-x4", "Swin2SR_CompressedSR_X4_48.pth", "caidas/swin2SR-compressed-sr-x4-48",
                 "CompressedSR x4", 4, 61.1, "JPEG-damaged images, memes, web thumbnails", None),
    ReleaseModel("realworld-x4", "Swin2SR_RealworldSR_X4_64_BSRGAN_PSNR.pth",
                 "caidas/swin2SR-realworld-sr-x4-64-bsrgan-psnr", "RealworldSR x4", 4, 68.6,
                 "photographs with real noise and blur", None),
    ReleaseModel("lightweight-x2", "Swin2SR_Lightweight_X2_64.pth", "caidas/swin2SR-lightweight-x2-64",
                 "Lightweight x2", 2, 17.6, "quick previews, slow machines", 38.17),
)  # fmt: skip


def find(name: str) -> ReleaseModel | None:
    """The catalogue entry for a short name or a release file name (case-insensitive), else None."""
    wanted = name.strip().lower()
    for entry in CATALOG:
        if wanted in (entry.name, entry.file.lower()):
            return entry
    return None


def names() -> list[str]:
    return [entry.name for entry in CATALOG]


def models_dir() -> Path:
    """Where the CLI keeps downloaded models: `$SWIN2SR_MODELS_DIR`, else the per-user data folder.

    The per-user folder follows each platform's convention (what platformdirs' user_data_dir gives),
    written out here rather than adding a dependency for four lines.
    """
    explicit = os.environ.get(MODELS_DIR_ENV, "").strip()
    if explicit:
        return Path(explicit).expanduser()
    home = Path.home()
    if sys.platform == "win32":
        data = Path(os.environ.get("LOCALAPPDATA") or home / "AppData" / "Local")
    elif sys.platform == "darwin":
        data = home / "Library" / "Application Support"
    else:
        data = Path(os.environ.get("XDG_DATA_HOME") or home / ".local" / "share")
    return data / "swin2sr" / "models"
