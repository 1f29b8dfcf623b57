"""SQL text handling: fingerprinting (and, later, lint rules)."""

from querywatch.sql.fingerprint import Fingerprint, fingerprint

__all__ = ["Fingerprint", "fingerprint"]
