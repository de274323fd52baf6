"""Train LeNet-5 on MNIST, Fashion-MNIST, KMNIST or scikit-learn's bundled digits.

    minicnn-train                      # MNIST if on disk/downloadable, else digits; 10 epochs
    minicnn-train --dataset digits --epochs 5 --out runs/digits
    minicnn-train --resume runs/digits/checkpoint.npz --epochs 8
    MNIST test set only: minicnn-train --dataset mnist --data-dir DIR --train-split 8000

(``minicnn-train`` is installed by ``pip install``; ``python scripts/train.py`` in a clone is the same.)

Writes into ``--out`` after every epoch, atomically (a file there is always complete):
``metrics.json`` (configuration and one record per epoch) and ``checkpoint.npz`` (model, optimizer,
scheduler, data-loader RNG, epoch and history; ``--resume`` continues from it and ends with exactly
the metrics of an uninterrupted run). Ctrl-C keeps the checkpoint of the last completed epoch and
exits with status 130. At the end: the test set's confusion matrix, and ``curves.png`` when matplotlib
is installed, and ``confusion.png``. Bad input: a one-line message on stderr and exit status 1 (2 for
bad flags, including flags the chosen optimizer or schedule would ignore). ``--out`` must not hold
another run (``--overwrite`` replaces it, ``--resume`` continues it). A loss that becomes NaN or
infinite stops the run (exit status 1), keeping the checkpoint of the last completed epoch.

Defaults are the usual PyTorch LeNet-5 recipe: Adam, lr 1e-3, batch 64, 10 epochs (~99% on MNIST).

Data-parallel over MPI: ``mpiexec -n N python -m mpi4py scripts/train.py ...`` (``pip install -e
".[mpi]"``). ``--batch-size`` stays the global batch (each rank takes ``B / N``; B must divide by N),
only rank 0 prints and writes files, evaluation is split over the ranks, a checkpoint resumes under
any number of ranks, Ctrl-C stops every rank at the same step, an error on one rank ends the job.
"""
import argparse
import contextlib
import json
import math
import os
import signal
import sys
import time

import numpy as np

PROG = "minicnn-train"
DATASET_CHOICES = ("auto", "mnist", "fashion-mnist", "kmnist", "digits", "cifar10")
MODEL_CHOICES = ("lenet5", "resnet20", "resnet32", "resnet56", "mobilenet_small")  # minicnn.models.MODELS
OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULERS = ("none", "step", "multistep", "cosine", "onecycle")
DEFAULT_LR = {"sgd": 0.05, "adam": 1e-3, "adamw": 1e-3}
DEFAULT_WEIGHT_DECAY = {"sgd": 0.0, "adam": 0.0, "adamw": 1e-2}
EVAL_BATCH_SIZE = 1000
CHECKPOINT_FORMAT = "minicnn-train-checkpoint-v1"
RUN_FILES = ("checkpoint.npz", "metrics.json", "curves.png", "confusion.png")
# The settings that define a run: a resumed run takes them from its checkpoint, and passing one with
# another value is an error (``epochs`` may grow unless the schedule depends on it).
RUN_KEYS = ("model", "augment", "dataset", "train_split", "limit_train", "limit_test", "batch_size", "optimizer", "lr",
            "momentum", "weight_decay", "scheduler", "step_size", "gamma", "seed", "epochs")


class Fail(Exception):
    """Bad input: printed as one line on stderr, exit status 1."""


class UsageError(Fail):
    """A bad combination of flags found after parsing (e.g. against a checkpoint): exit status 2."""


class NonFiniteLoss(Exception):
    """The training loss became NaN or infinite."""


# -- command line -----------------------------------------------------------------------------------
def _number(kind, low, low_inclusive, high=None, high_inclusive=False):
    """An argparse type: ``kind`` (int or float) within bounds, else a one-line argparse error."""
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a number'}, "
                                             f"got {text!r}") from None
        if kind is float and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be finite, got {text!r}")
        too_low = value < low or (value == low and not low_inclusive)
        too_high = high is not None and (value > high or (value == high and not high_inclusive))
        if too_low or too_high:
            lower = f">= {low}" if low_inclusive else f"> {low}"
            upper = "" if high is None else f" and {'<=' if high_inclusive else '<'} {high}"
            raise argparse.ArgumentTypeError(f"must be {lower}{upper}, got {text}")
        return value
    parse.__name__ = kind.__name__  # argparse names the type in some messages
    return parse


