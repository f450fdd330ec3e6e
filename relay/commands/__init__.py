"""The commands of ``outbox``, one module each, each with ``register(subparsers)``."""


def utf8_output() -> bool:
    """Whether standard output is UTF-8; else ``--json`` escapes every non-ASCII character.

    In a locale that is not UTF-8 (ISO-8859-1, or ``PYTHONIOENCODING=ascii``)
    ``relay.cli`` lets characters the output cannot take through as
    backslash escapes: JSON must then carry them as its own ``\\u`` escapes.
    """
    import codecs
    import sys

    encoding = getattr(sys.stdout, "encoding", None) or "utf-8"
    return codecs.lookup(encoding).name == "utf-8"
