"""Enterprise e-permits for precursor chemicals (易制毒化学品), design/permits.md."""

from models.permits.applications import Application, Permit, PermitCredential
from models.permits.catalogue import Chemical
from models.permits.credentials import Credential
from models.permits.enterprises import Enterprise, Member, Site, Vehicle
from models.permits.ledger import LedgerEvent, StockBalance, TripSegment, Waybill
from models.permits.ratings import StarRating
from models.permits.risk import RiskSignal, Warning

__all__ = [
    "Application",
    "Chemical",
    "Credential",
    "Enterprise",
    "LedgerEvent",
    "Member",
    "Permit",
    "PermitCredential",
    "RiskSignal",
    "Site",
    "StarRating",
    "StockBalance",
    "TripSegment",
    "Vehicle",
    "Warning",
    "Waybill",
]
