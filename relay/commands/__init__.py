"""The commands of ``outbox``, one module each, each with ``register(subparsers)``."""
