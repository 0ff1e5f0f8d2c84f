"""Task-level retry policy shared by every flow: batch tasks retry only transient errors.

The HTTP layer already retries each request (429 with Retry-After, 5xx, transport errors) with backoff
and jitter; this second level re-runs a whole batch after the connector gave up on a transient error.
Permanent errors (a 400, a validation failure, freee's daily quota) are not retried: they become review
items or end the run cleanly.
"""

from __future__ import annotations

from typing import Any

from prefect.cache_policies import NO_CACHE

from renkei.connectors.http import TransientError


def only_transient(task: Any, task_run: Any, state: Any) -> bool:
    """``retry_condition_fn``: True (retry) only when the task failed on a transient connector error."""
    try:
        state.result()
    except TransientError:
        return True
    except Exception:  # noqa: BLE001 - anything else is not worth retrying
        return False
    return False


# keyword arguments for ``@task(**BATCH_TASK, ...)``: idempotent batch steps, results not persisted
BATCH_TASK: dict[str, Any] = dict(retries=3, retry_delay_seconds=[2, 10, 30], retry_jitter_factor=0.2,
                                  retry_condition_fn=only_transient, cache_policy=NO_CACHE, persist_result=False)
