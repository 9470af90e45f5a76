"""Category streams: drift in the distribution of a string feature or class label.

Kept free of imports at package level: :mod:`streamproc.settings` imports the settings
section from here, and the stream module builds on settings and alerts.
"""
