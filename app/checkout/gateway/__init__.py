"""The lab's sandbox payment gateway: a small acquirer with its own durable ledger.

Run as its own service (checkout-gateway, checkout.gateway.service) and reached over
HTTP by checkout.adapters.gateway_http; SandboxGateway over a MemoryChargeLedger is the
same simulation in-process, for the unit tests.
"""

from checkout.gateway.ledger import (
    ChargeLedger,
    MemoryChargeLedger,
    SqliteChargeLedger,
    StoredCharge,
)
from checkout.gateway.simulation import KeyedLocks, SandboxGateway

__all__ = [
    "ChargeLedger",
    "KeyedLocks",
    "MemoryChargeLedger",
    "SandboxGateway",
    "SqliteChargeLedger",
    "StoredCharge",
]
