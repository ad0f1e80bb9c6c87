"""The PMD language and the tools to write one: the model of a file (``model``), loading and
checking files (``loader``), choosing one for a device (``matcher``), the value transforms
(``transforms``, ``enterprises``), and testing a PMD against a recorded walk (``walktest``,
``expectations``, ``explain``: ``fsm-client pmd check|test|match``).

The reader uses the model, loader, matcher and transforms at every read; the name says who
works on these files (whoever writes a PMD), as ``distribution`` says how they travel."""
