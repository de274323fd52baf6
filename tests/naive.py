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
    """Direct convolution (cross-correlation, as PyTorch): y[n,f,oh,ow] = b[f] + sum x * w."""
    N, C, H, W = x.shape
    F, _, kh, kw = weight.shape
    OH, OW = out_size(H, kh, sh, ph, dh), out_size(W, kw, sw, pw, dw)
    y = np.zeros((N, F, OH, OW), dtype=np.float64)
    for n in range(N):
        for f in range(F):
            for oh in range(OH):
                for ow in range(OW):
                    s = 0.0 if bias is None else float(bias[f])
                    for c in range(C):
                        for i in range(kh):
                            for j in range(kw):
                                h = oh * sh - ph + i * dh
                                w = ow * sw - pw + j * dw
                                if 0 <= h < H and 0 <= w < W:
                                    s += float(x[n, c, h, w]) * float(weight[f, c, i, j])
                    y[n, f, oh, ow] = s
    return y


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
