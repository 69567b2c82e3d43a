"""Tests of the reporting database (consult.warehouse), on SQLite and PostgreSQL."""
