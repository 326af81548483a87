"""Reference client lines by class (see callcoach/pipeline/reference.py); data only."""
