"""Numba kernels on NCHW arrays, internal to minicnn: they trust their inputs; ``minicnn.functional``
validates arguments once and calls them (the public API is ``minicnn.functional``, not this package).

Conventions of every kernel here:

- A file's entry points (the kernels ``minicnn.functional`` calls) have plain names; its helpers start
  with an underscore and are called only from inside this package.
- Geometry of a windowed operation (convolution, im2col, pooling) is ONE tuple
  ``g = (kh, kw, sh, sw, ph, pw, dh, dw, OH, OW)``: kernel size, stride, padding, dilation, each
  (height, width), and the output size; ``minicnn._validate.conv_geometry`` builds it.
- Outputs are arguments: a kernel writes them (or adds into them where its docstring says "adds"). An
  optional output is passed as an EMPTY array (size 0) when it is not wanted, and its work is skipped.
- Buffers the caller passes are reused; a kernel allocates only per thread block, outside its hot loops.
- Helpers used by several files (unsigned indexing, window bounds, padding) live in ``common.py``.
- Files per algorithm: ``im2col.py`` (im2col / col2im), ``conv_im2col.py``, ``conv_direct.py`` and
  ``conv_tiled.py`` (the three convolution algorithms), ``tile.py`` (the tiled algorithm's micro-kernel).
"""
