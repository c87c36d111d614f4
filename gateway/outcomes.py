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
