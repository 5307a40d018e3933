"""Judges: each agent renders its template, calls the engine and reads the reply."""
