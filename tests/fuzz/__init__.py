"""Fuzz tests: every feed parser and the roster importer against mutated real payloads."""
