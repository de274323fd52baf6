"""minicnn: convolutional networks from scratch, every hot loop a Numba kernel."""
from . import functional, kernels, models, nn, optim, profiler
from . import distributed  # mpi4py is imported only under an MPI launcher
from ._config import get_num_threads, set_num_threads
from .functional import conv_autotune_report, set_conv_autotune
from .gradcheck import gradcheck
from .grad_mode import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from .random import manual_seed
from .serialization import load, save
from .summary import summary
from ._compile import compile_report, set_compile_notice
from .warmup import warmup

__version__ = "0.1.0"
