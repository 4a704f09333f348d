"""What looks like a secret: the rule set, the chunked matchers, fingerprints and redaction.

Bytes and text in, findings and redacted text out; no archive, no I/O. Used by ``criu`` (command
lines are redacted as they are decoded) and by ``memory`` (the secret scan).

May import: the standard library only.
"""
