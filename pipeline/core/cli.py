"""Shared command-line behaviour: clean one-line errors and exit status 2 on bad input.

Inside a Hydra task a user error (bad file, missing predictions, bad option, a write that
the disk or its permissions refuse) is reported as
``error: <message>`` and recorded, so that in a multirun the other cells still run; the
command then exits with status 2. Config errors also exit 2. Programming errors keep their
traceback (status 1). Third-party noise is filtered once per command (:func:`quiet_third_party`).
"""

from __future__ import annotations

import errno
import functools
import logging
import os
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from omegaconf.errors import MissingMandatoryValue

from pipeline.core.cpus import passive_omp_wait
from pipeline.core.errors import UserError, storage_error
from pipeline.core.paths import CONF_DIR

# Known third-party warnings that say nothing a user of this pipeline can act on:
# (category, message regex)
KNOWN_WARNINGS = (
    (FutureWarning, r".*`torch_dtype` is deprecated"),
    (FutureWarning, r".*`resume_download` is deprecated"),
    (FutureWarning, r".*Importing from timm\.models"),
    (FutureWarning, r".*`tokenizer` is deprecated and will be removed"),
    (FutureWarning, r".*`is_gradient_checkpointing` is deprecated"),
    (UserWarning, r".*TypedStorage is deprecated"),
)
NOISY_LOGGERS = ("absl", "datasets", "evaluate", "huggingface_hub", "urllib3")

_failures: list[str] = []
_started: list[bool] = []  # set once a task function runs: later exits are not config errors


def catch_user_errors(label: Callable[[Any], str]) -> Callable:
    """Decorate a task function: report and record user errors instead of raising them."""

    def deco(fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
        @functools.wraps(fn)
        def wrapper(cfg: Any) -> Any:
            _started.append(True)
            try:
                return fn(cfg)
            except UserError as exc:
                text = f"{label(cfg)}: {exc}"
            except OSError as exc:  # a write refused (read-only output_dir, full disk)
                if (error := storage_error(exc, cfg.output_dir)) is None:
                    raise
                text = f"{label(cfg)}: {error}{_read_only_hint(exc, cfg)}"
            except MissingMandatoryValue as exc:  # a `???` value the command line did not set
                text = f"{exc.full_key} is required: set {exc.full_key}=..."
            _failures.append(text)
            print(f"error: {text}", file=sys.stderr, flush=True)
            return None

        return wrapper

    return deco


def _read_only_hint(exc: OSError, cfg: Any) -> str:
    """Why a command cannot use a sweep it may read but not write, and what to do."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT) or not exc.filename:
        return ""
    out = Path(str(cfg.output_dir)).expanduser().absolute()
    if out != Path(exc.filename).absolute() and out not in Path(exc.filename).absolute().parents:
        return ""
    return (f" (this command writes its outputs under output_dir={cfg.output_dir}; to use a "
            "sweep you may only read, copy it to a folder you can write and point output_dir "
            "there)")


def quiet_third_party(tty: bool | None = None) -> None:
    """Filter third-party noise: the known warnings above, INFO lines of ``absl`` (rouge's
    tokenizer notes) and similar libraries, and, off a terminal, the hub/transformers tqdm
    bars (weight loading) that a log file shows as long lines of carriage returns; our own
    progress lines (:mod:`pipeline.core.progress`) report the long work instead."""
    for category, message in KNOWN_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category)
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    if not (sys.stderr.isatty() if tty is None else tty):
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("TQDM_DISABLE", "1")


def hydra_command(label: Callable[[Any], str]) -> Callable:
    """Make a task function a command over ``conf/config.yaml``: ``@hydra.main`` with the
    project's schema registered, and user errors reported as ``error: <label>: ...``.

    Run the result with :func:`exit_with_failures`.
    """
    import hydra

    from pipeline.core.hydra_compose import compose_jobs_once
    from pipeline.core.schema import register_schema

    register_schema()
    compose_jobs_once()
    quiet_third_party()
    passive_omp_wait()

    def deco(fn: Callable[[Any], Any]) -> Callable[[], Any]:
        return hydra.main(version_base="1.3", config_path=str(CONF_DIR),
                          config_name="config")(catch_user_errors(label)(fn))

    return deco


def exit_with_failures(entry: Callable[[], object]) -> None:
    """Run a ``@hydra.main`` entry; exit 2 when any task failed or the config is invalid.

    Hydra prints config composition errors (a typo in a key, a wrong type) itself and exits
    with status 1 before any task runs; those become status 2 like every other user error.
    Ctrl-C ends with one line and status 130; finished cells are kept, so the same command
    resumes.
    """
    try:
        entry()
    except KeyboardInterrupt:
        print("interrupted (Ctrl-C): finished results are kept; run the same command again "
              "to resume", file=sys.stderr, flush=True)
        sys.exit(130)
    except SystemExit as exc:
        if exc.code == 1 and not _started:
            sys.exit(2)
        raise
    if _failures:
        if len(_failures) > 1:
            print(f"error: {len(_failures)} job(s) failed:", file=sys.stderr)
            for text in _failures:
                print(f"  - {text}", file=sys.stderr)
        _exit_failed()


def _exit_failed() -> None:
    """Exit with status 2 after a user error.

    When Arrow is loaded (``data=hf`` reads through ``datasets``), a failure often comes
    milliseconds after Arrow's CPU/IO thread pools did work. Finalising the interpreter
    then races those native threads: a worker that reaches back into Python is stopped
    with ``pthread_exit`` (unwinding through C++ frames) and a joinable ``std::thread``
    destroyed by a static destructor calls ``std::terminate`` (``terminate called without
    an active exception``, status 134; apache/arrow#34314, #39862, #45017). Nothing remains
    to be written on this path (the error is printed, every output is written atomically),
    so after flushing logging and the streams the process ends without finalising.
    """
    if "pyarrow" not in sys.modules:
        sys.exit(2)
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(2)
