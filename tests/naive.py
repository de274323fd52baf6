"""Slow, obviously-correct references: nested loops over every index, as in a textbook.

Conventions the kernels must match:
- im2col rows are receptive fields in (n, oh, ow) order; columns are (c, i, j) in that order.
- max pooling pads with -inf and picks the first maximum in row-major window order; ``argmax``
  holds the flat index ``h * W + w`` into the unpadded input plane (as PyTorch's indices).
- average pooling divides by the window's size within the padded input (PyTorch's count_include_pad=True),
  or within the input (False), or by divisor_override.

Each backward here repeats the loops of its forward on purpose (im2col / col2im, the pools and their
backwards, interpolate / interpolate_backward, ...): a reference reads top to bottom on its own, as in a
textbook, where a shared loop helper would have to be understood first to trust either.
"""
import math

import numpy as np


def out_size(size, k, s, p, d=1):
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


def im2col(x, kh, kw, sh, sw, ph, pw, dh=1, dw=1):
    N, C, H, W = x.shape
    OH, OW = out_size(H, kh, sh, ph, dh), out_size(W, kw, sw, pw, dw)
    cols = np.zeros((N * OH * OW, C * kh * kw), dtype=x.dtype)
    for n in range(N):
        for oh in range(OH):
            for ow in range(OW):
                row = (n * OH + oh) * OW + ow
                for c in range(C):
                    for i in range(kh):
                        for j in range(kw):
                            h = oh * sh - ph + i * dh
                            w = ow * sw - pw + j * dw
                            if 0 <= h < H and 0 <= w < W:
                                cols[row, (c * kh + i) * kw + j] = x[n, c, h, w]
    return cols


def col2im(cols, x_shape, kh, kw, sh, sw, ph, pw, dh=1, dw=1):
    N, C, H, W = x_shape
    OH, OW = out_size(H, kh, sh, ph, dh), out_size(W, kw, sw, pw, dw)
    x = np.zeros(x_shape, dtype=cols.dtype)
    for n in range(N):
        for oh in range(OH):
            for ow in range(OW):
                row = (n * OH + oh) * OW + ow
                for c in range(C):
                    for i in range(kh):
                        for j in range(kw):
                            h = oh * sh - ph + i * dh
                            w = ow * sw - pw + j * dw
                            if 0 <= h < H and 0 <= w < W:
                                x[n, c, h, w] += cols[row, (c * kh + i) * kw + j]
    return x


def conv2d(x, weight, bias, sh, sw, ph, pw, dh=1, dw=1):
    """Direct convolution (cross-correlation, as PyTorch): y[n,f,oh,ow] = b[f] + sum x * w (one group
    of :func:`conv2d_grouped`)."""
    return conv2d_grouped(x, weight, bias, sh, sw, ph, pw, dh, dw, groups=1)


def conv2d_backward(dy, x, weight, sh, sw, ph, pw, dh=1, dw=1):
    """The gradients ``(dx, dweight, dbias)`` of :func:`conv2d`, by the chain rule on each term of its sum."""
    N, C, H, W = x.shape
    F, _, kh, kw = weight.shape
    OH, OW = dy.shape[2], dy.shape[3]
    dx, dweight = np.zeros(x.shape), np.zeros(weight.shape)
    dbias = np.zeros(F)
    for n in range(N):
        for f in range(F):
            for oh in range(OH):
                for ow in range(OW):
                    g = float(dy[n, f, oh, ow])
                    dbias[f] += g
                    for c in range(C):
                        for i in range(kh):
                            for j in range(kw):
                                h = oh * sh - ph + i * dh
                                w = ow * sw - pw + j * dw
                                if 0 <= h < H and 0 <= w < W:
                                    dx[n, c, h, w] += g * float(weight[f, c, i, j])
                                    dweight[f, c, i, j] += g * float(x[n, c, h, w])
    return dx, dweight, dbias


def pool_out_size(size, k, s, p, d=1, ceil_mode=False):
    """Count the windows one by one: a window fits when its last tap is inside the padded input
    (floor mode); with ceil_mode, when it starts inside the input or the left padding and it would
    fit with ``s - 1`` more padding at the end (PyTorch's rounding up)."""
    extra = s - 1 if ceil_mode else 0
    o = 0
    while o * s + d * (k - 1) <= size + 2 * p - 1 + extra and (not ceil_mode or o * s - p < size):
        o += 1
    return o


