"""The relay: what happens to a message between the SMTP front end and the next hop.

sanitize (pipeline in the worker pool, per policy group) -> quarantine ->
deliver (egress) -> bounce or retry. Two modes share it: ``queue`` (store and
forward, gateway/relay/queue.py) and ``through`` (after-queue filter,
gateway/relay/through.py).
"""
