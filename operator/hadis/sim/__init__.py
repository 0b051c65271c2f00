"""Traces and the discrete-event simulator of the cascade."""
