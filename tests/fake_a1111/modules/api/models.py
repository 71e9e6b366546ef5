"""The API's options model, built as the WebUI's modules/api/models.py builds it: once, at import, from the
options registered at that moment (one optional field per option, typed from its default)."""

from typing import Any, Optional

from pydantic import Field, create_model

from modules.shared import opts


def _field(info) -> tuple:
    kind = opts.typemap.get(type(info.default), type(info.default)) if info.default else Any
    return Optional[kind], Field(default=info.default, description=info.label)


OptionsModel = create_model("Options", **{key: _field(info) for key, info in opts.data_labels.items()})
