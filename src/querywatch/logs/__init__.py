"""Database server logs as a source: PostgreSQL stderr/csv/json logs and MySQL slow logs."""
