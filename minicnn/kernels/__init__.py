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
  ``conv_tiled.py`` (the three convolution algorithms; ``conv_im2col.py`` also runs groups and the
  transposed convolution), ``tile.py`` (the tiled algorithm's micro-kernel), ``depthwise.py`` (depthwise
  convolution), ``pad.py`` (padding modes and their adjoint).
- Memory-bound operations: ``activation.py`` (ReLU), ``elementwise.py`` (the other elementwise
  activations and PReLU) over ``fastmath.py`` (vectorisable float32 exp / tanh / erfc), ``softmax.py``,
  ``batchnorm.py`` and ``normalization.py`` (LayerNorm, GroupNorm, InstanceNorm), ``loss.py`` (the
  class losses) and ``elementwise_loss.py``. Their row kernels come in pairs: ``<name>_rows(..., lo, hi)``
  (serial, for small inputs) and ``<name>(..., n_chunks)`` (the rows split across threads).
- Windows and layout: ``pool.py`` (max, average, adaptive pooling, max unpooling), ``upsample.py``
  (nearest and bilinear interpolation), ``channel.py`` (Dropout2d), ``add.py`` (the residual add),
  ``augment.py`` (the DataLoader's crop, flip and normalisation), ``linear.py``; ``peak.py`` measures
  the machine's FMA and copy peaks for the profiler.
"""
