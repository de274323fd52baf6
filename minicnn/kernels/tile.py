"""The register-blocked micro-kernels of the convolution kernels, written in LLVM IR.

    tile(a, abase, aoff, b, b0, boff, c, cbase, nr):
        c[cbase[r] : cbase[r] + nr] = sum over t of a[abase[r] + aoff[t]] * b[b0 + boff[t] : ... + nr]
        for each of the 6 rows r, with nr = 16 or 32 lanes
    tile_add(...): the same with += (the sums are added to c)

with ``a``, ``b`` and ``c`` flat float arrays of one dtype, ``abase``, ``cbase`` (6,), ``aoff`` and
``boff`` (T,) int64 positions in them, ``b0`` an int. It is a small GEMM on addresses: the gathered
``a`` values are a (6, T) block of a matrix that is never built (a block of im2col's, for instance), the
``b`` rows a (T, nr) block, and the sums go to six nr-wide rows of ``c`` wherever they lie.
Rows may repeat in ``abase`` (a partial last block) but not overlap in ``cbase``.

Why IR: a fast small GEMM keeps a block of accumulators in vector registers for the whole sum over t,
loading each ``b`` row once and broadcasting each ``a`` value once. LLVM does not do that for Numba
loops (scalar or small-array accumulators stay in memory or scalar, measured), so this emits it
directly: per t, nr/VL vector loads, 6 broadcasts and 6*nr/VL fused multiply-adds, with VL the lanes
of the machine's vectors (AVX2: 8 float32 or 4 float64; AVX-512: 16 or 8). 6 x 16 float32
accumulators are 12 of AVX2's 16 vector registers. LeNet's conv2 forward (batch 64) ran at 95 GFLOP/s
on two cores in ``scripts/bench_kernels.py``, 155 in a tight loop (measured, AVX2). With AVX-512 they
are 6 registers, too few chains to hide the FMA latency, so 6 x 32 tiles (12 of 32 registers) exist
for wide enough blocks (``minicnn._config.TILE_WIDE_MIN``); on AVX2 they would spill and are not
used. It trusts its arguments (see the callers).

``tile`` starts its accumulators from zero rather than zeroing ``c`` for ``tile_add``: that measured
10-17% faster on conv forward passes.

Under ``NUMBA_DISABLE_JIT=1`` an intrinsic cannot run, so both are then NumPy functions.
"""

import numpy as np

from .._config import JIT_DISABLED, VECTOR_BITS

MR = 6  # rows of a tile; its lanes are 16 or 32 (the argument nr)


def tile_add_numpy(a, abase, aoff, b, b0, boff, c, cbase, nr):
    """Reference: ``c[cbase[r]:][:nr] += a[abase[r] + aoff] @ B`` with ``B[t] = b[b0 + boff[t]:][:nr]``."""
    B = b[b0 + boff[:, None] + np.arange(nr)]
    for r in range(MR):
        c[cbase[r]:cbase[r] + nr] += a[abase[r] + aoff] @ B


def tile_numpy(a, abase, aoff, b, b0, boff, c, cbase, nr):
    for r in range(MR):
        c[cbase[r]:cbase[r] + nr] = 0
    tile_add_numpy(a, abase, aoff, b, b0, boff, c, cbase, nr)


def _make_tile(add):
    from llvmlite import ir
    from numba import types
    from numba.core import cgutils
    from numba.extending import intrinsic

    @intrinsic
    def tile(typingctx, a, abase, aoff, b, b0, boff, c, cbase, nr):
        floats = (types.float32, types.float64)
        arrays = (a, abase, aoff, b, boff, c, cbase)
        if not (a.dtype in floats and b.dtype == c.dtype == a.dtype
                and abase.dtype == aoff.dtype == boff.dtype == cbase.dtype == types.int64
                and all(t.ndim == 1 and t.layout == "C" for t in arrays)
                and isinstance(b0, types.Integer) and isinstance(nr, types.Integer)):
            return None  # a typing error: callers pass exactly these
        sig = types.void(a, abase, aoff, b, b0, boff, c, cbase, nr)

        def codegen(context, builder, signature, args):
            A, AB, AO, B, _, BO, C, CB, _ = (context.make_array(t)(context, builder, v) if isinstance(t, types.Array)
                                             else None for t, v in zip(signature.args, args))
            b0 = context.cast(builder, args[4], signature.args[4], types.int64)
            nr = context.cast(builder, args[8], signature.args[8], types.int64)
            fty = context.get_value_type(a.dtype)
            bits = 32 if a.dtype == types.float32 else 64
            i32, i64 = ir.IntType(32), ir.IntType(64)

            def element(array, index):
                return builder.gep(array.data, [index])

            abases = [builder.load(element(AB, ir.Constant(i64, r))) for r in range(MR)]
            cbases = [builder.load(element(CB, ir.Constant(i64, r))) for r in range(MR)]
            T = cgutils.unpack_tuple(builder, AO.shape)[0]

            def emit(NR):  # the tile of NR lanes
                VL = min(NR, VECTOR_BITS // bits)
                vty = ir.VectorType(fty, VL)
                fma = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vty, [vty] * 3),
                                                     f"llvm.fma.v{VL}f{bits}")
                broadcast_mask = ir.Constant(ir.VectorType(i32, VL), [0] * VL)
                undef = ir.Constant(vty, ir.Undefined)

                def vector_at(array, start, v):
                    return builder.bitcast(element(array, builder.add(start, ir.Constant(i64, v * VL))),
                                           vty.as_pointer())

                # Accumulators as allocas (LLVM promotes them to registers: no address escapes).
                acc = [[cgutils.alloca_once_value(builder, builder.load(vector_at(C, cbases[r], v), align=4) if add
                                                  else ir.Constant(vty, [0.0] * VL))
                        for v in range(NR // VL)] for r in range(MR)]
                with cgutils.for_range(builder, T) as loop:
                    t = loop.index
                    o = builder.load(element(AO, t))
                    row = builder.add(b0, builder.load(element(BO, t)))
                    bv = [builder.load(vector_at(B, row, v), align=4) for v in range(NR // VL)]
                    for r in range(MR):
                        s = builder.load(element(A, builder.add(abases[r], o)))
                        s = builder.shuffle_vector(builder.insert_element(undef, s, ir.Constant(i32, 0)), undef,
                                                   broadcast_mask)
                        for v, bvec in enumerate(bv):
                            builder.store(builder.call(fma, [s, bvec, builder.load(acc[r][v])]), acc[r][v])
                for r in range(MR):
                    for v in range(NR // VL):
                        builder.store(builder.load(acc[r][v]), vector_at(C, cbases[r], v), align=4)

            with builder.if_else(builder.icmp_signed("==", nr, ir.Constant(i64, 32))) as (wide, narrow):
                with wide:
                    emit(32)
                with narrow:
                    emit(16)
            return context.get_dummy_value()

        return sig, codegen

    return tile


if JIT_DISABLED:
    tile, tile_add = tile_numpy, tile_add_numpy
else:
    tile, tile_add = _make_tile(add=False), _make_tile(add=True)
