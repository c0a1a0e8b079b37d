"""Supervision: pool config, master supervisor, supervisors, process pools, the auto-scaler."""
