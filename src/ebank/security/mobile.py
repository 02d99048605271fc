"""Changing a customer's mobile number: at the counter, after staff checked the customer's
identity in person.

The number receives every SMS code, so changing it is how a SIM-swap fraud takes over an
account; there is no self-service path. Risk control is asked first (a customer on a watch
list is refused, RISK_REJECTED) and told afterwards: for 72 hours an SMS-confirmed payment,
payee or limit change then scores as suspicious (`sms_after_phone_change`). The new number is
texted that the change happened; the audit record keeps both numbers, masked.
"""

from ebank.core import audit
from ebank.core.clock import BUSINESS_TZ
from ebank.core.crypto import Vault
from ebank.core.writer import Command, Tx
from ebank.customers import service as customers
from ebank.customers.models import CustomerView
from ebank.notify import service as notify
from ebank.risk import service as risk
from ebank.risk.models import Context as RiskContext


def change_at_counter(
    vault: Vault, *, customer_id: int, mobile: str, actor: str
) -> Command[CustomerView]:
    """Give the customer a new mobile number (staff `actor` checked who they are)."""

    def run(tx: Tx) -> CustomerView:
        old, new = customers.set_mobile(tx, vault, customer_id, mobile)  # undone if refused
        seen = RiskContext(event="phone_change", customer_id=customer_id, channel="counter")
        risk.admit(tx, seen)
        audit.record(
            tx, actor=actor, action="customer.mobile", subject=f"customer:{customer_id}",
            channel="counter", detail={"from": old, "to": new},
        )  # fmt: skip
        risk.observe(tx, seen)
        at = tx.now.astimezone(BUSINESS_TZ)
        notify.send_sms(
            tx, vault, customer_id=customer_id, kind="alert",
            body=(
                f"【ebank】您在本行预留的手机号已于{at.month}月{at.day}日{at:%H:%M}在柜台变更为本号码。"
                "如非本人办理，请立即致电本行客服。"
            ),
        )  # fmt: skip
        return customers.get_customer(tx.conn, vault, customer_id)

    return Command(run)
