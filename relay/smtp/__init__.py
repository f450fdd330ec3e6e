"""SMTP on the wire: opening a session, the open session, replies, pipelining, transcripts."""
