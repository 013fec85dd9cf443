"""Orchestration: up, down and apply, with the state record and the lab lock."""