def max_pool2d(x, kh, kw, sh, sw, ph, pw, dh=1, dw=1, ceil_mode=False):
    """Returns (y, argmax)."""
    N, C, H, W = x.shape
    OH, OW = pool_out_size(H, kh, sh, ph, dh, ceil_mode), pool_out_size(W, kw, sw, pw, dw, ceil_mode)
    y = np.empty((N, C, OH, OW), dtype=x.dtype)
    argmax = np.empty((N, C, OH, OW), dtype=np.int64)
    for n in range(N):
        for c in range(C):
            for oh in range(OH):
                for ow in range(OW):
                    best, where = -np.inf, -1
                    for i in range(kh):
                        for j in range(kw):
                            h, w = oh * sh - ph + i * dh, ow * sw - pw + j * dw
                            if 0 <= h < H and 0 <= w < W and (where < 0 or x[n, c, h, w] > best):
                                best, where = x[n, c, h, w], h * W + w
                    y[n, c, oh, ow], argmax[n, c, oh, ow] = best, where
    return y, argmax


def max_pool2d_backward(dy, argmax, x_shape):
    N, C, H, W = x_shape
    dx = np.zeros(x_shape, dtype=dy.dtype)
    for n in range(N):
        for c in range(C):
            for oh in range(dy.shape[2]):
                for ow in range(dy.shape[3]):
                    k = argmax[n, c, oh, ow]
                    dx[n, c, k // W, k % W] += dy[n, c, oh, ow]
    return dx


def avg_divisor(oh, ow, H, W, kh, kw, sh, sw, ph, pw, count_include_pad=True, divisor_override=None):
    """PyTorch's divisor: the override, else the window's elements inside the padded input (padding
    counted) or inside the input."""
    if divisor_override:
        return divisor_override
    rows = [oh * sh - ph + i for i in range(kh) if oh * sh - ph + i < H + ph]
    cols = [ow * sw - pw + j for j in range(kw) if ow * sw - pw + j < W + pw]
    if not count_include_pad:
        rows = [h for h in rows if 0 <= h < H]
        cols = [w for w in cols if 0 <= w < W]
    return len(rows) * len(cols)


def avg_pool2d(x, kh, kw, sh, sw, ph, pw, ceil_mode=False, count_include_pad=True, divisor_override=None):
    N, C, H, W = x.shape
    OH, OW = pool_out_size(H, kh, sh, ph, 1, ceil_mode), pool_out_size(W, kw, sw, pw, 1, ceil_mode)
    y = np.zeros((N, C, OH, OW), dtype=x.dtype)
    for n in range(N):
        for c in range(C):
            for oh in range(OH):
                for ow in range(OW):
                    s = 0.0
                    for i in range(kh):
                        for j in range(kw):
                            h, w = oh * sh - ph + i, ow * sw - pw + j
                            if 0 <= h < H and 0 <= w < W:
                                s += x[n, c, h, w]
                    y[n, c, oh, ow] = s / avg_divisor(oh, ow, H, W, kh, kw, sh, sw, ph, pw, count_include_pad,
                                                      divisor_override)
    return y


def avg_pool2d_backward(dy, x_shape, kh, kw, sh, sw, ph, pw, count_include_pad=True, divisor_override=None):
    N, C, H, W = x_shape
    dx = np.zeros(x_shape, dtype=dy.dtype)
    for n in range(N):
        for c in range(C):
            for oh in range(dy.shape[2]):
                for ow in range(dy.shape[3]):
                    div = avg_divisor(oh, ow, H, W, kh, kw, sh, sw, ph, pw, count_include_pad, divisor_override)
                    for i in range(kh):
                        for j in range(kw):
                            h, w = oh * sh - ph + i, ow * sw - pw + j
                            if 0 <= h < H and 0 <= w < W:
                                dx[n, c, h, w] += dy[n, c, oh, ow] / div
    return dx


def crop_flip_normalise(images, index, oy, ox, flip, pad, size, mean, std):
    """torchvision's RandomCrop(size, padding=pad) -> RandomHorizontalFlip -> Normalize(mean, std), one
    sample at a time: ``images`` (N, C, H, W) raw pixels (uint8 scaled by 1/255, floats as they are)."""
    scale = 1 / 255.0 if images.dtype == np.uint8 else 1.0
    h, w = size
    out = []
    for b, n in enumerate(index):
        img = images[n].astype(np.float64) * scale
        padded = np.pad(img, ((0, 0), (pad, pad), (pad, pad)))
        crop = padded[:, oy[b]:oy[b] + h, ox[b]:ox[b] + w]
        if flip[b]:
            crop = crop[:, :, ::-1]
        out.append((crop - np.asarray(mean, float)[:, None, None]) / np.asarray(std, float)[:, None, None])
    return np.array(out).reshape((len(index), images.shape[1], h, w))


def adaptive_window(o, out, size):
    """PyTorch's adaptive window: [floor(o * size / out), ceil((o + 1) * size / out))."""
    return int(np.floor(o * size / out)), int(np.ceil((o + 1) * size / out))


def adaptive_avg_pool2d(x, OH, OW):
    N, C, H, W = x.shape
    y = np.zeros((N, C, OH, OW), dtype=x.dtype)
    for n in range(N):
        for c in range(C):
            for oh in range(OH):
                h0, h1 = adaptive_window(oh, OH, H)
                for ow in range(OW):
                    w0, w1 = adaptive_window(ow, OW, W)
                    y[n, c, oh, ow] = sum(x[n, c, h, w] for h in range(h0, h1) for w in range(w0, w1)) \
                        / ((h1 - h0) * (w1 - w0))
    return y


def adaptive_avg_pool2d_backward(dy, x_shape):
    N, C, H, W = x_shape
    OH, OW = dy.shape[2:]
    dx = np.zeros(x_shape, dtype=dy.dtype)
    for n in range(N):
        for c in range(C):
            for oh in range(OH):
                h0, h1 = adaptive_window(oh, OH, H)
                for ow in range(OW):
                    w0, w1 = adaptive_window(ow, OW, W)
                    for h in range(h0, h1):
                        for w in range(w0, w1):
                            dx[n, c, h, w] += dy[n, c, oh, ow] / ((h1 - h0) * (w1 - w0))
    return dx


def adaptive_max_pool2d(x, OH, OW):
    """Returns (y, argmax): the first maximum of each adaptive window."""
    N, C, H, W = x.shape
    y = np.empty((N, C, OH, OW), dtype=x.dtype)
    argmax = np.empty((N, C, OH, OW), dtype=np.int64)
    for n in range(N):
        for c in range(C):
            for oh in range(OH):
                h0, h1 = adaptive_window(oh, OH, H)
                for ow in range(OW):
                    w0, w1 = adaptive_window(ow, OW, W)
                    best, where = -np.inf, -1
                    for h in range(h0, h1):
                        for w in range(w0, w1):
                            if where < 0 or x[n, c, h, w] > best:
                                best, where = x[n, c, h, w], h * W + w
                    y[n, c, oh, ow], argmax[n, c, oh, ow] = best, where
    return y, argmax


def max_unpool2d(x, indices, OH, OW):
    """Zeros with x[n, c, h, w] written at flat position indices[n, c, h, w] of its output plane
    (in order: the last write wins)."""
    N, C, H, W = x.shape
    y = np.zeros((N, C, OH, OW), dtype=x.dtype)
    for n in range(N):
        for c in range(C):
            for h in range(H):
                for w in range(W):
                    k = indices[n, c, h, w]
                    y[n, c, k // OW, k % OW] = x[n, c, h, w]
    return y


def max_unpool2d_backward(dy, indices):
    N, C, H, W = indices.shape
    OW = dy.shape[3]
    dx = np.zeros((N, C, H, W), dtype=dy.dtype)
    for n in range(N):
        for c in range(C):
            for h in range(H):
                for w in range(W):
                    k = indices[n, c, h, w]
                    dx[n, c, h, w] = dy[n, c, k // OW, k % OW]
    return dx


def nearest_source(o, in_size, out_size, scale=None):
    """PyTorch's nearest source index: o when the sizes match, o // 2 at exactly twice the size, else
    floor(o * s) (s = 1 / scale_factor if given, else in / out, in float32 as PyTorch) clipped."""
    if out_size == in_size:
        return o
    if out_size == 2 * in_size:
        return o // 2
    s = np.float32(1.0 / scale) if scale else np.float32(in_size) / np.float32(out_size)
    return min(int(np.floor(np.float32(o) * s)), in_size - 1)


def linear_source(o, in_size, out_size, align_corners, scale=None):
    """PyTorch's linear source: (i0, i1, weight of i0, weight of i1)."""
    if out_size == in_size:
        return o, o, 1.0, 0.0
    if align_corners:
        src = o * ((in_size - 1) / (out_size - 1) if out_size > 1 else 0.0)
    else:
        s = 1.0 / scale if scale else in_size / out_size
        src = max(s * (o + 0.5) - 0.5, 0.0)
    i0 = min(int(np.floor(src)), in_size - 1)
    lam = min(max(src - i0, 0.0), 1.0)
    return i0, min(i0 + 1, in_size - 1), 1.0 - lam, lam


def interpolate(x, OH, OW, mode, align_corners=False, scales=(None, None)):
    """Nearest or bilinear resize of x to (OH, OW), one output element at a time."""
    N, C, H, W = x.shape
    y = np.zeros((N, C, OH, OW), dtype=x.dtype)
    for n in range(N):
        for c in range(C):
            for oh in range(OH):
                for ow in range(OW):
                    if mode == "nearest":
                        y[n, c, oh, ow] = x[n, c, nearest_source(oh, H, OH, scales[0]),
                                            nearest_source(ow, W, OW, scales[1])]
                        continue
                    h0, h1, a0, a1 = linear_source(oh, H, OH, align_corners, scales[0])
                    w0, w1, b0, b1 = linear_source(ow, W, OW, align_corners, scales[1])
                    y[n, c, oh, ow] = (a0 * b0 * x[n, c, h0, w0] + a0 * b1 * x[n, c, h0, w1]
                                       + a1 * b0 * x[n, c, h1, w0] + a1 * b1 * x[n, c, h1, w1])
    return y


def interpolate_backward(dy, x_shape, mode, align_corners=False, scales=(None, None)):
    N, C, H, W = x_shape
    OH, OW = dy.shape[2:]
    dx = np.zeros(x_shape, dtype=dy.dtype)
    for n in range(N):
        for c in range(C):
            for oh in range(OH):
                for ow in range(OW):
                    g = dy[n, c, oh, ow]
                    if mode == "nearest":
                        dx[n, c, nearest_source(oh, H, OH, scales[0]), nearest_source(ow, W, OW, scales[1])] += g
                        continue
                    h0, h1, a0, a1 = linear_source(oh, H, OH, align_corners, scales[0])
                    w0, w1, b0, b1 = linear_source(ow, W, OW, align_corners, scales[1])
                    dx[n, c, h0, w0] += a0 * b0 * g
                    dx[n, c, h0, w1] += a0 * b1 * g
                    dx[n, c, h1, w0] += a1 * b0 * g
                    dx[n, c, h1, w1] += a1 * b1 * g
    return dx


def scale_channels(x, scale):
    """x[n, c] * scale[n, c] for every element (Dropout2d's kernel)."""
    y = np.empty_like(x)
    for n in range(x.shape[0]):
        for c in range(x.shape[1]):
            y[n, c] = x[n, c] * scale[n, c]
    return y


# Written out here, not taken from minicnn.gradcheck (whose _numerical is the same central difference):
# the tests check the library against references that share no code with it.
def numerical_grad(f, x, eps=1e-6):
    """Central differences of the scalar function ``f()`` with respect to the float64 array ``x``
    (perturbed in place and restored)."""
    grad = np.zeros_like(x, dtype=np.float64)
    flat, gflat = x.reshape(-1), grad.reshape(-1)
    for k in range(flat.size):
        old = flat[k]
        flat[k] = old + eps
        plus = f()
        flat[k] = old - eps
        minus = f()
        flat[k] = old
        gflat[k] = (plus - minus) / (2 * eps)
    return grad


def linear(x, w, b):
    """y = x @ w.T + b by loops, in float64."""
    N, I = x.shape
    O = w.shape[0]
    y = np.zeros((N, O))
    for n in range(N):
        for o in range(O):
            s = 0.0 if b is None else float(b[o])
            for i in range(I):
                s += float(x[n, i]) * float(w[o, i])
            y[n, o] = s
    return y


def batch_norm_train(x, gamma, beta, eps):
    """Per channel: mean and biased variance over (n, h, w), loops and float64."""
    N, C, H, W = x.shape
    y = np.empty(x.shape)
    means, variances = np.empty(C), np.empty(C)
    for c in range(C):
        vals = [float(x[n, c, h, w]) for n in range(N) for h in range(H) for w in range(W)]
        m = sum(vals) / len(vals)
        v = sum((t - m) ** 2 for t in vals) / len(vals)
        means[c], variances[c] = m, v
        for n in range(N):
            for h in range(H):
                for w in range(W):
                    y[n, c, h, w] = (x[n, c, h, w] - m) / np.sqrt(v + eps) * gamma[c] + beta[c]
    return y, means, variances


def cross_entropy(logits, labels, smoothing=0.0):
    """Textbook: p = exp(z) / sum exp(z); loss = mean_n [(1-s) * -log p_y + s * mean_k -log p_k]."""
    N, K = logits.shape
    total = 0.0
    for n in range(N):
        exps = [math.exp(float(z)) for z in logits[n]]
        s = sum(exps)
        logp = [math.log(e / s) for e in exps]
        total += (1 - smoothing) * -logp[labels[n]] + smoothing * -sum(logp) / K
    return total / N


def cross_entropy_grad(logits, labels, smoothing=0.0):
    """d mean loss / d logits of :func:`cross_entropy`: (softmax - smoothed one-hot) / N."""
    N, K = logits.shape
    g = np.zeros((N, K))
    for n in range(N):
        exps = [math.exp(float(z)) for z in logits[n]]
        s = sum(exps)
        for k in range(K):
            target = (1 - smoothing) * (k == labels[n]) + smoothing / K
            g[n, k] = (exps[k] / s - target) / N
    return g


def relu(x):
    """y = max(x, 0) element by element (NaN stays NaN)."""
    y = np.array(x, copy=True)
    flat = y.reshape(-1)
    for i in range(flat.size):
        if flat[i] <= 0:
            flat[i] = 0
    return y


def relu_grad(dy, x):
    """dy where x > 0, else 0 (the gradient at 0 is 0)."""
    dx = np.zeros_like(dy)
    xf, dyf, dxf = x.reshape(-1), dy.reshape(-1), dx.reshape(-1)
    for i in range(dyf.size):
        if xf[i] > 0:
            dxf[i] = dyf[i]
    return dx


# -- activations: one Python float at a time (math module, float64) --------------------------------


def _each(f, x):
    return np.array([f(float(v)) for v in np.asarray(x).reshape(-1)]).reshape(np.shape(x))


def _sigmoid1(v):
    return 1.0 / (1.0 + math.exp(-v)) if v >= 0 else math.exp(v) / (1.0 + math.exp(v))


def _gelu1(v):
    return v * 0.5 * math.erfc(-v / math.sqrt(2))


def _gelu1_grad(v):
    return 0.5 * math.erfc(-v / math.sqrt(2)) + v * math.exp(-v * v / 2) / math.sqrt(2 * math.pi)


def gelu_tanh(v):
    return 0.5 * v * (1 + math.tanh(math.sqrt(2 / math.pi) * (v + 0.044715 * v ** 3)))


ACTIVATIONS = {  # name: (value at v, derivative at v), keyword arguments as PyTorch's
    "leaky_relu": (lambda v, negative_slope=0.01: v if v > 0 else negative_slope * v,
                   lambda v, negative_slope=0.01: 1.0 if v > 0 else negative_slope),
    "elu": (lambda v, alpha=1.0: v if v > 0 else alpha * math.expm1(v),
            lambda v, alpha=1.0: 1.0 if v > 0 else alpha * math.exp(v)),
    "gelu": (_gelu1, _gelu1_grad),
    "silu": (lambda v: v * _sigmoid1(v), lambda v: _sigmoid1(v) * (1 + v * (1 - _sigmoid1(v)))),
    "sigmoid": (_sigmoid1, lambda v: _sigmoid1(v) * (1 - _sigmoid1(v))),
    "tanh": (math.tanh, lambda v: 1 - math.tanh(v) ** 2),
    "hardswish": (lambda v: v * min(max(v + 3, 0.0), 6.0) / 6,
                  lambda v: 0.0 if v <= -3 else (v / 3 + 0.5 if v < 3 else 1.0)),
    "relu6": (lambda v: min(max(v, 0.0), 6.0), lambda v: 1.0 if 0 < v < 6 else 0.0),
}


def activation(name, x, **kw):
    """Forward of activation ``name`` elementwise, float64."""
    if name == "gelu" and kw.pop("approximate", "none") == "tanh":
        return _each(gelu_tanh, x)
    return _each(lambda v: ACTIVATIONS[name][0](v, **kw), x)


def activation_grad(name, x, dy, **kw):
    """``dy * act'(x)`` elementwise (for the tanh GELU: a central difference of ``gelu_tanh``)."""
    if name == "gelu" and kw.pop("approximate", "none") == "tanh":
        d = _each(lambda v: (gelu_tanh(v + 1e-6) - gelu_tanh(v - 1e-6)) / 2e-6, x)
    else:
        d = _each(lambda v: ACTIVATIONS[name][1](v, **kw), x)
    return np.asarray(dy, np.float64) * d


def prelu(x, weight):
    """``x if x > 0 else weight[c] * x``, c = index along dim 1 (or the single weight)."""
    x = np.asarray(x, np.float64)
    y = np.empty(x.shape)
    for idx in np.ndindex(x.shape):
        a = weight[0] if len(weight) == 1 else weight[idx[1]]
        y[idx] = x[idx] if x[idx] > 0 else a * x[idx]
    return y


def softmax(x, dim, log=False):
    """Softmax (or log-softmax) along ``dim``, one slice at a time, via log-sum-exp in float64."""
    x = np.moveaxis(np.asarray(x, np.float64), dim, -1)
    y = np.empty(x.shape)
    for idx in np.ndindex(x.shape[:-1]):
        row = [float(v) for v in x[idx]]
        top = max(row)
        lse = top + math.log(sum(math.exp(v - top) for v in row))
        y[idx] = [v - lse if log else math.exp(v - lse) for v in row]
    return np.moveaxis(y, -1, dim)


# -- normalisations: statistics by loops in float64 -------------------------------------------------
def _normalize_rows(rows, eps):
    """Each row of the list of lists normalised by its mean and biased variance."""
    out = []
    for row in rows:
        m = sum(row) / len(row)
        v = sum((t - m) ** 2 for t in row) / len(row)
        out.append([(t - m) / math.sqrt(v + eps) for t in row])
    return out


def layer_norm(x, normalized_shape, weight=None, bias=None, eps=1e-5):
    """Each sample's trailing ``normalized_shape`` values normalised, then ``* weight + bias``."""
    D = int(np.prod(normalized_shape))
    x2 = np.asarray(x, np.float64).reshape(-1, D)
    y = np.array(_normalize_rows([[float(v) for v in r] for r in x2], eps))
    if weight is not None:
        y = y * np.asarray(weight, np.float64).reshape(1, D)
    if bias is not None:
        y = y + np.asarray(bias, np.float64).reshape(1, D)
    return y.reshape(np.shape(x))


def group_norm(x, num_groups, weight=None, bias=None, eps=1e-5):
    """Statistics over each group of C / num_groups channels (and H, W) per sample; affine per channel."""
    x = np.asarray(x, np.float64)
    N, C = x.shape[:2]
    Cg = C // num_groups
    y = np.empty(x.shape)
    for n in range(N):
        for g in range(num_groups):
            block = x[n, g * Cg:(g + 1) * Cg]
            y[n, g * Cg:(g + 1) * Cg] = np.array(_normalize_rows([[float(v) for v in block.reshape(-1)]], eps)
                                                  ).reshape(block.shape)
        for c in range(C):
            if weight is not None:
                y[n, c] *= weight[c]
            if bias is not None:
                y[n, c] += bias[c]
    return y


def _normalize_rows_backward(rows, dys, ws, eps):
    """The closed-form gradient of :func:`_normalize_rows` followed by ``* w`` (one weight per value,
    lists of lists): per row ``(dx, dy * xhat)``, ``dx = rstd * (g - mean(g) - xhat * mean(g * xhat))``
    with ``g = dy * w``."""
    dxs, dxhs = [], []
    for row, dyr, wr in zip(rows, dys, ws):
        K = len(row)
        m = sum(row) / K
        rstd = 1.0 / math.sqrt(sum((t - m) ** 2 for t in row) / K + eps)
        xh = [(t - m) * rstd for t in row]
        g = [d * w for d, w in zip(dyr, wr)]
        mg = sum(g) / K
        mgx = sum(a * b for a, b in zip(g, xh)) / K
        dxs.append([rstd * (gi - mg - xi * mgx) for gi, xi in zip(g, xh)])
        dxhs.append([d * xi for d, xi in zip(dyr, xh)])
    return dxs, dxhs


def layer_norm_backward(x, dy, normalized_shape, weight=None, eps=1e-5):
    """Gradients of :func:`layer_norm`: ``(dx, dweight, dbias)`` (float64; ``dweight = sum(dy * xhat)``,
    ``dbias = sum(dy)`` over the rows, of shape ``normalized_shape``)."""
    D = int(np.prod(normalized_shape))
    x2 = np.asarray(x, np.float64).reshape(-1, D)
    dy2 = np.asarray(dy, np.float64).reshape(-1, D)
    w = [1.0] * D if weight is None else [float(v) for v in np.asarray(weight, np.float64).reshape(-1)]
    dxs, dxhs = _normalize_rows_backward([[float(v) for v in r] for r in x2], [[float(v) for v in r] for r in dy2],
                                         [w] * len(x2), eps)
    dweight = [sum(col) for col in zip(*dxhs)] if dxhs else [0.0] * D
    dbias = [sum(col) for col in zip(*dy2.tolist())] if len(dy2) else [0.0] * D
    shape = tuple(np.atleast_1d(normalized_shape))
    return (np.array(dxs).reshape(np.shape(x)), np.array(dweight).reshape(shape), np.array(dbias).reshape(shape))


def group_norm_backward(x, dy, num_groups, weight=None, eps=1e-5):
    """Gradients of :func:`group_norm`: ``(dx, dweight, dbias)`` (float64; per channel ``dweight =
    sum(dy * xhat)``, ``dbias = sum(dy)`` over samples and trailing dimensions)."""
    x = np.asarray(x, np.float64)
    dy = np.asarray(dy, np.float64)
    N, C = x.shape[:2]
    Cg = C // num_groups
    w = np.ones(C) if weight is None else np.asarray(weight, np.float64)
    dx = np.empty(x.shape)
    dweight, dbias = np.zeros(C), np.zeros(C)
    for n in range(N):
        for g in range(num_groups):
            blk = slice(g * Cg, (g + 1) * Cg)
            per_value_w = np.broadcast_to(w[blk].reshape((Cg,) + (1,) * (x.ndim - 2)), x[n, blk].shape)
            dxs, dxhs = _normalize_rows_backward([x[n, blk].reshape(-1).tolist()], [dy[n, blk].reshape(-1).tolist()],
                                                 [per_value_w.reshape(-1).tolist()], eps)
            dx[n, blk] = np.array(dxs[0]).reshape(x[n, blk].shape)
            dxh = np.array(dxhs[0]).reshape(Cg, -1)
            for c in range(Cg):
                dweight[g * Cg + c] += sum(dxh[c].tolist())
                dbias[g * Cg + c] += sum(dy[n, g * Cg + c].reshape(-1).tolist())
    return dx, dweight, dbias


# -- losses: per element / per sample in Python floats ------------------------------------------------
def elementwise_loss(name, x, t, beta=1.0, delta=1.0, weight=None, pos_weight=None):
    """Per-element losses (float64 array of x's shape) by PyTorch's formulas."""
    x, t = np.asarray(x, np.float64), np.asarray(t, np.float64)
    w = np.broadcast_to(1.0 if weight is None else weight, x.shape)
    pw = np.broadcast_to(1.0 if pos_weight is None else pos_weight, x.shape)
    out = np.empty(x.shape)
    for i in np.ndindex(x.shape):
        a, b = float(x[i]), float(t[i])
        d = a - b
        if name == "mse":
            v = d * d
        elif name == "l1":
            v = abs(d)
        elif name == "smooth_l1":
            v = 0.5 * d * d / beta if abs(d) < beta else abs(d) - 0.5 * beta
        elif name == "huber":
            v = 0.5 * d * d if abs(d) < delta else delta * (abs(d) - 0.5 * delta)
        elif name == "bce":
            log_a = max(math.log(a), -100.0) if a > 0 else -100.0
            log_1ma = max(math.log(1 - a), -100.0) if a < 1 else -100.0
            v = -(b * log_a + (1 - b) * log_1ma)
        else:  # bce_with_logits, textbook: -(pw * t * log sigmoid(x) + (1 - t) * log(1 - sigmoid(x)))
            log_sig = -math.log1p(math.exp(-a)) if a >= 0 else a - math.log1p(math.exp(a))
            log_1msig = log_sig - a
            v = -(float(pw[i]) * b * log_sig + (1 - b) * log_1msig)
        out[i] = v * float(w[i])
    return out


def reduce(losses, reduction, divisor=None):
    if reduction == "none":
        return losses
    total = float(np.sum(losses))
    return total if reduction == "sum" else total / (losses.size if divisor is None else divisor)


def cross_entropy_general(logits, target, weight=None, ignore_index=-100, reduction="mean", smoothing=0.0):
    """PyTorch's cross_entropy on (N, C, ...) logits: class indices (with weight / ignore_index /
    label smoothing) or class probabilities (a float target of the logits' shape)."""
    x = np.moveaxis(np.asarray(logits, np.float64), 1, -1)  # (N, ..., C)
    C = x.shape[-1]
    w = np.ones(C) if weight is None else np.asarray(weight, np.float64)
    soft = np.asarray(target).dtype.kind == "f"
    t = np.moveaxis(np.asarray(target, np.float64), 1, -1) if soft else np.asarray(target)
    losses = np.zeros(x.shape[:-1])
    wsum = 0.0
    for idx in np.ndindex(x.shape[:-1]):
        row = [float(v) for v in x[idx]]
        top = max(row)
        lse = top + math.log(sum(math.exp(v - top) for v in row))
        logp = [v - lse for v in row]
        if soft:
            tt = [(1 - smoothing) * float(p) + smoothing / C for p in t[idx]]
            losses[idx] = -sum(w[c] * tt[c] * logp[c] for c in range(C))
            continue
        y = int(t[idx])
        if y == ignore_index:
            continue
        wsum += w[y]
        losses[idx] = -(1 - smoothing) * w[y] * logp[y] - smoothing / C * sum(w[c] * logp[c] for c in range(C))
    return reduce(losses, reduction, losses.size if soft else wsum)


def nll(logp, target, weight=None, ignore_index=-100, reduction="mean"):
    """``-weight[y] * logp[n, y, ...]``, ignored entries 0 and left out of the weighted mean."""
    x = np.moveaxis(np.asarray(logp, np.float64), 1, -1)
    w = np.ones(x.shape[-1]) if weight is None else np.asarray(weight, np.float64)
    losses = np.zeros(x.shape[:-1])
    wsum = 0.0
    for idx in np.ndindex(x.shape[:-1]):
        y = int(target[idx])
        if y != ignore_index:
            losses[idx] = -w[y] * x[idx + (y,)]
            wsum += w[y]
    return reduce(losses, reduction, wsum)

def conv2d_grouped(x, weight, bias, sh, sw, ph, pw, dh=1, dw=1, groups=1):
    """Grouped convolution (depthwise when groups == C): output channel f reads the input channels of
    group f // (F / groups) only; weight (F, C / groups, kh, kw)."""
    N, C, H, W = x.shape
    F, Cg, kh, kw = weight.shape
    Fg = F // groups
    OH, OW = out_size(H, kh, sh, ph, dh), out_size(W, kw, sw, pw, dw)
    y = np.zeros((N, F, OH, OW), dtype=np.float64)
    for n in range(N):
        for f in range(F):
            g = f // Fg
            for oh in range(OH):
                for ow in range(OW):
                    s = 0.0 if bias is None else float(bias[f])
                    for c in range(Cg):
                        for i in range(kh):
                            for j in range(kw):
                                h = oh * sh - ph + i * dh
                                w = ow * sw - pw + j * dw
                                if 0 <= h < H and 0 <= w < W:
                                    s += float(x[n, g * Cg + c, h, w]) * float(weight[f, c, i, j])
                    y[n, f, oh, ow] = s
    return y


def conv_transpose2d(x, weight, bias, sh, sw, ph, pw, oph=0, opw=0, dh=1, dw=1, groups=1):
    """Transposed convolution as a scatter: input pixel (h, w) of channel ci adds
    x * weight[ci, co] to output (h*sh - ph + i*dh, w*sw - pw + j*dw); weight (Cin, Cout / groups, kh, kw);
    output (H-1)*s - 2*p + d*(k-1) + op + 1 per axis (PyTorch's rule)."""
    N, Cin, H, W = x.shape
    _, Cog, kh, kw = weight.shape
    Cig = Cin // groups
    OH = (H - 1) * sh - 2 * ph + dh * (kh - 1) + oph + 1
    OW = (W - 1) * sw - 2 * pw + dw * (kw - 1) + opw + 1
    y = np.zeros((N, Cog * groups, OH, OW), dtype=np.float64)
    for n in range(N):
        for ci in range(Cin):
            g = ci // Cig
            for h in range(H):
                for w in range(W):
                    for co in range(Cog):
                        for i in range(kh):
                            for j in range(kw):
                                oh = h * sh - ph + i * dh
                                ow = w * sw - pw + j * dw
                                if 0 <= oh < OH and 0 <= ow < OW:
                                    y[n, g * Cog + co, oh, ow] += float(x[n, ci, h, w]) * float(weight[ci, co, i, j])
    if bias is not None:
        y += np.asarray(bias, dtype=np.float64)[None, :, None, None]
    return y


def _pad_source(o, size, mode):
    """The input index that padded position ``o`` (may be < 0 or >= size) reads, None for the constant."""
    if 0 <= o < size:
        return o
    if mode == "constant":
        return None
    if mode == "replicate":
        return 0 if o < 0 else size - 1
    if mode == "circular":  # (after cropping: see pad)
        while o < 0:
            o += size
        while o >= size:
            o -= size
        return o
    # reflect: mirror at the edge pixels, the edge itself not repeated
    while not 0 <= o < size:
        o = -o if o < 0 else 2 * (size - 1) - o
    return o


def pad(x, left, right, top, bottom, mode="constant", value=0.0):
    """``torch.nn.functional.pad`` of the last two axes, one output pixel at a time. Circular mode
    crops by the negative pads first and wraps around what is left (PyTorch's order)."""
    if mode == "circular":
        H, W = x.shape[2:]
        x = x[:, :, max(0, -top):H - max(0, -bottom), max(0, -left):W - max(0, -right)]
        left, right, top, bottom = max(0, left), max(0, right), max(0, top), max(0, bottom)
    N, C, H, W = x.shape
    OH, OW = H + top + bottom, W + left + right
    y = np.empty((N, C, OH, OW), dtype=x.dtype)
    for n in range(N):
        for c in range(C):
            for oh in range(OH):
                for ow in range(OW):
                    h, w = _pad_source(oh - top, H, mode), _pad_source(ow - left, W, mode)
                    y[n, c, oh, ow] = value if h is None or w is None else x[n, c, h, w]
    return y


def pad_backward(dy, x_shape, pad_, mode):
    """The adjoint of :func:`pad`: every output gradient added to the pixel it was read from (found by
    padding an image of pixel numbers, -1 for the constant)."""
    N, C, H, W = x_shape
    source = pad(np.arange(H * W, dtype=np.float64).reshape(1, 1, H, W), *pad_, mode=mode, value=-1)[0, 0]
    dx = np.zeros(x_shape, dtype=dy.dtype)
    for n in range(N):
        for c in range(C):
            for oh in range(dy.shape[2]):
                for ow in range(dy.shape[3]):
                    k = int(source[oh, ow])
                    if k >= 0:
                        dx[n, c, k // W, k % W] += dy[n, c, oh, ow]
    return dx
