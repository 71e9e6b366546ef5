"""Model discovery: file search for one upscaler, and the startup pass that builds `shared.sd_upscalers`."""

import os
from urllib.parse import urlparse

from modules import shared


def load_models(model_path, model_url=None, command_path=None, ext_filter=None, download_name=None,
                ext_blacklist=None, hash_prefix=None):
    """Files under the command-line folder (if it differs) and then `model_path`; errors give an empty list."""
    found = []
    try:
        places = []
        if command_path is not None and command_path != model_path:
            pretrained = os.path.join(command_path, "experiments/pretrained_models")
            if os.path.exists(pretrained):
                places.append(pretrained)
            elif os.path.exists(command_path):
                places.append(command_path)
        places.append(model_path)
        for place in places:
            for path in shared.walk_files(place, allowed_extensions=ext_filter):
                if path not in found:
                    found.append(path)
        if model_url is not None and not found:
            found.append(model_url)
    except Exception:
        pass
    return found


def load_file_from_url(url, *, model_dir, progress=True, file_name=None, hash_prefix=None):
    """The file in `model_dir` if it is there, else downloaded by torch.hub (temporary file, then moved)."""
    os.makedirs(model_dir, exist_ok=True)
    cached_file = os.path.abspath(os.path.join(model_dir, file_name or os.path.basename(urlparse(url).path)))
    if not os.path.exists(cached_file):
        from torch.hub import download_url_to_file

        download_url_to_file(url, cached_file, progress=progress, hash_prefix=hash_prefix)
    return cached_file


def friendly_name(file):
    if file.startswith("http"):
        file = urlparse(file).path
    return os.path.splitext(os.path.basename(file))[0]


def load_upscalers():
    """Instantiate every *direct* subclass of Upscaler (newest definition wins) and collect their entries.

    Each class gets the command-line option named `<class name lower-cased without "upscaler">_models_path`.
    """
    from modules.upscaler import Upscaler, UpscalerLanczos, UpscalerNearest, UpscalerNone

    newest = {}
    for cls in reversed(Upscaler.__subclasses__()):
        newest.setdefault(str(cls), cls)
    entries = []
    options = vars(shared.cmd_opts)
    for cls in reversed(newest.values()):
        option = f"{cls.__name__.lower().replace('upscaler', '')}_models_path"
        command_path = options.get(option)
        scaler = cls(command_path)
        scaler.user_path = command_path
        scaler.model_download_path = command_path or scaler.model_path
        entries += scaler.scalers
    builtin = (UpscalerNone, UpscalerLanczos, UpscalerNearest)
    shared.sd_upscalers = sorted(
        entries, key=lambda entry: "" if isinstance(entry.scaler, builtin) else entry.name.lower())
