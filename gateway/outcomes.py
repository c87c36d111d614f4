"""A start's outcomes, in the words of the outcome metric's labels and the log."""

CREATED = "created"
REPLAYED = "replayed"
ADOPTED = "adopted"
RELEASED = "released"
# refused, leaving any reservation as it was
REJECTED = "rejected"
CONFLICT = "conflict"
UNKNOWN = "unknown"
# forwarded without a businessKey, so without a reservation
UNPROTECTED = "unprotected"

# the outcome metric's labels: a reserved start ends in one of these
COUNTED = frozenset({CREATED, REPLAYED, ADOPTED, RELEASED, REJECTED, CONFLICT, UNKNOWN})
