"""Domain events: ``track.*`` and ``album.*`` on the EventBridge bus, derived from the Tracks and
Albums tables' DynamoDB streams.

``mapping`` decides which change of a stored item is which event (pure, no AWS); ``publish`` puts
one event on the bus. Deriving events from the streams instead of from each service's writes means
every write path (API, finalize, lanes, verdicts, sweeper) is covered without any of them knowing,
and an event exists exactly when its change was committed.
"""