def build_parser():
    p = argparse.ArgumentParser(prog=PROG, description="Train LeNet-5 with minicnn.")
    p.add_argument("--model", choices=MODEL_CHOICES, default="lenet5",
                   help="the network (minicnn.models); channels and classes come from the data (default: lenet5)")
    p.add_argument("--augment", action="store_true",
                   help="random crops with 4 pixels of zero padding and horizontal flips of the training images")
    p.add_argument("--dataset", choices=DATASET_CHOICES, default="auto",
                   help="auto (default): MNIST when on disk or downloadable, otherwise scikit-learn's digits")
    p.add_argument("--data-dir", default=None,
                   help="folder with the dataset's IDX files (default: data/<dataset>)")
    p.add_argument("--no-download", action="store_true", help="never download; use local files only")
    p.add_argument("--train-split", type=_number(int, 1, True), default=None, metavar="N",
                   help="train on the first N images of the TEST set and test on the rest "
                        "(needs only the t10k files)")
    p.add_argument("--limit-train", type=_number(int, 1, True), default=None, metavar="N",
                   help="use only the first N training images")
    p.add_argument("--limit-test", type=_number(int, 1, True), default=None, metavar="N",
                   help="use only the first N test images")
    p.add_argument("--epochs", type=_number(int, 1, True), default=10, help="default: 10")
    p.add_argument("--batch-size", type=_number(int, 1, True), default=64, help="default: 64")
    p.add_argument("--optimizer", choices=OPTIMIZERS, default="adam", help="default: adam")
    p.add_argument("--lr", type=_number(float, 0, False), default=None,
                   help="learning rate (default: 1e-3 for adam/adamw, 0.05 for sgd); "
                        "the peak for onecycle")
    p.add_argument("--momentum", type=_number(float, 0, True, 1, False), default=0.9,
                   help="SGD momentum (default: 0.9)")
    p.add_argument("--weight-decay", type=_number(float, 0, True), default=None,
                   help="default: 0 for sgd/adam, 0.01 for adamw")
    p.add_argument("--scheduler", choices=SCHEDULERS, default="none",
                   help="step: x gamma every --step-size epochs; multistep: x gamma at 50%% and 75%% "
                        "of the epochs; cosine: to 0 over the epochs; onecycle: per batch, peak --lr (default: none)")
    p.add_argument("--step-size", type=_number(int, 1, True), default=None,
                   help="epochs between StepLR decays (default: a third of --epochs, fixed when the run "
                        "starts: a resumed run keeps it, also with more --epochs)")
    p.add_argument("--gamma", type=_number(float, 0, False, 1, True), default=0.1,
                   help="decay factor of step and multistep (default: 0.1)")
    p.add_argument("--seed", type=_number(int, 0, True), default=0, help="default: 0")
    p.add_argument("--threads", type=_number(int, 1, True), default=None,
                   help=f"threads for the kernels, 1 to {_thread_limit()} (default: the cores other programs "
                        "leave free, from the threads running now; a resumed run: its own)")
    p.add_argument("--out", default=None, help="output folder (default: runs/<dataset>-<time>, or the "
                                               "checkpoint's folder with --resume)")
    p.add_argument("--overwrite", action="store_true", help="replace the run already in --out")
    p.add_argument("--resume", default=None, metavar="PATH", help="continue from this checkpoint.npz")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--no-plot", action="store_true", help="do not write curves.png")
    return p


def parse_args(argv):
    parser = build_parser()
    args = parser.parse_args(argv)
    # Which flags were given explicitly: argparse leaves attributes that the namespace already has
    # alone unless their flag is given, so parse again into a namespace of sentinels.
    unset = object()
    probe = parser.parse_args(argv, argparse.Namespace(**{name: unset for name in vars(args)}))
    args.given = {name for name, value in vars(probe).items() if value is not unset}
    if args.threads is not None and args.threads > _thread_limit():
        parser.error(f"argument --threads: must be <= {_thread_limit()} (NUMBA_NUM_THREADS), got {args.threads}")
    if args.resume is None:
        try:
            check_used_flags(args.given, vars(args))
        except UsageError as e:
            parser.error(str(e))
    return args


def _thread_limit():
    import numba

    return numba.config.NUMBA_NUM_THREADS


def check_used_flags(given, config):
    """``UsageError`` for a flag that the configured optimizer or schedule would ignore."""
    if "momentum" in given and config["optimizer"] != "sgd":
        raise UsageError(f"--momentum is only used by --optimizer sgd, not {config['optimizer']}")
    if "step_size" in given and config["scheduler"] != "step":
        raise UsageError(f"--step-size is only used by --scheduler step, not {config['scheduler']}")
    if "gamma" in given and config["scheduler"] not in ("step", "multistep"):
        raise UsageError(f"--gamma is only used by --scheduler step or multistep, not {config['scheduler']}")


def schedule_spans_the_epochs(config):
    """Whether the learning-rate schedule spans the run's epochs (cosine, onecycle, multistep), so that
    a resumed run cannot change their number without leaving the schedule of the run it continues.

    StepLR does not: its step size is fixed when the run starts (``--step-size``, or a third of the
    first ``--epochs``, recorded in the configuration by ``resolve_defaults``), and a run whose epochs
    grow on resume keeps decaying every ``step_size`` epochs, as an uninterrupted run with that
    ``--step-size`` and the new ``--epochs`` does."""
    return config["scheduler"] in ("cosine", "onecycle", "multistep") or (
        config["scheduler"] == "step" and config["step_size"] is None)


