"""Slow, obviously-correct references: nested loops over every index, as in a textbook.

Conventions the kernels must match:
- im2col rows are receptive fields in (n, oh, ow) order; columns are (c, i, j) in that order.
- max pooling pads with -inf and picks the first maximum in row-major window order; ``argmax``
  holds the flat index ``h * W + w`` into the unpadded input plane (as PyTorch's indices).
- average pooling divides by kh * kw, padded zeros included (PyTorch's count_include_pad=True).
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


def max_pool2d(x, kh, kw, sh, sw, ph, pw):
    """Returns (y, argmax)."""
    N, C, H, W = x.shape
    OH, OW = out_size(H, kh, sh, ph), out_size(W, kw, sw, pw)
    y = np.empty((N, C, OH, OW), dtype=x.dtype)
    argmax = np.empty((N, C, OH, OW), dtype=np.int64)
    for n in range(N):
        for c in range(C):
            for oh in range(OH):
                for ow in range(OW):
                    best, where = -np.inf, -1
                    for i in range(kh):
                        for j in range(kw):
                            h, w = oh * sh - ph + i, ow * sw - pw + j
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


def avg_pool2d(x, kh, kw, sh, sw, ph, pw):
    N, C, H, W = x.shape
    OH, OW = out_size(H, kh, sh, ph), out_size(W, kw, sw, pw)
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
                    y[n, c, oh, ow] = s / (kh * kw)
    return y


def avg_pool2d_backward(dy, x_shape, kh, kw, sh, sw, ph, pw):
    N, C, H, W = x_shape
    dx = np.zeros(x_shape, dtype=dy.dtype)
    for n in range(N):
        for c in range(C):
            for oh in range(dy.shape[2]):
                for ow in range(dy.shape[3]):
                    for i in range(kh):
                        for j in range(kw):
                            h, w = oh * sh - ph + i, ow * sw - pw + j
                            if 0 <= h < H and 0 <= w < W:
                                dx[n, c, h, w] += dy[n, c, oh, ow] / (kh * kw)
    return dx


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
