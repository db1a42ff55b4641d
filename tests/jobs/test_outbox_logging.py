"""Log lines written while a job runs carry its job id."""

from __future__ import annotations

import logging

from core import outbox
from jobs.registry import job
from jobs.runner import JobIdFilter, run_item


@job("test.logs")
def _logs(session, item):
    logging.getLogger("zhizhi.test").warning("inside the handler")


def test_log_lines_of_a_job_are_stamped_with_its_id(app, db, caplog) -> None:
    caplog.handler.addFilter(JobIdFilter())
    item_id = outbox.add(db, "test.logs", {})
    db.commit()
    with caplog.at_level(logging.INFO):
        run_item(app, item_id)
    lines = [r.getMessage() for r in caplog.records if r.name == "zhizhi.test"]
    assert lines == [f"[outbox-{item_id}] inside the handler"]
    assert all(r.job_id == f"outbox-{item_id}" for r in caplog.records if r.name == "zhizhi.test")
