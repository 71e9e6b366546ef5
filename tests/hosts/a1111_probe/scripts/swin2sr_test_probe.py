"""Test-only A1111 extension, linked into the test server's extensions/ by tests/hosts/conftest.py (never shipped).

It adds one read-only route showing where the WebUI files the Swin2SR settings (section and category), which the
public API (/sdapi/v1/options: values only) does not expose and an API-only server has no settings page to show.
"""

from modules import script_callbacks, shared
from modules.options import categories


def _add_route(_demo, app) -> None:
    @app.get("/swin2sr-test/settings")
    def swin2sr_settings() -> dict:
        return {
            key: {"section": list(info.section), "category": getattr(categories.mapping.get(info.category_id),
                                                                     "label", "Uncategorized")}
            for key, info in shared.opts.data_labels.items()
            if key.startswith("swin2sr_")
        }


script_callbacks.on_app_started(_add_route)
