"""The extension's settings in the WebUI API's options model (GET /sdapi/v1/options), whichever order the WebUI
builds that model in: after the extensions' scripts (A1111) or before them (Forge, through its built-in ControlNet).

Specification: in both orders GET /sdapi/v1/options answers with our four settings, with their values and the same
field types the WebUI gives every other option; the options the WebUI registered itself stay in the model.
"""

from __future__ import annotations

import importlib
import sys

import pytest

from tests.fake_a1111.harness import forget_fake_modules, start_webui

SETTING_KEYS = ("swin2sr_tile", "swin2sr_tile_overlap", "swin2sr_precision", "swin2sr_max_input_size")


@pytest.fixture(params=[False, True], ids=["models-after-scripts (A1111)", "models-before-scripts (Forge)"])
def modules(request, monkeypatch, tmp_path):
    yield start_webui(monkeypatch, tmp_path / "webui", api_models_first=request.param)
    forget_fake_modules()


def options_model(modules):
    """The model the API's GET /sdapi/v1/options route is made with (after all scripts, as in both WebUIs)."""
    return importlib.import_module("modules.api.models").OptionsModel


def get_options(modules) -> dict:
    """What GET /sdapi/v1/options answers: the stored options through the response model."""
    return options_model(modules).model_validate(modules.shared.opts.data).model_dump()


def test_the_api_answers_with_our_settings_and_the_webuis_own(modules):
    answer = get_options(modules)
    assert {key: answer[key] for key in SETTING_KEYS} == {
        "swin2sr_tile": 0, "swin2sr_tile_overlap": 16, "swin2sr_precision": "auto", "swin2sr_max_input_size": 0}
    webuis_own = set(modules.shared.opts.data_labels) - set(SETTING_KEYS)
    assert webuis_own and webuis_own <= set(answer)


def test_a_changed_setting_is_answered(modules):
    modules.shared.opts.swin2sr_tile = 64
    assert get_options(modules)["swin2sr_tile"] == 64


def test_our_fields_are_typed_as_the_webui_types_its_own(modules):
    """The same field types and descriptions the WebUI's model would have given them, had it known them."""
    ours = options_model(modules).model_fields
    webuis = importlib.reload(importlib.import_module("modules.api.models")).OptionsModel.model_fields
    for key in SETTING_KEYS:
        assert (ours[key].annotation, ours[key].description) == (webuis[key].annotation, webuis[key].description)
    assert ours["swin2sr_precision"].description == "Precision"


def test_nothing_is_replaced_when_the_webui_builds_the_model_after_the_scripts(monkeypatch, tmp_path):
    modules = start_webui(monkeypatch, tmp_path / "webui")
    try:
        assert "modules.api.models" not in sys.modules, "the A1111 order: no model exists while the scripts load"
        assert options_model(modules).__base__.__name__ == "BaseModel"
    finally:
        forget_fake_modules()
