"""A plain-NumPy im2col CNN (no Numba): the reference the benchmarks compare minicnn against.

This is the textbook implementation (as in CS231n and most "CNN from scratch" tutorials), written to be
reasonably fast rather than a straw man:

- im2col takes a strided view of the padded input (``as_strided``, no Python loop over pixels) and
  copies it once into the ``(N*OH*OW, C*kh*kw)`` matrix;
- convolution is one BLAS matmul forward and two backward (weights, input);
- col2im has no ``np.add.at``: it loops over the ``kh*kw`` kernel offsets and adds one strided slice
  each (vectorised over N, C, OH, OW);
- pooling forward uses the same strided window view; backward loops over window offsets.

Conventions are those of ``tests/naive.py``: im2col rows are (n, oh, ow), columns (c, i, j); max
pooling pads with -inf and picks the first maximum; average pooling counts padded zeros.

Also here: ReLU, Linear, Flatten, cross-entropy, SGD with momentum (PyTorch's rule), a LeNet-5 with
PyTorch's default initialisation, and a small reader for MNIST IDX files.
"""
import gzip
import os

import numpy as np
from numpy.lib.stride_tricks import as_strided


def _pair(v):
    return (int(v), int(v)) if np.isscalar(v) else (int(v[0]), int(v[1]))


def out_size(size, k, s, p, d=1):
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


# -- im2col / col2im ---------------------------------------------------------------------------------
def _windows(xp, kh, kw, sh, sw, dh, dw, OH, OW):
    """Strided view (N, C, OH, OW, kh, kw) of the padded input ``xp``: no copy."""
    N, C = xp.shape[:2]
    sn, sc, s_h, s_w = xp.strides
    return as_strided(xp, shape=(N, C, OH, OW, kh, kw),
                      strides=(sn, sc, s_h * sh, s_w * sw, s_h * dh, s_w * dw), writeable=False)


def im2col(x, kernel_size, stride=1, padding=0, dilation=1):
    """x (N, C, H, W) -> cols (N*OH*OW, C*kh*kw); returns (cols, (OH, OW))."""
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = map(_pair, (kernel_size, stride, padding, dilation))
    N, C, H, W = x.shape
    OH, OW = out_size(H, kh, sh, ph, dh), out_size(W, kw, sw, pw, dw)
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw))) if (ph or pw) else x
    win = _windows(np.ascontiguousarray(xp), kh, kw, sh, sw, dh, dw, OH, OW)
    # (N, OH, OW, C, kh, kw): one copy into the row-major matrix.
    cols = np.ascontiguousarray(win.transpose(0, 2, 3, 1, 4, 5)).reshape(N * OH * OW, C * kh * kw)
    return cols, (OH, OW)


def col2im(cols, input_shape, kernel_size, stride=1, padding=0, dilation=1):
    """Adjoint of im2col: cols (N*OH*OW, C*kh*kw) -> x (N, C, H, W), overlapping entries summed."""
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = map(_pair, (kernel_size, stride, padding, dilation))
    N, C, H, W = input_shape
    OH, OW = out_size(H, kh, sh, ph, dh), out_size(W, kw, sw, pw, dw)
    c6 = cols.reshape(N, OH, OW, C, kh, kw).transpose(0, 3, 4, 5, 1, 2)  # (N, C, kh, kw, OH, OW)
    xp = np.zeros((N, C, H + 2 * ph, W + 2 * pw), dtype=cols.dtype)
    for i in range(kh):
        for j in range(kw):
            h0, w0 = i * dh, j * dw
            xp[:, :, h0:h0 + sh * (OH - 1) + 1:sh, w0:w0 + sw * (OW - 1) + 1:sw] += c6[:, :, i, j]
    return xp[:, :, ph:ph + H, pw:pw + W] if (ph or pw) else xp


# -- convolution ------------------------------------------------------------------------------------
def conv2d_forward(x, weight, bias=None, stride=1, padding=0, dilation=1):
    """Returns y (N, F, OH, OW) and the cols backward needs."""
    F, C, kh, kw = weight.shape
    cols, (OH, OW) = im2col(x, (kh, kw), stride, padding, dilation)
    y = cols @ weight.reshape(F, -1).T  # (N*OH*OW, F)
    if bias is not None:
        y += bias
    y = np.ascontiguousarray(y.reshape(x.shape[0], OH, OW, F).transpose(0, 3, 1, 2))
    return y, cols


