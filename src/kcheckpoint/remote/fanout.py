"""Run a job over many archives: in this process one after another, or on Dask distributed.

With Dask, each archive is one task; the worker that runs it opens the archive where it lives,
so the client never relays archive bytes, only names in and results out. Results come back as
tasks finish and are handed on in input order (a task that finishes early waits for those
before it). Dask retries a task whose worker died; interrupting the run cancels what is
pending. Dask is imported only here, and only when a scheduler or local workers are asked for.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from kcheckpoint.errors import InputError

from .tasks import Failure, Job, Outcome, run_one

#: How often Dask may lose a worker in the middle of one task before giving the task up.
RETRIES = 2


@dataclass(frozen=True, slots=True)
class Cluster:
    """Where tasks run: an existing scheduler's address, or N local worker processes."""

    scheduler: str | None = None
    workers: int | None = None


def run_local(job: Job, names: Sequence[str]) -> Iterator[Outcome]:
    """Each archive in turn, in this process."""
    for index, name in enumerate(names):
        yield run_one(job, index, name)


def run_dask(job: Job, names: Sequence[str], cluster: Cluster) -> Iterator[Outcome]:
    """Each archive as one Dask task; outcomes in input order, each as soon as it can be."""
    try:
        from distributed import Client, LocalCluster
    except ImportError as exc:
        raise InputError(
            "--scheduler and --workers need Dask distributed, which is not installed",
            hint="pip install 'kcheckpoint[fleet]'",
        ) from exc
    with contextlib.ExitStack() as stack:
        if cluster.scheduler is not None:
            client = stack.enter_context(_connect(Client, cluster.scheduler))
        else:
            stack.enter_context(worker_environment())
            local = stack.enter_context(
                LocalCluster(
                    n_workers=cluster.workers or 1,
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address=None,
                    silence_logs=50,
                )
            )
            client = stack.enter_context(Client(local))
        yield from run_on_client(client, job, names)


def worker_environment() -> contextlib.AbstractContextManager[Any]:
    """Dask's nanny sets MALLOC_TRIM_THRESHOLD_=65536 in its workers, to give memory back
    sooner; with it glibc maps and unmaps each 1 MiB read buffer, and a scan took twice as
    long in a worker as in this process. Our workers keep glibc's default."""
    import dask

    return dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None})


def run_on_client(client: Any, job: Job, names: Sequence[str]) -> Iterator[Outcome]:
    """The tasks on a connected Dask client; pending ones are cancelled if the run stops."""
    from distributed import as_completed

    run = uuid.uuid4().hex[:8]
    futures = [
        client.submit(
            run_one,
            job,
            index,
            name,
            key=f"kcheckpoint-{job.command}-{run}-{index}",
            pure=False,
            retries=RETRIES,
        )
        for index, name in enumerate(names)
    ]
    by_key = {f.key: i for i, f in enumerate(futures)}
    try:
        yield from _in_order(as_completed(futures), by_key, names)
    finally:
        # an interrupt, or a consumer that stopped early: nothing pending keeps running
        client.cancel([f for f in futures if not f.done()])


def _connect(client_class: Any, address: str) -> Any:
    try:
        return client_class(address, timeout="10s")
    except OSError as exc:
        raise InputError(f"cannot reach the Dask scheduler at {address} ({exc})") from exc


def _in_order(completed: Any, by_key: dict[Any, int], names: Sequence[str]) -> Iterator[Outcome]:
    waiting: dict[int, Outcome] = {}
    next_index = 0
    for future in completed:
        index = by_key[future.key]
        try:
            outcome: Outcome = future.result()
        except Exception as exc:  # the task itself never raises; this is Dask giving up on it
            outcome = Outcome(index, names[index], failure=Failure.of(exc))
        waiting[index] = outcome
        future.release()
        while next_index in waiting:
            yield waiting.pop(next_index)
            next_index += 1
