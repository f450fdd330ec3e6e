"""An account's outgoing server, found from an e-mail address."""
