"""Reading and writing files, one module per family (images, animation, streaming writers, video); no model code."""
