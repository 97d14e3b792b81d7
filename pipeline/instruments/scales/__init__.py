"""One module per instrument, each defining ``INSTRUMENT`` (found by
:mod:`pipeline.instruments`)."""
