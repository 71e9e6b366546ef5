"""The extension inside each real AUTOMATIC1111-family WebUI (A1111 1.10.1 and Forge dfdcbab6; API only, CPU, no SD
model), driven over its HTTP API; every test runs once per WebUI (the `a1111` fixture, see conftest.py).

Specification: /sdapi/v1/upscalers lists the embedded models and one entry per checkpoint file; Extras through the
API returns the model's own output (what `swin2sr.upscale` gives in this process), not the WebUI's LANCZOS resize;
a file that cannot be loaded is an error, never a silent resize; the settings exist in API-only mode, sit in their
own section in the Postprocessing category, and can be set through /sdapi/v1/options.

The server's models/Swin2SR/ holds tiny4.pth (a seeded random Swin2SR x4 in the official format) and broken.pth
(random bytes); see conftest.a1111_setup.
"""

from __future__ import annotations

import pytest
from PIL import Image

import swin2sr
from real_hosts import HttpError, image_from_base64, mean_difference, photo, png_base64

BUILTIN_ENTRIES = {"Swin2SR x4 (built-in)": "builtin-x4", "Swin2SR x2 (built-in)": "builtin-x2"}
SETTING_KEYS = ("swin2sr_tile", "swin2sr_tile_overlap", "swin2sr_precision", "swin2sr_max_input_size")


def upscaler_names(a1111) -> list[str]:
    return [entry["name"] for entry in a1111.get("/sdapi/v1/upscalers")]


def entry_for(a1111, file_name: str) -> str:
    (name,) = [name for name in upscaler_names(a1111) if name.startswith("Swin2SR") and f"({file_name})" in name]
    return name


def extras(a1111, image: Image.Image, upscaler: str, factor: int) -> Image.Image:
    answer = a1111.post("/sdapi/v1/extra-single-image",
                        {"image": png_base64(image), "upscaler_1": upscaler, "upscaling_resize": factor})
    return image_from_base64(answer["image"])


def test_upscalers_lists_the_embedded_models_and_one_entry_per_checkpoint(a1111):
    names = upscaler_names(a1111)
    ours = [name for name in names if name.startswith("Swin2SR")]
    assert set(BUILTIN_ENTRIES) <= set(ours)
    assert entry_for(a1111, "tiny4.pth").startswith("Swin2SR x4 ")  # the variant and the real scale, read from it
    assert entry_for(a1111, "broken.pth") == "Swin2SR unreadable (broken.pth)"
    assert len(ours) == 4 + len(swin2sr.catalog.CATALOG), ours  # and one entry per official model
    assert {"Lanczos", "SwinIR 4x"} <= set(names), "the WebUI's own upscalers stay listed"


@pytest.mark.parametrize("kind", ["builtin-x4", "tiny4.pth"])
def test_extras_returns_the_model_output_not_a_plain_resize(a1111, a1111_data, kind):
    if kind in BUILTIN_ENTRIES.values():
        upscaler, source = next(name for name, src in BUILTIN_ENTRIES.items() if src == kind), kind
    else:
        upscaler, source = entry_for(a1111, kind), a1111_data / "models" / "Swin2SR" / kind
    image = photo(32, 24)

    served = extras(a1111, image, upscaler, 4)

    assert served.size == (128, 96)
    ours = swin2sr.upscale(swin2sr.load_model(source), image)
    resized = image.resize((128, 96), Image.LANCZOS)
    to_ours, to_resize = mean_difference(served, ours), mean_difference(served, resized)
    assert to_ours < 0.5, "the server ran the same model as swin2sr.upscale here (8-bit rounding aside)"
    assert to_resize > 10 * max(to_ours, 0.1), (to_ours, to_resize)


def test_a_file_that_cannot_be_loaded_is_an_error_not_a_resize(a1111):
    with pytest.raises(HttpError) as error:
        extras(a1111, photo(32, 24), entry_for(a1111, "broken.pth"), 4)
    assert error.value.status >= 500
    assert "broken.pth" in error.value.body


def test_settings_have_their_own_section_in_the_postprocessing_category(a1111):
    layout = a1111.get("/swin2sr-test/settings")  # the test probe extension, see a1111_probe/
    assert sorted(layout) == sorted(SETTING_KEYS)
    for key in SETTING_KEYS:
        assert layout[key] == {"section": ["swin2sr", "Swin2SR"], "category": "Postprocessing"}


def test_settings_can_be_read_and_set_through_the_api(a1111):
    options = a1111.get("/sdapi/v1/options")
    assert {key: options[key] for key in SETTING_KEYS} == {
        "swin2sr_tile": 0, "swin2sr_tile_overlap": 16, "swin2sr_precision": "auto", "swin2sr_max_input_size": 0}
    try:
        a1111.post("/sdapi/v1/options", {"swin2sr_tile": 64})
        assert a1111.get("/sdapi/v1/options")["swin2sr_tile"] == 64
    finally:
        a1111.post("/sdapi/v1/options", {"swin2sr_tile": 0})
