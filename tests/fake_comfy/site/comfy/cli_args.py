"""ComfyUI's parsed command line, reduced to the flags the pack reads."""

from types import SimpleNamespace

args = SimpleNamespace(force_fp32=False, force_fp16=False, cpu=True, gpu_only=False)
