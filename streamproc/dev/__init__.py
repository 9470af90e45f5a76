"""Development tooling: a local Kafka broker, child processes, scraping ``/metrics``.

The top layer with the commands that use it (``kafka``, ``run-local``): it imports the
core, the core never imports it. It ships in the wheel with its pom (package data) so
every command of an installed package works, given ``java`` and ``mvn``; without them
the error says what to install. The tests and benchmarks import it too.
"""
