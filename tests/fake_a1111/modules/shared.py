"""Global WebUI state: options, command line, job state, model folders."""

import os

from modules import paths, shared_cmd_options

cmd_opts = shared_cmd_options.cmd_opts
models_path = paths.models_path
script_path = paths.script_path
device = None
sd_upscalers = []


class OptionInfo:
    """One setting: its default, label, UI component and section (the real class has more presentation fields)."""

    def __init__(self, default=None, label="", component=None, component_args=None, onchange=None, section=None,
                 refresh=None, comment_before="", comment_after="", infotext=None, restrict_api=False,
                 category_id=None):
        self.default = default
        self.label = label
        self.component = component
        self.component_args = component_args
        self.onchange = onchange
        self.section = section
        self.category_id = category_id
        self.comment_before = comment_before
        self.comment_after = comment_after

    def info(self, info):
        self.comment_after += f"<span class='info'>({info})</span>"
        return self

    def needs_reload_ui(self):
        self.comment_after += " <span class='info'>(requires Reload UI)</span>"
        return self

    def needs_restart(self):
        self.comment_after += " <span class='info'>(requires restart)</span>"
        return self


def options_section(section_identifier, options_dict):
    """Put every option in a section: (id, label), or (id, label, category id) since v1.7."""
    for info in options_dict.values():
        info.section = tuple(section_identifier[:2])
        if len(section_identifier) == 3:
            info.category_id = section_identifier[2]
    return options_dict


class Options:
    """Settings store: reading a key that was never registered raises AttributeError, as in the WebUI."""

    typemap = {int: float}  # how the WebUI widens a default's type (its API options model uses this)

    def __init__(self, data_labels):
        object.__setattr__(self, "data_labels", dict(data_labels))
        object.__setattr__(self, "data", {k: v.default for k, v in data_labels.items()})

    def add_option(self, key, info):
        self.data_labels[key] = info
        self.data.setdefault(key, info.default)

    def __getattr__(self, item):
        if item in self.data:
            return self.data[item]
        if item in self.data_labels:
            return self.data_labels[item].default
        raise AttributeError(item)

    def __setattr__(self, key, value):
        if key not in self.data_labels:
            raise KeyError(key)  # the WebUI refuses unregistered keys (POST /sdapi/v1/options fails the same way)
        self.data[key] = value


opts = Options({
    "ESRGAN_tile": OptionInfo(192, "Tile size for ESRGAN upscalers."),
    "ESRGAN_tile_overlap": OptionInfo(8, "Tile overlap for ESRGAN upscalers."),
})


class State:
    """The running job: Interrupt sets `interrupted`, Skip sets `skipped`; the progress API reads the step fields."""

    interrupted = False
    skipped = False
    job = ""
    sampling_step = 0
    sampling_steps = 0

    def interrupt(self):
        self.interrupted = True


state = State()


def walk_files(path, allowed_extensions=None):
    """Files under `path` (sorted), keeping only the given extensions (compared lower-case, dot included)."""
    if not os.path.exists(path):
        return
    allowed = set(allowed_extensions) if allowed_extensions is not None else None
    for root, _, files in sorted(os.walk(path, followlinks=True)):
        for filename in sorted(files):
            if allowed is not None and os.path.splitext(filename)[1].lower() not in allowed:
                continue
            yield os.path.join(root, filename)
