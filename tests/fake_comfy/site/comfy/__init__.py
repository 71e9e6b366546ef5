"""A fake of the parts of ComfyUI's `comfy` package the Swin2SR pack uses, for tests without ComfyUI.

Signatures and behaviour follow ComfyUI 0.3.64 (comfy/model_management.py, comfy/model_patcher.py, comfy/utils.py)
and current upstream (is_oom, CoreModelPatcher); every call the pack makes is recorded in
`comfy.model_management.calls` so tests can assert on the host contract. No ComfyUI code is copied.
"""
