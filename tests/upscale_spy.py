"""A stand-in for swin2sr.upscale (or upscale_file) that calls the real one, records each call, can play Ctrl-C."""

from __future__ import annotations


class UpscaleSpy:
    """Records every call's options and image shape; raises KeyboardInterrupt on call number `interrupt_on`."""

    def __init__(self, real, interrupt_on: int | None = None) -> None:
        self.real, self.interrupt_on, self.calls = real, interrupt_on, []

    def __call__(self, model, image, *args, **options):
        if len(self.calls) + 1 == self.interrupt_on:
            raise KeyboardInterrupt
        self.calls.append((getattr(image, "shape", None), options))
        return self.real(model, image, *args, **options)