def step_size_of(config):
    """StepLR's step size: ``--step-size``, or a third of the epochs."""
    return config["step_size"] if config["step_size"] is not None else max(1, config["epochs"] // 3)


def resolve_defaults(config):
    """Fill the defaults that depend on the optimizer (lr, weight decay) and, for ``--scheduler step``
    without ``--step-size``, the step size derived from this (first) run's epochs: recorded in the
    configuration, so that a resumed run keeps it whatever its ``--epochs`` (``step_size_of`` of the
    original run, never of the resumed one)."""
    if config["lr"] is None:
        config["lr"] = DEFAULT_LR[config["optimizer"]]
    if config["weight_decay"] is None:
        config["weight_decay"] = DEFAULT_WEIGHT_DECAY[config["optimizer"]]
    if config["scheduler"] == "step" and config["step_size"] is None:
        config["step_size"] = step_size_of(config)
    return config


# -- files ------------------------------------------------------------------------------------------
def make_folders(path):
    """``os.makedirs(path)``; returns the folders it created, innermost first (for ``remove_empty``)."""
    created, folder = [], os.path.abspath(path)
    while not os.path.exists(folder):
        created.append(folder)
        folder = os.path.dirname(folder)
    os.makedirs(path, exist_ok=True)
    return created


def remove_empty(folders):
    """Remove the folders ``make_folders`` created, as long as they are empty."""
    for folder in folders:
        try:
            os.rmdir(folder)
        except OSError:
            break


def holds_a_run(folder):
    return any(os.path.exists(os.path.join(folder, name)) for name in RUN_FILES)


# -- data -------------------------------------------------------------------------------------------
def load_data(config, data_dir, download):
    """``(info, (train_x, train_y), (test_x, test_y))`` for the configured dataset; ``info`` has the
    dataset's name, title, normalisation, class names and the first line to print.

    ``auto``: MNIST from ``data_dir`` (default ``data/mnist``), downloaded into it if missing; only when
    no folder was given, scikit-learn's digits if that fails (an explicitly given folder is used or the
    run fails)."""
    from minicnn import data

    name = config["dataset"]
    split = "test" if config["train_split"] is not None else "all"
    note = ""
    if name == "auto":
        folder = data_dir or data.default_root("mnist")
        bases = [b for s in (("test",) if split == "test" else ("train", "test")) for b in data.SPLIT_FILES[s]]
        on_disk = all(os.path.isfile(os.path.join(folder, b)) or os.path.isfile(os.path.join(folder, b + ".gz"))
                      for b in bases)
        try:
            parts = load_idx(data.DATASETS["mnist"], data_dir, download, split)
            name = "mnist"
            note = "" if on_disk else " (downloaded)"
        except data.DatasetNotFoundError:
            if data_dir is not None:  # the folder the user named: use it or fail, never something else
                raise
            why = "could not be downloaded" if download else "--no-download"
            note = f" (MNIST is not in {folder} and {why}; --dataset mnist says what to put where)"
            name = "digits"
    if name == "cifar10":
        from minicnn.data import cifar

        parts = cifar.load_cifar10(data_dir, download=download, split=split)
        title, mean, std, classes = "CIFAR-10", cifar.CIFAR10_MEAN, cifar.CIFAR10_STD, cifar.CIFAR10_CLASSES
        source = os.path.abspath(data_dir or os.path.join("data", "cifar10"))
    elif name == "digits":
        parts = data.load_digits(split=split)
        title, mean, std = "digits", data.DIGITS_MEAN, data.DIGITS_STD
        classes = tuple(str(d) for d in range(10))
        source = "scikit-learn's bundled 8x8 digits scaled to 28x28"
    else:
        spec = data.DATASETS[name]
        if config["dataset"] != "auto":
            parts = load_idx(spec, data_dir, download, split)
        title, mean, std, classes = spec.title, spec.mean, spec.std, spec.classes
        source = os.path.abspath(data_dir or data.default_root(name))
    if config["train_split"] is not None:
        images, labels = parts
        n = config["train_split"]
        if n >= len(images):
            raise Fail(f"--train-split {n} must be smaller than the test set's {len(images)} images")
        train, test = (images[:n], labels[:n]), (images[n:], labels[n:])
        source += f", test set split {n}/{len(images) - n}"
    else:
        train, test = parts
    if config["limit_train"] is not None:
        train = (train[0][:config["limit_train"]], train[1][:config["limit_train"]])
    if config["limit_test"] is not None:
        test = (test[0][:config["limit_test"]], test[1][:config["limit_test"]])
    line = (f"dataset: {title} ({source}): {len(train[1])} train, {len(test[1])} test images{note}")
    info = {"name": name, "title": title, "mean": mean, "std": std, "classes": classes, "line": line}
    return info, train, test


def load_idx(spec, data_dir, download, split):
    """``load_idx_dataset``; when the training files are missing but the test files are there, the
    error says that ``--train-split`` trains on those."""
    from minicnn import data

    try:
        return data.load_idx_dataset(spec, data_dir, download=download, split=split)
    except data.DatasetNotFoundError as e:
        folder = data_dir or data.default_root(spec.name)
        if split == "all" and all(any(os.path.isfile(os.path.join(folder, b + gz)) for gz in ("", ".gz"))
                                  for b in data.SPLIT_FILES["test"]):
            raise data.DatasetNotFoundError(f"{e}; {folder} holds the test files only: --train-split N trains "
                                            "on the first N test images and tests on the rest") from None
        raise


# -- model, optimizer, schedule ---------------------------------------------------------------------
def build(config, steps_per_epoch, image_shape, num_classes):
    """``(model, optimizer, scheduler)``; the model ``config["model"]`` for images of ``image_shape``
    (C, H, W) and ``num_classes`` classes."""
    import minicnn
    from minicnn import optim

    minicnn.manual_seed(config["seed"])
    if config["model"] == "lenet5" and image_shape[1:] != (28, 28):
        raise Fail(f"--model lenet5 takes 28x28 images, {config['dataset']} has {image_shape[1]}x{image_shape[2]}: "
                   f"use --model resnet20 or mobilenet_small")
    model = minicnn.models.MODELS[config["model"]](num_classes=num_classes, in_channels=image_shape[0],
                                                   dtype=np.float32, rng=config["seed"])
    params = model.parameters()
    lr, wd = config["lr"], config["weight_decay"]
    if config["optimizer"] == "sgd":
        optimizer = optim.SGD(params, lr=lr, momentum=config["momentum"], weight_decay=wd)
    elif config["optimizer"] == "adam":
        optimizer = optim.Adam(params, lr=lr, weight_decay=wd)
    else:
        optimizer = optim.AdamW(params, lr=lr, weight_decay=wd)
    epochs, kind = config["epochs"], config["scheduler"]
    if kind == "step":
        scheduler = optim.StepLR(optimizer, step_size=step_size_of(config), gamma=config["gamma"])
    elif kind == "multistep":
        milestones = sorted({max(1, round(epochs * 0.5)), max(1, round(epochs * 0.75))})
        scheduler = optim.MultiStepLR(optimizer, milestones=milestones, gamma=config["gamma"])
    elif kind == "cosine":
        scheduler = optim.CosineAnnealingLR(optimizer, T_max=epochs)
    elif kind == "onecycle":
        scheduler = optim.OneCycleLR(optimizer, max_lr=lr, epochs=epochs, steps_per_epoch=steps_per_epoch)
    else:
        scheduler = None
    return model, optimizer, scheduler


# -- training ---------------------------------------------------------------------------------------
def train_epoch(model, criterion, optimizer, scheduler_per_batch, loader, desc, progress,
                interrupted=lambda: False):
    """One pass over ``loader``; returns (mean loss, accuracy) over the training images seen (by all
    ranks); ``interrupted()`` after each step (see ``minicnn.distributed.deferred_interrupts``).
    ``NonFiniteLoss`` (before the step that would spread it into the weights) if a loss is NaN or inf."""
    from tqdm import tqdm

    from minicnn import distributed as dist

    model.train()
    loss_sum, correct, seen = 0.0, 0, 0
    with tqdm(total=len(loader), desc=desc, unit="batch", leave=False, file=sys.stderr,
              disable=None if progress else True, dynamic_ncols=True) as bar:
        for i, (x, y) in enumerate(loader):
            logits = model(x)
            if not np.isfinite(logits).all():  # (the loss refuses such logits)
                raise NonFiniteLoss(f"the network's outputs became NaN or infinite in batch {i + 1} of {len(loader)}")
            loss = criterion(logits, y)
            if not math.isfinite(loss):
                raise NonFiniteLoss(f"the training loss became {loss} in batch {i + 1} of {len(loader)}")
            optimizer.zero_grad()
            model.backward(criterion.backward())
            optimizer.step()
            if scheduler_per_batch is not None:
                scheduler_per_batch.step()
            loss_sum += loss * len(y)
            correct += int((logits.argmax(axis=1) == y).sum())
            seen += len(y)
            bar.update(1)
            if i % 10 == 0 or i == len(loader) - 1:
                bar.set_postfix(loss=f"{loss_sum / seen:.4f}", acc=f"{100 * correct / seen:.2f}%",
                                refresh=False)
            if interrupted():
                raise KeyboardInterrupt
    loss_sum, correct, seen = dist.all_reduce(np.array([loss_sum, correct, seen], np.float64))  # MPI
    return loss_sum / seen, correct / seen


def evaluate(model, criterion, loader):
    """(mean loss, accuracy, predictions) over every image of ``loader`` (in order); under MPI each
    rank's loader holds its consecutive share of the test set, and the results are those of all."""
    import minicnn
    from minicnn import distributed as dist

    model.eval()
    loss_sum, predictions = 0.0, []
    for x, y in loader:
        with minicnn.no_grad():
            logits = model(x)
        loss_sum += criterion(logits, y) * len(y)
        predictions.append(logits.argmax(axis=1))
    predictions = np.concatenate(predictions) if predictions else np.zeros(0, np.int64)
    # MPI: sums over the ranks, predictions in rank order (= test-set order); no-ops for 1 rank.
    totals = dist.all_reduce(np.array([loss_sum, (predictions == loader.labels).sum(), len(predictions)],
                                      np.float64))
    predictions = np.concatenate(dist.all_gather_object(predictions))
    return totals[0] / totals[2], float(totals[1] / totals[2]), predictions


def make_checkpoint(config, epoch, history, model, optimizer, scheduler, loader):
    import minicnn
    from minicnn.random import default_rng, get_rng_state

    return {
        "format": CHECKPOINT_FORMAT,
        "architecture": config["model"],
        "config": dict(config),
        "history": [dict(r) for r in history],
        "epoch": int(epoch),
        "model": dict(model.state_dict()),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict() if scheduler is not None else {},
        "loader": loader.state_dict(),
        "global_rng": get_rng_state(default_rng()),
        "threads": minicnn.get_num_threads(),  # a resumed run uses them too (results depend on them)
    }


def read_checkpoint(path):
    """``(checkpoint dict, config, history, epoch)``; ``Fail`` for anything unreadable or foreign."""
    import minicnn

    if not os.path.isfile(path):
        raise Fail(f"checkpoint {path} does not exist")
    try:
        ckpt = minicnn.load(path)
    except Exception as e:  # any unreadable file: corrupt zip, not an .npz, truncated, ...
        raise Fail(f"cannot read checkpoint {path}: {type(e).__name__}: {e}") from None
    keys = ("format", "architecture", "config", "history", "epoch", "model", "optimizer", "scheduler",
            "loader", "global_rng")
    if not (isinstance(ckpt, dict) and all(k in ckpt for k in keys) and isinstance(ckpt["format"], str)
            and ckpt["format"] == CHECKPOINT_FORMAT):
        raise Fail(f"{path} is not a checkpoint written by {PROG}")
    architecture, config, history, epoch = (ckpt[k] for k in ("architecture", "config", "history", "epoch"))
    if isinstance(config, dict) and architecture == "LeNet5":  # written before --model and --augment
        architecture = "lenet5"
        config.setdefault("model", architecture)
        config.setdefault("augment", False)
    if not isinstance(architecture, str) or architecture not in MODEL_CHOICES:
        raise Fail(f"checkpoint {path} is of a {architecture!r}, not one of the models this script trains")
    if not (isinstance(config, dict) and all(k in config for k in RUN_KEYS) and isinstance(epoch, int)
            and isinstance(history, list) and len(history) == epoch):
        raise Fail(f"checkpoint {path} is inconsistent (configuration or history damaged)")
    return ckpt, config, history, epoch


def merge_resume_config(args, saved):
    """The saved run configuration, checked against the flags given explicitly on this command line."""
    config = dict(saved)
    if config["scheduler"] == "step" and config["step_size"] is None:
        # A checkpoint written before the derived step size was recorded: a third of ITS epochs (such a
        # run could not change its epochs on resume, so they are the original run's).
        config["step_size"] = step_size_of(config)
    check_used_flags(args.given - {"optimizer", "scheduler"}, saved)  # against the run's own choices
    for key in RUN_KEYS:
        if key not in args.given or key == "epochs":
            continue
        value = getattr(args, key)
        if key == "dataset" and value == "auto":
            continue
        if key in ("lr", "weight_decay") and value is not None and math.isclose(value, config[key]):
            continue
        if value != config[key]:
            flag = "--" + key.replace("_", "-")
            raise Fail(f"{flag} {value} differs from the checkpoint's {config[key]}; a resumed run keeps "
                       f"its settings (omit {flag})")
    if "epochs" in args.given and args.epochs != saved["epochs"]:
        if schedule_spans_the_epochs(config):
            raise Fail(f"--epochs cannot change on resume with --scheduler {saved['scheduler']} "
                       f"(its schedule spans the {saved['epochs']} epochs of the original run)")
        config["epochs"] = args.epochs
    return config


def print_confusion_matrix(labels, predictions, classes):
    """Print the confusion matrix (rows: true class, named when the classes have names; columns:
    predicted class index) and return it."""
    from sklearn.metrics import confusion_matrix

    matrix = confusion_matrix(labels, predictions, labels=np.arange(len(classes)))
    width = max(4, len(str(matrix.max())) + 1)
    named = any(name != str(c) for c, name in enumerate(classes))
    rows = [f"{c} {name}" if named else str(c) for c, name in enumerate(classes)]
    first = max(4, max(len(r) for r in rows))
    print("confusion matrix (rows: true class, columns: predicted class):")
    print(" " * (first + 2) + "".join(f"{c:>{width}}" for c in range(len(classes))))
    for row, counts in zip(rows, matrix):
        print(f"{row:>{first}}  " + "".join(f"{v:>{width}}" for v in counts))
    return matrix


def _pyplot():
    """matplotlib's pyplot on the Agg backend, or None when matplotlib is not installed."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


def _save_figure(plt, fig, path):
    from minicnn._io import atomic_write

    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=100))
    plt.close(fig)


def save_curves(path, history, title):
    """``curves.png``: loss and accuracy per epoch (ticks on whole epochs); False without matplotlib."""
    plt = _pyplot()
    if plt is None:
        return False
    from matplotlib.ticker import MaxNLocator

    epochs = [r["epoch"] for r in history]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    ax_loss.plot(epochs, [r["train_loss"] for r in history], "o-", label="train")
    ax_loss.plot(epochs, [r["test_loss"] for r in history], "o-", label="test")
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy loss", title=f"{title}: loss")
    ax_acc.plot(epochs, [100 * r["train_accuracy"] for r in history], "o-", label="train")
    ax_acc.plot(epochs, [100 * r["test_accuracy"] for r in history], "o-", label="test")
    ax_acc.set(xlabel="epoch", ylabel="accuracy (%)", title=f"{title}: accuracy")
    for ax in (ax_loss, ax_acc):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    _save_figure(plt, fig, path)
    return True


def save_confusion(path, matrix, classes, title):
    """``confusion.png``: the confusion matrix normalised per true class (each row sums to 1, shown in
    %); False without matplotlib."""
    plt = _pyplot()
    if plt is None:
        return False
    totals = matrix.sum(axis=1, keepdims=True)
    share = np.divide(matrix, totals, out=np.zeros(matrix.shape), where=totals > 0)
    k = len(classes)
    fig, ax = plt.subplots(figsize=(1.6 + 0.6 * k, 1.2 + 0.6 * k))
    image = ax.imshow(100 * share, cmap="Blues", vmin=0, vmax=100)
    for i in range(k):
        for j in range(k):
            if matrix[i, j]:
                ax.text(j, i, f"{100 * share[i, j]:.0f}", ha="center", va="center", fontsize=8,
                        color="white" if share[i, j] > 0.5 else "black")
    ax.set_xticks(range(k), classes, rotation=45 if any(len(c) > 2 for c in classes) else 0, ha="right"
                  if any(len(c) > 2 for c in classes) else "center")
    ax.set_yticks(range(k), classes)
    ax.set(xlabel="predicted class", ylabel="true class", title=f"{title}: test set, % of each true class")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    fig.tight_layout()
    _save_figure(plt, fig, path)
    return True


def main(argv=None):
    """The ``minicnn-train`` command: returns the exit status (0, 1 bad input or non-finite loss,
    2 bad flags, 130 interrupted)."""
    args = parse_args(argv)
    created = []  # the output folders this run made: removed again if it ends before any epoch is saved
    try:
        return run(args, created)
    except UsageError as e:
        build_parser().print_usage(sys.stderr)
        print(f"{PROG}: error: {e}", file=sys.stderr)
        _abort_other_ranks(2)
        return 2
    except Fail as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        _abort_other_ranks(1)
        return 1
    except KeyboardInterrupt:  # before training started (loading, compiling): nothing written yet
        print(f"\n{PROG}: interrupted before the first epoch; nothing saved", file=sys.stderr)
        _abort_other_ranks(130)
        return 130
    finally:
        remove_empty(created)


def _abort_other_ranks(code):
    """MPI: the other ranks may be waiting in a collective for this one: end the whole job."""
    from minicnn import distributed as dist

    if dist.get_world_size() > 1:
        dist.abort(code)


def setup(args, created):
    """Everything before the first epoch, checked before OUT is touched: the configuration (from the
    flags or the checkpoint), the data, loaders, model, optimizer, scheduler, the restored state of a
    resumed run, and the output folder. Returns a dict of them (``fit`` and ``report`` take it)."""
    import minicnn
    from minicnn import data, nn
    from minicnn import distributed as dist
    from minicnn.random import default_rng, set_rng_state

    rank, world = dist.get_rank(), dist.get_world_size()
    resume = None
    if args.resume is not None:
        resume = read_checkpoint(args.resume)
        config = merge_resume_config(args, resume[1])
        if args.data_dir is None:  # the folder the run started from, unless told otherwise
            args.data_dir = resume[1].get("data_dir")
    else:
        config = resolve_defaults({key: getattr(args, key) for key in RUN_KEYS})
    config["data_dir"] = os.path.abspath(args.data_dir) if args.data_dir is not None else None
    out = args.out if args.out is not None else (
        os.path.dirname(os.path.abspath(args.resume)) if args.resume else None)  # else: named after the data
    continues = resume is not None and os.path.abspath(out) == os.path.dirname(os.path.abspath(args.resume))
    if out is not None and os.path.isdir(out) and holds_a_run(out) and not continues and not args.overwrite:
        raise Fail(f"{out} holds another run ({', '.join(n for n in RUN_FILES if os.path.exists(os.path.join(out, n)))}); "
                   "pass --overwrite to replace it, --resume CHECKPOINT to continue it, or another --out")
    threads_note = ""
    if args.threads is not None:
        threads = args.threads  # in range: parse_args checked it
    elif resume is not None and resume[0].get("threads"):  # the same threads give the same results
        threads = min(int(resume[0]["threads"]), _thread_limit())
    elif world > 1:  # MPI: the machine's cores shared by its ranks
        threads = max(1, _thread_limit() // dist.get_local_world_size())
    else:
        from minicnn._config import busy_cores, load_aware_threads

        threads = load_aware_threads()
        if threads < _thread_limit():
            threads_note = (f" ({busy_cores()} other program(s) running: the other cores are busy; "
                            f"--threads {_thread_limit()} to use them anyway)")
    minicnn.set_num_threads(threads)
    if config["batch_size"] % world:
        raise Fail(f"--batch-size {config['batch_size']} is not divisible by the {world} MPI ranks: each rank "
                   f"takes an equal share of the global batch")
    try:
        info, (train_x, train_y), (test_x, test_y) = load_data(config, args.data_dir, not args.no_download)
    except (data.DatasetNotFoundError, ValueError, OSError) as e:  # missing, corrupt, truncated or foreign
        raise Fail(str(e)) from None
    config["dataset"] = info["name"]  # auto resolved; a resume continues on the same dataset
    if resume is not None and resume[1]["dataset"] != info["name"]:
        raise Fail(f"the checkpoint was trained on {resume[1]['dataset']}, but {info['name']} was loaded")

    if out is None:
        out = os.path.join("runs", f"{info['name']}-{time.strftime('%Y%m%d-%H%M%S')}")

    # One seeded shuffle per epoch whatever the number of ranks (each takes every world-th index), so
    # that a checkpoint resumes under any number of ranks; each rank tests a consecutive share.
    try:
        sampler = dist.DistributedSampler(len(train_y), seed=config["seed"])
    except ValueError as e:
        raise Fail(str(e)) from None
    augment = {}
    if config["augment"]:  # torchvision's RandomCrop(size, padding=4) and RandomHorizontalFlip()
        augment = dict(random_crop=(train_x.shape[-2:], 4), horizontal_flip=0.5)
    train_loader = data.DataLoader(train_x, train_y, config["batch_size"] // world, sampler=sampler,
                                   mean=info["mean"], std=info["std"], **augment)
    lo, hi = rank * len(test_y) // world, (rank + 1) * len(test_y) // world
    test_loader = data.DataLoader(test_x[lo:hi], test_y[lo:hi], EVAL_BATCH_SIZE, mean=info["mean"], std=info["std"])
    model, optimizer, scheduler = build(config, len(train_loader), train_loader.images.shape[1:], len(info["classes"]))
    history, start_epoch, report_only = [], 0, False
    if resume is not None:
        ckpt, _, history, start_epoch = resume
        if start_epoch >= config["epochs"]:
            # All epochs ran: a run stopped before its report (killed between the last checkpoint and
            # the confusion matrix) only finishes that; a finished one has nothing left to do.
            report_only = "confusion_matrix" not in _read_metrics(os.path.join(out, "metrics.json"))
            if not report_only:
                raise Fail(f"the checkpoint already has {start_epoch} epochs and its report; pass --epochs N "
                           f"with N > {start_epoch} to train further")
        try:
            model.load_state_dict(ckpt["model"])
        except (TypeError, ValueError) as e:
            raise Fail(f"checkpoint {args.resume} does not fit {config['model']}: {e}") from None
        try:
            optimizer.load_state_dict(ckpt["optimizer"])
            if scheduler is not None:
                scheduler.load_state_dict(ckpt["scheduler"])
            train_loader.load_state_dict(ckpt["loader"])
            set_rng_state(default_rng(), ckpt["global_rng"])
        except (TypeError, ValueError, KeyError) as e:
            raise Fail(f"checkpoint {args.resume} has a damaged optimizer/scheduler/loader state: {e}") from None
    if rank == 0:  # MPI: rank 0 writes
        try:
            created.extend(make_folders(out))
        except OSError as e:
            raise Fail(f"cannot create output folder {out}: {e}") from None
        from minicnn._io import remove_stale_temporaries

        remove_stale_temporaries(out)  # what a killed run (SIGKILL) may have left
    if args.overwrite and not continues and rank == 0:
        for name in RUN_FILES:
            if os.path.exists(os.path.join(out, name)):
                os.remove(os.path.join(out, name))
    return {"config": config, "info": info, "out": out, "train_loader": train_loader, "test_loader": test_loader,
            "sampler": sampler, "rank": rank, "test_labels": test_y, "world": world, "n_train": int(len(train_y)), "n_test": int(len(test_y)),
            # MPI: rank 0's weights on every rank, gradients averaged after each backward (pass-through for 1 rank).
            "trainer": dist.DistributedDataParallel(model),
            "model": model, "optimizer": optimizer, "scheduler": scheduler, "criterion": nn.CrossEntropyLoss(),
            "history": history, "start_epoch": start_epoch, "resume": args.resume, "threads_note": threads_note,
            "report_only": report_only,
            "checkpoint_path": os.path.join(out, "checkpoint.npz"), "metrics_path": os.path.join(out, "metrics.json")}


def run(args, created):
    """``setup``, the warm-up, ``fit``, ``report``; returns the exit status."""
    import minicnn
    from minicnn import distributed as dist

    rank, world = dist.init()  # (0, 1) unless started by mpiexec
    dist.install_excepthook()  # MPI: an unexpected error on one rank ends the job (also without -m mpi4py)
    if rank > 0:  # MPI: rank 0 prints (errors still reach stderr from every rank)
        sys.stdout = open(os.devnull, "w")
    s = setup(args, created)
    config, info, model = s["config"], s["info"], s["model"]
    print(info["line"], flush=True)
    print(f"model: {config['model']}{' (augmented data)' if config['augment'] else ''}, {sum(p.data.size for p in model.parameters())} parameters; "
          f"{config['optimizer']} lr {config['lr']:g}, weight decay {config['weight_decay']:g}, "
          f"scheduler {describe_schedule(config)}, batch {config['batch_size']}, seed {config['seed']}, "
          f"threads {minicnn.get_num_threads()}{s['threads_note']}; output in {s['out']}", flush=True)
    if s["report_only"]:
        return finish_report(s, args)
    if s["resume"] is not None:
        print(f"resuming from {s['resume']} after epoch {s['start_epoch']}", flush=True)
    # The training step's kernels now; the evaluation's before the first evaluation (fit), so that the
    # first batch comes as early as possible.
    compile_seconds = minicnn.warmup(model, (s["train_loader"].batch_size,) + s["train_loader"].images.shape[1:],
                                     s["optimizer"], s["criterion"], eval=False,
                                     progress=not args.no_progress and rank == 0,
                                     helper=None if dist.get_local_world_size() == 1 else False,
                                     also=[s["train_loader"].warmup])
    print(f"compile (warm-up): {compile_seconds:.1f} s", flush=True)
    s["metrics"] = {"config": config, "run": run_info(s), "compile_seconds": compile_seconds,
                    "epochs": s["history"]}
    status = fit(s, args)
    if status:
        return status
    try:
        if rank == 0:
            report(s, args.no_plot)
    except KeyboardInterrupt:
        print(f"\ninterrupted after the last epoch: {s['checkpoint_path']} and {s['metrics_path']} are complete",
              file=sys.stderr)
        return 130
    return 0


def finish_report(s, args):
    """The report of a run whose epochs all ran but whose report did not: the checkpoint's model
    predicts the test set as its last epoch did (the same weights and statistics)."""
    import minicnn

    rank, test_loader = s["rank"], s["test_loader"]
    print(f"the checkpoint has all {s['start_epoch']} epochs; writing the run's report (pass --epochs N with "
          f"N > {s['start_epoch']} to train further)", flush=True)
    minicnn.warmup(s["model"], (EVAL_BATCH_SIZE,) + test_loader.images.shape[1:], loss=s["criterion"], train=False,
                   progress=not args.no_progress and rank == 0)
    s["predictions"] = evaluate(s["trainer"], s["criterion"], test_loader)[2]
    s["metrics"] = _read_metrics(s["metrics_path"]) or {"config": s["config"], "run": run_info(s),
                                                        "epochs": s["history"]}
    s["metrics"]["epochs"] = s["history"]
    if rank == 0:
        report(s, args.no_plot)
    return 0


def _read_metrics(path):
    """The metrics.json at ``path`` as a dict, or {} if there is none or it does not parse."""
    try:
        with open(path) as f:
            metrics = json.load(f)
    except (OSError, ValueError):
        return {}
    return metrics if isinstance(metrics, dict) else {}


def describe_schedule(config):
    if config["scheduler"] == "step":
        return f"step (every {step_size_of(config)} epochs x {config['gamma']:g})"
    if config["scheduler"] == "multistep":
        return f"multistep (x {config['gamma']:g})"
    return config["scheduler"]


def run_info(s):
    import minicnn

    return {"threads": minicnn.get_num_threads(), "dataset_title": s["info"]["title"],
            "train_images": s["n_train"], "test_images": s["n_test"],
            "normalize": [s["info"]["mean"], s["info"]["std"]],
            # StepLR's step size as the scheduler uses it (the configuration's; None without --scheduler step)
            "step_size": s["config"]["step_size"] if s["config"]["scheduler"] == "step" else None,
            "numpy": np.__version__, "minicnn": minicnn.__version__, "mpi_ranks": s["world"]}


def save_run(s, saved):
    """Write the metrics and the checkpoint of ``saved`` = (checkpoint dict, metrics dict), each
    atomically (MPI: rank 0 only). Metrics first: a run killed between the two writes has its
    checkpoint one epoch behind, and ``--resume`` trains that epoch again and rewrites both (the other
    order left a last epoch's checkpoint that no resume would complete the metrics of)."""
    import minicnn
    from minicnn._io import write_json

    if s["rank"] > 0:
        return
    write_json(s["metrics_path"], saved[1])
    minicnn.save(saved[0], s["checkpoint_path"])


def fit(s, args):
    """The epochs from ``start_epoch + 1`` to the configured number, saving after each; returns None when
    all ran, else the exit status (130 interrupted, 1 non-finite loss)."""
    import minicnn
    from minicnn import distributed as dist

    config, model, optimizer, scheduler = s["config"], s["model"], s["optimizer"], s["scheduler"]
    trainer, rank = s["trainer"], s["rank"]
    train_loader, test_loader, criterion, metrics = s["train_loader"], s["test_loader"], s["criterion"], s["metrics"]
    batch_scheduler = scheduler if config["scheduler"] == "onecycle" else None
    epoch_scheduler = scheduler if batch_scheduler is None else None
    history = s["history"]
    last_saved = None  # the checkpoint and metrics of the last completed epoch
    epoch = s["start_epoch"]
    n_train = s["n_train"]
    stack = contextlib.ExitStack()
    interrupted = stack.enter_context(dist.deferred_interrupts())  # MPI: Ctrl-C stops all ranks at one step
    try:
        for epoch in range(s["start_epoch"] + 1, config["epochs"] + 1):
            lr = optimizer.param_groups[0]["lr"]
            s["sampler"].set_epoch(epoch)
            start = time.perf_counter()
            train_loss, train_acc = train_epoch(trainer, criterion, optimizer, batch_scheduler, train_loader,
                                                f"epoch {epoch}/{config['epochs']}",
                                                not args.no_progress and rank == 0, interrupted)
            train_seconds = time.perf_counter() - start
            if epoch == s["start_epoch"] + 1:  # the evaluation's kernels, timed apart from the epoch
                metrics["compile_seconds"] += minicnn.warmup(model, (EVAL_BATCH_SIZE,) + test_loader.images.shape[1:],
                                                             loss=criterion, train=False,
                                                             progress=not args.no_progress and rank == 0)
            start = time.perf_counter()
            dist.sync_batchnorm_stats(model)  # MPI: the same running statistics on every rank
            test_loss, test_acc, predictions = evaluate(trainer, criterion, test_loader)
            test_seconds = time.perf_counter() - start
            if interrupted():
                raise KeyboardInterrupt
            if epoch_scheduler is not None:
                epoch_scheduler.step()
            record = {"epoch": epoch, "lr": lr, "train_loss": train_loss, "train_accuracy": train_acc,
                      "test_loss": test_loss, "test_accuracy": test_acc, "train_seconds": train_seconds,
                      "images_per_second": n_train / train_seconds, "test_seconds": test_seconds}
            history = history + [record]
            metrics["epochs"] = history
            last_saved = (make_checkpoint(config, epoch, history, model, optimizer, scheduler, train_loader),
                          dict(metrics))
            save_run(s, last_saved)
            print(f"epoch {epoch}/{config['epochs']}: train loss {train_loss:.4f} acc {100 * train_acc:.2f}% | "
                  f"test loss {test_loss:.4f} acc {100 * test_acc:.2f}% | {train_seconds:.1f} s, "
                  f"{n_train / train_seconds:.0f} img/s (test {test_seconds:.1f} s) | lr {lr:.3g}",
                  flush=True)
    except NonFiniteLoss as e:
        kept = (f"the checkpoint of epoch {epoch - 1} in {s['checkpoint_path']} is kept"
                if epoch - 1 > 0 else "no epoch completed, nothing saved")
        print(f"{PROG}: error: epoch {epoch}: {e}; training stopped ({kept}). A smaller --lr usually helps.",
              file=sys.stderr)
        _abort_other_ranks(1)
        return 1
    except KeyboardInterrupt:
        try:
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not break the save
        except ValueError:  # not the main thread
            pass
        if rank > 0:  # MPI: rank 0 saves and reports
            pass
        elif last_saved is None:
            print(f"\ninterrupted during epoch {epoch}: no epoch completed, nothing saved", file=sys.stderr)
        else:
            # Rewrite the last completed epoch's files: an interrupt may have hit their first write.
            save_run(s, last_saved)
            done = last_saved[0]["epoch"]
            print(f"\ninterrupted during epoch {epoch}: checkpoint of epoch {done} in {s['checkpoint_path']}; "
                  f"continue with --resume {s['checkpoint_path']}", file=sys.stderr)
        dist.barrier()  # MPI: exit once rank 0 has saved (the first rank to exit with 130 ends the job)
        return 130
    finally:
        stack.close()
    s["history"], s["predictions"] = history, predictions
    return None


def report(s, no_plot):
    """The confusion matrix (printed, added to metrics.json, and confusion.png), the final accuracy,
    curves.png."""
    from minicnn._io import write_json

    metrics, history, info, out = s["metrics"], s["history"], s["info"], s["out"]
    matrix = print_confusion_matrix(s["test_labels"], s["predictions"], info["classes"])
    metrics["confusion_matrix"] = matrix.tolist()
    metrics["classes"] = list(info["classes"])
    write_json(s["metrics_path"], metrics)
    best = max(history, key=lambda r: r["test_accuracy"])
    print(f"final test accuracy {100 * history[-1]['test_accuracy']:.2f}% "
          f"(best {100 * best['test_accuracy']:.2f}% at epoch {best['epoch']}); {s['metrics_path']}")
    if not no_plot:
        curves, confusion = os.path.join(out, "curves.png"), os.path.join(out, "confusion.png")
        if save_curves(curves, history, info["title"]):
            save_confusion(confusion, matrix, info["classes"], info["title"])
            print(f"curves: {curves}; confusion matrix: {confusion}")
        else:
            print("curves.png and confusion.png not written: matplotlib is not installed "
                  "(pip install 'minicnn[plot]')")


if __name__ == "__main__":
    sys.exit(main())
