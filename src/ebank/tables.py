"""Every table of every domain, imported so that the shared MetaData knows them all."""

import ebank.core.tables
import ebank.customers.tables
import ebank.ledger.tables  # noqa: F401
