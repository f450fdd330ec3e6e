"""The outbox store: one SQLite file, and everything that reads or writes it."""
