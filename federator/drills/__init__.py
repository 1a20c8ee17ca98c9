"""The drill runtime: the leader drives every ``Drill`` object with the pure state machine of
``federator.core.drills`` (docs/drills.md, Runtime). ``DrillController`` is the entry point."""
