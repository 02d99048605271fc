"""Every table of every domain, imported so that the shared MetaData knows them all."""

import ebank.accounts.tables
import ebank.cards.tables
import ebank.core.tables
import ebank.customers.tables
import ebank.enrolment.tables
import ebank.ledger.tables
import ebank.limits.tables
import ebank.notify.tables
import ebank.ops.tables
import ebank.security.tables  # noqa: F401
