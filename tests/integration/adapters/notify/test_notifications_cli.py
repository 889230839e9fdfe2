"""`rebal notifications` and `rebal notifications deliver` as a user runs them, on a SQLite
store, delivering to a real webhook receiver and SMTP server on loopback."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from notifyparts import Mailbox, Receiver, note
from typer.testing import CliRunner

from rebal.adapters.notify.webhook import ID_HEADER, verify
from rebal.adapters.storage.unit_of_work import SqlStore
from rebal.cli.main import app
from rebal.clock import SystemClock
from rebal.domain.firm import Firm
from rebal.domain.ids import DEFAULT_FIRM

SECRET = "s3cret-never-shown"


@pytest.fixture
def db(tmp_path: Path) -> str:
    """A store with two notifications queued on the webhook and e-mail channels."""
    url = f"sqlite:///{tmp_path / 'rebal.db'}"
    assert CliRunner().invoke(app, ["db", "init", "--db", url]).exit_code == 0
    store = SqlStore.open(url, SystemClock())
    with store.unit_of_work(actor="t", reason="queue") as uow:
        uow.firms.add(Firm(id=DEFAULT_FIRM, name="Default", created_at=note().created_at))
        for id_ in ("n-1", "n-2"):
            uow.outbox.add(note(id_), ["webhook", "email"])
        uow.commit()
    store.close()
    return url


def _listed(db: str) -> list[dict[str, object]]:
    done = CliRunner().invoke(app, ["notifications", "--format", "json", "--db", db])
    assert done.exit_code == 0, done.output
    rows: list[dict[str, object]] = json.loads(done.stdout)["notifications"]
    return rows


def test_deliver_once_sends_each_due_notification_on_each_channel_and_lists_the_state(
    db: str, receiver: Receiver, smtp: tuple[Mailbox, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    mailbox, port = smtp
    receiver.statuses = [503]  # n-1's first webhook attempt is answered "try later"
    for name, value in {"REBAL_WEBHOOK_URL": receiver.url, "REBAL_WEBHOOK_SECRET": SECRET,
                        "REBAL_SMTP_HOST": "127.0.0.1", "REBAL_SMTP_PORT": str(port),
                        "REBAL_SMTP_FROM": "rebal@example.com",
                        "REBAL_SMTP_TO": "ops@example.com"}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    done = CliRunner().invoke(app, ["notifications", "deliver", "--once", "--db", db])
    assert done.exit_code == 0, done.output
    assert "delivered 3, retrying 1, failed 0" in done.output and SECRET not in done.output
    assert [h[ID_HEADER] for h, _ in receiver.requests] == ["n-1", "n-2"]
    headers, body = receiver.requests[1]
    assert verify(SECRET, headers, body, datetime.now(UTC)) and json.loads(body)["id"] == "n-2"
    assert len(mailbox.messages) == 2
    rows = {(r["id"], r["channel"]): r for r in _listed(db)}
    assert {k: (r["state"], r["attempts"]) for k, r in rows.items()} == {
        ("n-1", "webhook"): ("pending", 1),
        ("n-1", "email"): ("delivered", 1),
        ("n-2", "webhook"): ("delivered", 1),
        ("n-2", "email"): ("delivered", 1),
    }
    assert rows["n-1", "webhook"]["next_attempt_at"] and "503" in str(
        rows["n-1", "webhook"]["last_error"]
    )
    # a second pass right away finds nothing due: the retry waits for its backoff
    again = CliRunner().invoke(app, ["notifications", "deliver", "--once", "--db", db])
    assert "delivered 0, retrying 0, failed 0" in again.output and len(receiver.requests) == 2


def test_the_table_shows_every_entry_pending_before_delivery(db: str) -> None:
    done = CliRunner().invoke(app, ["notifications", "--db", db])
    assert done.exit_code == 0, done.output
    assert done.output.count("pending") == 4 and "run.completed" in done.output


def test_a_half_configured_channel_is_refused_in_one_line(
    db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REBAL_WEBHOOK_URL", "http://127.0.0.1:9/x")
    monkeypatch.delenv("REBAL_WEBHOOK_SECRET", raising=False)
    done = CliRunner().invoke(app, ["notifications", "deliver", "--once", "--db", db])
    assert done.exit_code != 0
    assert "the webhook channel needs REBAL_WEBHOOK_SECRET as well" in done.output
    assert {r["state"] for r in _listed(db)} == {"pending"}
