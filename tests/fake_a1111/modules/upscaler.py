"""The upscaler base class and the list entries shown in Extras, hires fix and /sdapi/v1/upscalers."""

import os

from PIL import Image

from modules import modelloader, shared

LANCZOS = Image.Resampling.LANCZOS
NEAREST = Image.Resampling.NEAREST


class Upscaler:
    name = None
    model_path = None
    model_name = None
    model_url = None
    enable = True
    filter = None
    model = None
    user_path = None
    scalers: list
    tile = True

    def __init__(self, create_dirs=False):
        self.tile_size = shared.opts.ESRGAN_tile
        self.tile_pad = shared.opts.ESRGAN_tile_overlap
        self.device = shared.device
        self.scale = 1
        self.half = not shared.cmd_opts.no_half
        self.model_download_path = None
        # `name` must be set before calling this for models to live in models/<name>/.
        if self.model_path is None and self.name:
            self.model_path = os.path.join(shared.models_path, self.name)
        if self.model_path and create_dirs:
            os.makedirs(self.model_path, exist_ok=True)

    def do_upscale(self, img, selected_model):
        """Upscale once by the model's own factor."""
        return img

    def upscale(self, img, scale, selected_model=None):
        """Repeat do_upscale (at most 3 times) until the target is reached, then LANCZOS to the exact target.

        The target is each side times `scale`, floored to a multiple of 8. The loop also ends when the job was
        interrupted or when a pass returned an image of unchanged size.
        """
        self.scale = scale
        target_w = int((img.width * scale) // 8 * 8)
        target_h = int((img.height * scale) // 8 * 8)
        for attempt in range(3):
            reached = img.width >= target_w and img.height >= target_h
            if reached and (attempt > 0 or scale != 1):
                break
            if shared.state.interrupted:
                break
            before = img.size
            img = self.do_upscale(img, selected_model)
            if img.size == before:
                break
        if img.size != (target_w, target_h):
            img = img.resize((target_w, target_h), resample=LANCZOS)
        return img

    def load_model(self, path):
        pass

    def find_models(self, ext_filter=None):
        return modelloader.load_models(model_path=self.model_path, model_url=self.model_url,
                                       command_path=self.user_path, ext_filter=ext_filter)


class UpscalerData:
    """One entry of the upscaler list; `name` must be unique across all upscalers (lookups are by name)."""

    name = None
    data_path = None
    scale: int = 4
    scaler: Upscaler = None

    def __init__(self, name, path, upscaler=None, scale=4, model=None, sha256=None):
        self.name = name
        self.data_path = path
        self.local_data_path = path
        self.scaler = upscaler
        self.scale = scale
        self.model = model
        self.sha256 = sha256


class UpscalerNone(Upscaler):
    name = "None"
    scalers = []

    def __init__(self, dirname=None):
        super().__init__(False)
        self.scalers = [UpscalerData("None", None, self)]


def _resizer(name, resample):
    """The plain-resize upscalers, each a direct Upscaler subclass as in the WebUI."""

    def __init__(self, dirname=None):
        Upscaler.__init__(self, False)
        self.name = name
        self.scalers = [UpscalerData(name, None, self)]

    def do_upscale(self, img, selected_model=None):
        return img.resize((int(img.width * self.scale), int(img.height * self.scale)), resample=resample)

    return type(f"Upscaler{name}", (Upscaler,), {"scalers": [], "__init__": __init__, "do_upscale": do_upscale})


UpscalerLanczos = _resizer("Lanczos", LANCZOS)
UpscalerNearest = _resizer("Nearest", NEAREST)
