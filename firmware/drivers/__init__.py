"""Peripheral drivers: each is handed a bus or pin object, never imports `machine`."""
