"""A tiny served approval flow for ``test_prefect_ui_approval.py`` (not a production flow).

Run as ``python tests/ui/_approval_fixture_flow.py <deployment-name>``: serves the flow until killed. Each run
suspends with the real ``ApprovalDecision`` form; after a resume from the UI the runner re-executes it from
the top, ``suspend_flow_run`` returns the decision, and the flow writes it as JSON to ``out_path`` (the test
reads that file) and returns it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from prefect import flow, get_run_logger, suspend_flow_run

if __package__ in (None, ""):  # run as a script: make the repo root importable (tasks.approval_form)
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from renkei.tasks.approval_form import ApprovalDecision  # noqa: E402

FLOW_NAME = "renkei-ui-approval-fixture"
DESCRIPTION = "### 請求書承認\n**¥1,100**"


@flow(name=FLOW_NAME, flow_run_name="ui-approval-{case}", log_prints=False)
def ui_approval_fixture(case: str, out_path: str, timeout_s: int = 600) -> dict:
    logger = get_run_logger()
    decision = suspend_flow_run(
        wait_for_input=ApprovalDecision.with_initial_data(description=DESCRIPTION),
        timeout=timeout_s,
        key="decision",
    )
    data = {"approved": decision.approved, "approver": decision.approver, "comment": decision.comment}
    logger.info("decision for %s by %s: approved=%s comment=%r", case, decision.approver, decision.approved,
                decision.comment)
    Path(out_path).write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return data


if __name__ == "__main__":
    ui_approval_fixture.serve(name=sys.argv[1] if len(sys.argv) > 1 else "ui-approval-test", limit=4)
