#!/usr/bin/env python3
"""Fixture: prints "started" then sleeps 600 s (for timeout and cancel tests)."""
import sys
import time

print("started")
sys.stdout.flush()
time.sleep(600)
