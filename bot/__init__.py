"""Hearback: ask every served customer, hear the silent majority, recover what went wrong."""
