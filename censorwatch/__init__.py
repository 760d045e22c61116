"""The distribution's own entry points: what must run before an extra is known to be there.

``pip install censorwatch`` installs the probe's dependencies only; the collector's server
stack comes with the ``collector`` extra. ``censorwatch`` (the collector's command) checks for
it here and names the extra when it is missing, instead of failing with a traceback.
"""