def conv2d_backward(dy, cols, weight, input_shape, stride=1, padding=0, dilation=1, input_grad=True):
    """Returns (dx or None, dweight, dbias)."""
    F, C, kh, kw = weight.shape
    dy2 = dy.transpose(0, 2, 3, 1).reshape(-1, F)  # (N*OH*OW, F), rows in im2col order
    dweight = (dy2.T @ cols).reshape(weight.shape)
    dbias = dy2.sum(axis=0)
    dx = None
    if input_grad:
        dx = col2im(dy2 @ weight.reshape(F, -1), input_shape, (kh, kw), stride, padding, dilation)
    return dx, dweight, dbias


# -- pooling ----------------------------------------------------------------------------------------
def _pool_geometry(x_shape, kernel_size, stride, padding):
    (kh, kw), (ph, pw) = _pair(kernel_size), _pair(padding)
    sh, sw = _pair(kernel_size if stride is None else stride)
    OH, OW = out_size(x_shape[2], kh, sh, ph), out_size(x_shape[3], kw, sw, pw)
    return kh, kw, sh, sw, ph, pw, OH, OW


def max_pool2d_forward(x, kernel_size, stride=None, padding=0):
    """Returns y (N, C, OH, OW) and ``window_index``: position of the max inside its window (i*kw+j)."""
    kh, kw, sh, sw, ph, pw, OH, OW = _pool_geometry(x.shape, kernel_size, stride, padding)
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=-np.inf) if (ph or pw) else x
    win = _windows(np.ascontiguousarray(xp), kh, kw, sh, sw, 1, 1, OH, OW)
    flat = win.reshape(*win.shape[:4], kh * kw)  # copies: windows overlap in general
    window_index = flat.argmax(axis=-1)  # first maximum, as PyTorch
    y = np.take_along_axis(flat, window_index[..., None], axis=-1)[..., 0]
    return y, window_index


def max_pool2d_argmax(window_index, x_shape, kernel_size, stride=None, padding=0):
    """PyTorch-style indices ``h * W + w`` into the unpadded input plane, from ``window_index``."""
    kh, kw, sh, sw, ph, pw, OH, OW = _pool_geometry(x_shape, kernel_size, stride, padding)
    h = np.arange(OH)[:, None] * sh - ph + window_index // kw
    w = np.arange(OW)[None, :] * sw - pw + window_index % kw
    return h * x_shape[3] + w


def max_pool2d_backward(dy, window_index, x_shape, kernel_size, stride=None, padding=0):
    kh, kw, sh, sw, ph, pw, OH, OW = _pool_geometry(x_shape, kernel_size, stride, padding)
    N, C, H, W = x_shape
    dxp = np.zeros((N, C, H + 2 * ph, W + 2 * pw), dtype=dy.dtype)
    for i in range(kh):
        for j in range(kw):
            dxp[:, :, i:i + sh * (OH - 1) + 1:sh, j:j + sw * (OW - 1) + 1:sw] += \
                np.where(window_index == i * kw + j, dy, 0)
    return dxp[:, :, ph:ph + H, pw:pw + W] if (ph or pw) else dxp


