"""A held subject for the case tests: a ledger hold on the payer's account, captured to the
payee when a case is released and released when it is rejected, as a held payment would be."""

from datetime import timedelta

from ebank.accounts.models import CustomerAccount
from ebank.core.writer import Command, Tx, Writer
from ebank.ledger import service as ledger
from ebank.risk import cases, service
from ebank.risk.models import Context

KIND = "test_hold"
_PAYEES: dict[int, tuple[int, int]] = {}  # hold id -> (payee ledger account, amount)


def _release(tx: Tx, hold_id: int, actor: str) -> None:
    payee, amount = _PAYEES[hold_id]
    ledger.capture_hold(tx, hold_id=hold_id, to=[(payee, amount)], final=True, memo=actor)


def _reject(tx: Tx, hold_id: int, actor: str) -> None:
    ledger.release_hold(tx, hold_id=hold_id)


cases.register(KIND, release=_release, reject=_reject)


def hold_for_review(
    writer: Writer, ctx: Context, payer: CustomerAccount, payee: CustomerAccount
) -> tuple[int, int]:
    """Decide, hold the amount and open a case, in one command; (hold id, case id)."""

    def run(tx: Tx) -> tuple[int, int]:
        decision = service.evaluate(tx, ctx)
        hold = ledger.place_hold(
            tx, account_id=payer.ledger_account_id, amount=ctx.amount,
            expires_at=tx.now + timedelta(days=3), memo="risk review",
        )  # fmt: skip
        _PAYEES[hold.id] = (payee.ledger_account_id, ctx.amount)
        case_id = cases.open_case(
            tx, decision, kind=KIND, subject_id=hold.id, customer_id=payer.customer_id
        )
        return hold.id, case_id

    return writer.execute(Command(run))
