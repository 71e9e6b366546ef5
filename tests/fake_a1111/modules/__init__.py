"""Fake `modules` package of the Stable Diffusion WebUI (tests only; see ../README.md)."""
