"""SQL text handling: fingerprinting, and static lint rules (`lint`, `source_scan`)."""

from querywatch.sql.fingerprint import Fingerprint, fingerprint

__all__ = ["Fingerprint", "fingerprint"]
