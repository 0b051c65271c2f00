"""The hadis command line."""
