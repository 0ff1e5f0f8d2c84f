"""The session-wide Prefect server records flow runs and their batch tasks."""

from __future__ import annotations

from prefect import flow, get_client, task


@task
def double_batch(batch: list[int]) -> list[int]:
    return [2 * x for x in batch]


@flow(flow_run_name="harness-check-{n}")
def harness_flow(n: int) -> int:
    batches = [list(range(i, min(i + 100, n))) for i in range(0, n, 100)]
    return sum(sum(double_batch(b)) for b in batches)


def test_flow_runs_on_the_real_server(prefect_api):
    state = harness_flow(250, return_state=True)
    assert state.is_completed() and state.result() == 2 * sum(range(250))
    with get_client(sync_client=True) as client:  # by id: the session's server holds many other runs
        run = client.read_flow_run(state.state_details.flow_run_id)
    assert run.name == "harness-check-250" and run.state_type.value == "COMPLETED"
