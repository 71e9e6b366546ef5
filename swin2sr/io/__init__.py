"""Reading and writing images, one module per family (no model code)."""
