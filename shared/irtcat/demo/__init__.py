"""The local demo: simulated tablets driving the local stack, sample events and history export."""

# the demo's closed-loop tablets: enough to keep the local pipeline busy (fewer tablets measure
# their own waiting for the next item more than the pipeline)
DEFAULT_TABLETS = 30
