"""How PMD sets reach a client: signed bundles (``bundle``), the installed sets and the atomic
swap between them (``sets``), fetching and installing updates (``update``), the active set and
pool (``active``) and the directories the pool reads (``dirs``)."""
