"""The bundle's entry point: the same ``outbox`` program a Python install runs.

PyInstaller's bootloader points ``LD_LIBRARY_PATH`` at the bundle's libraries, and
its Qt hook points ``QT_PLUGIN_PATH`` and ``QML2_IMPORT_PATH`` at the bundle's Qt.
Every program Outbox starts inherits them: a password command (``pass``, ``gpg``,
``secret-tool``), the browser of a sign-in, the editor of a message. Those are the
system's programs, built against the system's libraries and Qt; handed the bundle's
(an older libgpg-error or GLib, plug-ins of another Qt), they fail to start on any
machine but the one that built the bundle. So the user's values are put back
before anything runs. This process needs them no longer: the dynamic loader read
``LD_LIBRARY_PATH`` when the process started, and PySide6 tells its Qt where its
plug-ins are itself (an embedded qt.conf).
"""

import os
import sys


def _give_back_the_environment() -> None:
    original = os.environ.pop("LD_LIBRARY_PATH_ORIG", None)
    if original is None:
        os.environ.pop("LD_LIBRARY_PATH", None)
    else:
        os.environ["LD_LIBRARY_PATH"] = original
    os.environ.pop("QT_PLUGIN_PATH", None)
    os.environ.pop("QML2_IMPORT_PATH", None)


if __name__ == "__main__":
    _give_back_the_environment()

    from relay.cli import main

    sys.exit(main())
