"""Confirming a payment with the factor the limits service asks for, for every kind of payment
(transfer, bill, ...): the SMS code bound to what it pays, the token, or the certificate's
signature over the payment, or the PIN where an internet payment allows it.

The code and the signature are dynamically linked: each is made for one payer account, payee
and amount, and confirms nothing else.
"""

from dataclasses import dataclass

from ebank.core.crypto import Vault, mask_card
from ebank.core.errors import EbankError
from ebank.core.money import display_amount
from ebank.core.writer import Tx
from ebank.payments.models import Confirmation
from ebank.security import certificates
from ebank.security import service as security
from ebank.security.service import CodeIssued, Verdict

CODE_PURPOSE = "payment"  # of the SMS codes that confirm a payment
_VERBS = {"transfer": "转账", "bill": "缴费", "standing": "预约转账", "ecommerce": "网上支付"}


@dataclass(frozen=True, slots=True)
class Confirming:
    """The payment a factor confirms, as the customer sees it."""

    customer_id: int
    channel: str
    # transfer | bill | standing (an order: one confirmation for every run) | ecommerce
    what: str
    from_account: str
    payee_account: str
    payee_name: str
    amount: int
    currency: str = "CNY"
    payee_bank: str | None = None

    def binding(self) -> str:
        """What an SMS code is bound to: change any of it and the code fails."""
        return security.binding_of(
            purpose=self.what, from_account=self.from_account, payee_account=self.payee_account,
            payee_bank=self.payee_bank, amount=self.amount, currency=self.currency,
        )  # fmt: skip


def send_code(tx: Tx, vault: Vault, c: Confirming) -> CodeIssued:
    """Text the customer a code for exactly this payment, saying what it pays."""
    message = (
        f"向{c.payee_name}({mask_card(c.payee_account)}){_VERBS[c.what]}"
        f"{display_amount(c.amount, c.currency)}"
    )
    return security.issue_code(
        vault, customer_id=c.customer_id, purpose=CODE_PURPOSE, binding=c.binding(),
        message=message,
    ).fn(tx)  # fmt: skip


def start_signing(tx: Tx, c: Confirming) -> certificates.SigningChallenge:
    """The bytes the customer's U-key signs for exactly this payment."""
    return certificates.start_signing(
        customer_id=c.customer_id, amount=c.amount, currency=c.currency,
        payee_account=c.payee_account, payee_name=c.payee_name,
    ).fn(tx)  # fmt: skip


def pin_check(customer_id: int, confirmation: Confirmation) -> security.CredentialCheck:
    """The PIN half of a confirmation: give its `prepare` to the command (argon2id runs
    outside the writer), and the check to `check`."""
    return security.CredentialCheck("transaction_pin", confirmation.code, lambda conn: customer_id)


def check(
    tx: Tx,
    vault: Vault,
    c: Confirming,
    confirmation: Confirmation,
    pin: security.CredentialCheck,
) -> Verdict:
    """Check the factor the customer confirmed with; no factor passes here (the limits
    service then says whether the payment needed one). A failure counts to the lockout."""
    method = confirmation.method
    if method is None:
        return Verdict(True)
    if method == "sms":
        return security.check_code(
            vault, customer_id=c.customer_id, purpose=CODE_PURPOSE, binding=c.binding(),
            code=confirmation.code or "",
        ).fn(tx)  # fmt: skip
    if method == "token":
        return security.check_token(
            vault, customer_id=c.customer_id, code=confirmation.code or "", channel=c.channel
        ).fn(tx)
    if method == "certificate":
        if type(confirmation.challenge_id) is not int or confirmation.signature is None:
            raise EbankError("INVALID_INPUT", reason="a certificate needs challenge and signature")
        return certificates.verify_signature(
            customer_id=c.customer_id, challenge_id=confirmation.challenge_id,
            amount=c.amount, currency=c.currency, payee_account=c.payee_account,
            payee_name=c.payee_name, signature_b64=confirmation.signature, channel=c.channel,
        ).fn(tx)  # fmt: skip
    if method == "pin":
        return pin.record(tx, channel=c.channel)
    raise EbankError("INVALID_INPUT", reason="method is one of sms, token, certificate, pin")
