"""Every table of every domain, imported so that the shared MetaData knows them all."""

import ebank.accounts.tables
import ebank.bills.tables
import ebank.cards.tables
import ebank.clearing.tables
import ebank.core.tables
import ebank.corporate.tables
import ebank.customers.tables
import ebank.enrolment.tables
import ebank.gateway.tables
import ebank.ledger.tables
import ebank.limits.tables
import ebank.notify.tables
import ebank.ops.tables
import ebank.payments.tables
import ebank.receipts.tables
import ebank.risk.tables
import ebank.security.tables
import ebank.standing.tables  # noqa: F401