def avg_pool2d_forward(x, kernel_size, stride=None, padding=0):
    kh, kw, sh, sw, ph, pw, OH, OW = _pool_geometry(x.shape, kernel_size, stride, padding)
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw))) if (ph or pw) else x
    y = np.zeros((x.shape[0], x.shape[1], OH, OW), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            y += xp[:, :, i:i + sh * (OH - 1) + 1:sh, j:j + sw * (OW - 1) + 1:sw]
    y *= x.dtype.type(1.0 / (kh * kw))
    return y


def avg_pool2d_backward(dy, x_shape, kernel_size, stride=None, padding=0):
    kh, kw, sh, sw, ph, pw, OH, OW = _pool_geometry(x_shape, kernel_size, stride, padding)
    N, C, H, W = x_shape
    dxp = np.zeros((N, C, H + 2 * ph, W + 2 * pw), dtype=dy.dtype)
    share = dy * dy.dtype.type(1.0 / (kh * kw))
    for i in range(kh):
        for j in range(kw):
            dxp[:, :, i:i + sh * (OH - 1) + 1:sh, j:j + sw * (OW - 1) + 1:sw] += share
    return dxp[:, :, ph:ph + H, pw:pw + W] if (ph or pw) else dxp


# -- layers -----------------------------------------------------------------------------------------
class Layer:
    """``y = layer(x)``, ``dx = layer.backward(dy)``; ``params`` is a list of [data, grad] pairs."""
    params = ()

    def __call__(self, x):
        return self.forward(x)

    def zero_grad(self):
        for _, g in self.params:
            g.fill(0)


def _uniform(rng, bound, shape, dtype):
    return rng.uniform(-bound, bound, size=shape).astype(dtype)


class Conv2d(Layer):
    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 input_grad=True, dtype=np.float32, rng=None):
        rng = np.random.default_rng(rng)
        kh, kw = _pair(kernel_size)
        bound = 1.0 / np.sqrt(in_channels * kh * kw)  # PyTorch's default (kaiming_uniform, a=sqrt(5))
        self.weight = _uniform(rng, bound, (out_channels, in_channels, kh, kw), dtype)
        self.bias = _uniform(rng, bound, (out_channels,), dtype)
        self.dweight, self.dbias = np.zeros_like(self.weight), np.zeros_like(self.bias)
        self.params = [[self.weight, self.dweight], [self.bias, self.dbias]]
        self.stride, self.padding, self.dilation, self.input_grad = stride, padding, dilation, input_grad

    def forward(self, x):
        self.x_shape = x.shape
        y, self.cols = conv2d_forward(x, self.weight, self.bias, self.stride, self.padding, self.dilation)
        return y

    def backward(self, dy):
        dx, dw, db = conv2d_backward(dy, self.cols, self.weight, self.x_shape, self.stride,
                                     self.padding, self.dilation, self.input_grad)
        self.dweight += dw
        self.dbias += db
        return dx


class MaxPool2d(Layer):
    def __init__(self, kernel_size, stride=None, padding=0):
        self.k, self.s, self.p = kernel_size, stride, padding

    def forward(self, x):
        self.x_shape = x.shape
        y, self.window_index = max_pool2d_forward(x, self.k, self.s, self.p)
        return y

    def backward(self, dy):
        return max_pool2d_backward(dy, self.window_index, self.x_shape, self.k, self.s, self.p)


class AvgPool2d(Layer):
    def __init__(self, kernel_size, stride=None, padding=0):
        self.k, self.s, self.p = kernel_size, stride, padding

    def forward(self, x):
        self.x_shape = x.shape
        return avg_pool2d_forward(x, self.k, self.s, self.p)

    def backward(self, dy):
        return avg_pool2d_backward(dy, self.x_shape, self.k, self.s, self.p)


class ReLU(Layer):
    def forward(self, x):
        self.mask = x > 0
        return x * self.mask

    def backward(self, dy):
        return dy * self.mask


class Flatten(Layer):
    def forward(self, x):
        self.x_shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, dy):
        return dy.reshape(self.x_shape)


class Linear(Layer):
    def __init__(self, in_features, out_features, dtype=np.float32, rng=None):
        rng = np.random.default_rng(rng)
        bound = 1.0 / np.sqrt(in_features)
        self.weight = _uniform(rng, bound, (out_features, in_features), dtype)
        self.bias = _uniform(rng, bound, (out_features,), dtype)
        self.dweight, self.dbias = np.zeros_like(self.weight), np.zeros_like(self.bias)
        self.params = [[self.weight, self.dweight], [self.bias, self.dbias]]

    def forward(self, x):
        self.x = x
        return x @ self.weight.T + self.bias

    def backward(self, dy):
        self.dweight += dy.T @ self.x
        self.dbias += dy.sum(axis=0)
        return dy @ self.weight


class Sequential(Layer):
    def __init__(self, *layers):
        self.layers = list(layers)
        self.params = [p for layer in layers for p in layer.params]

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return x

    def backward(self, dy):
        for layer in reversed(self.layers):
            dy = layer.backward(dy)
        return dy


