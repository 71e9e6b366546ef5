"""The `on_ui_settings` hook: callbacks run when the WebUI builds its settings page (also in API-only mode)."""

_ui_settings_callbacks = []


def on_ui_settings(callback):
    _ui_settings_callbacks.append(callback)


def run_ui_settings():
    """What `ui_settings.py` does while the UI is created: call every registered callback."""
    for callback in _ui_settings_callbacks:
        callback()
