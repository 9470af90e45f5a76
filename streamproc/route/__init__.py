"""``streamproc route``: deliver the alerts topic to Alertmanager and webhooks.

The worker only publishes alerts; paging is this separate consumer's job
(docs/operations.md#routing-alerts), so a slow or down pager never holds up
detection. Modules: :mod:`streamproc.settings.route` (the ``route`` section), :mod:`.messages`
(what is read from the topic), :mod:`.grouping` (holding stream alerts a model
alert may cover), :mod:`.alertmanager` and :mod:`.webhook` (the sinks),
:mod:`.delivery` (retries), :mod:`.router` (the consumer, offsets, dead letters),
:mod:`.metrics` (its counters).
"""