def lenet5(num_classes=10, in_channels=1, dtype=np.float32, rng=None):
    """conv 1->6 k5 p2, maxpool 2, relu, conv 6->16 k5, maxpool 2, relu, flatten, 400-120-84-10 (the order
    of minicnn.models.LeNet5)."""
    rng = np.random.default_rng(rng)
    return Sequential(
        Conv2d(in_channels, 6, 5, padding=2, input_grad=False, dtype=dtype, rng=rng), MaxPool2d(2), ReLU(),
        Conv2d(6, 16, 5, dtype=dtype, rng=rng), MaxPool2d(2), ReLU(),
        Flatten(),
        Linear(16 * 5 * 5, 120, dtype=dtype, rng=rng), ReLU(),
        Linear(120, 84, dtype=dtype, rng=rng), ReLU(),
        Linear(84, num_classes, dtype=dtype, rng=rng),
    )


def cross_entropy(logits, targets):
    """Mean cross-entropy of integer ``targets``; returns (loss, dlogits)."""
    n = logits.shape[0]
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_z = np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    log_p = shifted - log_z
    loss = -log_p[np.arange(n), targets].mean()
    dlogits = np.exp(log_p)
    dlogits[np.arange(n), targets] -= 1
    dlogits /= n
    return float(loss), dlogits.astype(logits.dtype, copy=False)


class SGD:
    """PyTorch's SGD: buf = momentum * buf + grad; p -= lr * buf (no dampening, no weight decay)."""

    def __init__(self, params, lr=0.01, momentum=0.0):
        self.params, self.lr, self.momentum = list(params), lr, momentum
        self.bufs = [None] * len(self.params)

    def step(self):
        for k, (p, g) in enumerate(self.params):
            if self.momentum:
                if self.bufs[k] is None:
                    self.bufs[k] = g.copy()
                else:
                    self.bufs[k] *= self.momentum
                    self.bufs[k] += g
                g = self.bufs[k]
            p -= p.dtype.type(self.lr) * g


def train_step(model, optimizer, x, targets):
    model.zero_grad()
    loss, dlogits = cross_entropy(model(x), targets)
    model.backward(dlogits)
    optimizer.step()
    return loss


# -- data -------------------------------------------------------------------------------------------
def read_idx(path):
    """Read an IDX file (optionally .gz) into a NumPy array."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    if data[0] != 0 or data[1] != 0:
        raise ValueError(f"{path} is not an IDX file (bad magic number)")
    dtypes = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    if data[2] not in dtypes:
        raise ValueError(f"{path}: unknown IDX element type 0x{data[2]:02x}")
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * k:8 + 4 * k], "big") for k in range(ndim))
    return np.frombuffer(data, dtype=dtypes[data[2]], offset=4 + 4 * ndim).reshape(shape)


def find_mnist_test(data_dir=None):
    """Paths (images, labels) of the MNIST test set in ``data_dir`` (default: ``$MINICNN_MNIST_DIR``), or
    None when no folder is given or it lacks the files (``t10k-*-idx?-ubyte``, optionally ``.gz``)."""
    d = data_dir or os.environ.get("MINICNN_MNIST_DIR")
    if not d:
        return None
    for suffix in (".gz", ""):
        images = os.path.join(d, "t10k-images-idx3-ubyte" + suffix)
        labels = os.path.join(d, "t10k-labels-idx1-ubyte" + suffix)
        if os.path.isfile(images) and os.path.isfile(labels):
            return images, labels
    return None


def load_images(n=10000, seed=0, data_dir=None):
    """(x float32 (n, 1, 28, 28) scaled to [0, 1], y int64 (n,), source): the MNIST test set when
    found by ``find_mnist_test(data_dir)`` (repeated if ``n`` > 10,000), random images and labels otherwise."""
    paths = find_mnist_test(data_dir)
    if paths is not None:
        x = read_idx(paths[0]).astype(np.float32)[:, None] / 255.0
        y = read_idx(paths[1]).astype(np.int64)
        reps = -(-n // len(x))
        x, y = np.concatenate([x] * reps)[:n], np.concatenate([y] * reps)[:n]
        return np.ascontiguousarray(x), y, f"MNIST test set ({os.path.dirname(paths[0])})"
    rng = np.random.default_rng(seed)
    return (rng.random((n, 1, 28, 28), dtype=np.float32), rng.integers(0, 10, n), "synthetic (MNIST not found)")
