"""querywatch: catch the SQL query that takes your web service down."""

from querywatch.capture.instrument import Instrumentation, instrument

__all__ = ["Instrumentation", "instrument"]
