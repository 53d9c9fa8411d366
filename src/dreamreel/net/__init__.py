"""Outbound network guards: every URL a client hands us is hostile until checked."""
