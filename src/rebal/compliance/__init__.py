"""Pre-trade compliance: pure rules over typed facts, and when runs happen on the market's clock.

``facts`` holds what a check needs to know (each fact may be unknown, and an unknown fact blocks),
``codes`` the stable violation codes, ``rules`` the checks and their report, ``hours`` the managed
run time and the postponement of a run blocked by a day trade. No I/O, no clock: the use case
:mod:`rebal.services.compliance` gathers the facts from the ports and passes ``now`` in.
"""
